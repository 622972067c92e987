"""Compute a named metric for a generator (or a folder of generated images) against real data.

    >>> from stylegan.metrics import compute_metric
    >>> compute_metric("fid50k_full", generator=G, data="fmnist32.zip", feature_net="effnet-lite0", num=10000)
    {'metric': 'fid50k_full', 'value': 3.21, 'results': {'fid': 3.21}, 'num_real': 60000, ...}

Names follow StyleGAN2-ADA (`METRICS`). `_full` metrics use every real image; the number in the
name is the count of generated images (`num` overrides it; for metrics without `_full` it sets the
real count too). Generated images are quantised to uint8 before feature extraction, like images
saved as PNG. Everything random is drawn from generators seeded by (seed, batch index), so the
same seed gives the same value, on one process or many (torch.distributed, see distributed.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from stylegan.errors import UserInputError
from stylegan.metrics import distributed
from stylegan.metrics.image_sources import match_sources, open_fake_source, open_real_source
from stylegan.metrics.preprocess import quantize


@dataclass(frozen=True)
class MetricSpec:
    """One registered metric."""

    kind: str                    # 'fid', 'kid', 'pr', 'is', 'ppl' or 'swd'
    num_fake: int                # generated images (or latent pairs for PPL)
    num_real: int | None         # real images; None = all of them ('_full'); 0 = none needed
    feature_net: str | None      # default feature network (None: not feature based)
    description: str
    options: dict = field(default_factory=dict)


METRICS: dict[str, MetricSpec] = {
    "fid50k_full": MetricSpec("fid", 50000, None, "inception", "FID, 50k generated vs all real (Heusel et al. 2017)"),
    "fid50k": MetricSpec("fid", 50000, 50000, "inception", "FID, 50k generated vs 50k real"),
    "fid10k_full": MetricSpec("fid", 10000, None, "inception", "FID, 10k generated vs all real (quick)"),
    "kid50k_full": MetricSpec("kid", 50000, None, "inception", "KID (unbiased MMD^2, cubic kernel), 100 subsets of 1000 (Binkowski et al. 2018)",
                              dict(num_subsets=100, max_subset_size=1000)),
    "pr50k3_full": MetricSpec("pr", 50000, None, "vgg16", "precision and recall, k=3 (Kynkaanniemi et al. 2019)",
                              dict(k=3)),
    "is50k": MetricSpec("is", 50000, 0, "inception", "Inception Score, 10 splits (Salimans et al. 2016)",
                        dict(num_splits=10)),
    "ppl2_wend": MetricSpec("ppl", 50000, 0, None, "PPL in W, endpoints, no crop (StyleGAN2)",
                            dict(space="w", sampling="end", crop=False)),
    "ppl_zfull": MetricSpec("ppl", 50000, 0, None, "PPL in Z, full paths, face crop (StyleGAN)",
                            dict(space="z", sampling="full", crop=True)),
    "ppl_wfull": MetricSpec("ppl", 50000, 0, None, "PPL in W, full paths, face crop (StyleGAN)",
                            dict(space="w", sampling="full", crop=True)),
    "ppl_zend": MetricSpec("ppl", 50000, 0, None, "PPL in Z, endpoints, face crop (StyleGAN)",
                           dict(space="z", sampling="end", crop=True)),
    "ppl_wend": MetricSpec("ppl", 50000, 0, None, "PPL in W, endpoints, face crop (StyleGAN)",
                           dict(space="w", sampling="end", crop=True)),
    "swd": MetricSpec("swd", 16384, 16384, None, "sliced Wasserstein distance x1e3 per pyramid level (ProGAN)"),
}


def metric_spec(name: str) -> MetricSpec:
    """The registered spec of `name`, or a UserInputError listing the valid names.

    name: metric name, e.g. 'fid50k_full'.
    """
    if name not in METRICS:
        raise UserInputError(f"unknown metric {name!r}; valid metrics: {', '.join(METRICS)}")
    return METRICS[name]


class GeneratorImages:
    """Batches of uint8 images from a generator; batch b is drawn from the generator seeded by (seed, b)."""

    def __init__(self, G, count: int, batch_size: int, seed: int, labels: np.ndarray | None = None,
                 truncation_psi: float = 1.0, noise_mode: str = "const", device="cpu"):
        """G: generator with z_dim, c_dim and G(z, c, truncation_psi=, noise_mode=) -> [-1, 1] images.
        count: images to generate.
        batch_size: images per batch.
        seed: base seed.
        labels: real labels `[N, c_dim]` to draw conditions from; None = uniform one-hot classes.
        truncation_psi: truncation (1 = none, as for all published metrics).
        noise_mode: 'const' or 'random' (random noise is reproducible too: seeded per batch).
        device: where G runs.
        """
        for attr in ("z_dim", "c_dim"):
            if not hasattr(G, attr):
                raise UserInputError(f"the generator has no attribute {attr!r}; expected a StyleGAN generator")
        self.G, self.count, self.batch_size, self.seed = G, count, batch_size, seed
        self.labels = labels if (labels is not None and G.c_dim and labels.ndim == 2 and labels.shape[1] == G.c_dim) else None
        self.psi, self.noise_mode, self.device = truncation_psi, noise_mode, device

    def __len__(self) -> int:
        return self.count

    def conditions(self, n: int, gen: torch.Generator) -> torch.Tensor:
        c = torch.zeros(n, self.G.c_dim)
        if self.G.c_dim:
            if self.labels is not None:
                c = torch.from_numpy(self.labels[torch.randint(len(self.labels), (n,), generator=gen).numpy()])
            else:
                c[torch.arange(n), torch.randint(self.G.c_dim, (n,), generator=gen)] = 1
        return c

    @torch.no_grad()
    def batch(self, b: int) -> torch.Tensor:
        n = min(self.batch_size, self.count - b * self.batch_size)
        gen = distributed.batch_generator(self.seed, b)
        z = torch.randn(n, self.G.z_dim, generator=gen)
        c = self.conditions(n, gen)
        with torch.random.fork_rng(devices=[]):  # random noise inputs, if any, are seeded per batch too
            torch.manual_seed(distributed.batch_seed(self.seed + 1, b))
            img = self.G(z.to(self.device), c.to(self.device), truncation_psi=self.psi, noise_mode=self.noise_mode)
        return quantize(img.cpu())

    def read(self, start: int, stop: int) -> torch.Tensor:
        """Images start..stop-1 where start begins a batch (what the metric loops read)."""
        if start % self.batch_size:
            raise ValueError(f"generated images are drawn in batches of {self.batch_size}; start {start} is inside one")
        return self.batch(start // self.batch_size)[:stop - start]

    def geometry(self):
        from stylegan.metrics.preprocess import ImageGeometry
        res = self.G.img_resolution
        return ImageGeometry.of_shape(res, res, self.G.img_channels, "the generator")


def _num_batches(count: int, batch_size: int) -> int:
    return -(-count // batch_size)


def _batch_reader(source, count: int, batch_size: int):
    if isinstance(source, GeneratorImages):
        return source.batch
    return lambda b: source.read(b * batch_size, min((b + 1) * batch_size, count))


@torch.no_grad()
def _features(net, source, count: int, batch_size: int, device, with_logits: bool = False):
    """Features (and logits) of the first `count` images, sharded over ranks, in order."""
    read = _batch_reader(source, count, batch_size)
    num = _num_batches(count, batch_size)
    local = {}
    for b in distributed.my_batches(num):
        f, l = net(read(b).to(device))
        local[b] = (f.double().cpu().numpy(), l.double().cpu().numpy() if with_logits else None)
    parts = distributed.gather_in_order(local, num)
    features = np.concatenate([p[0] for p in parts])
    logits = np.concatenate([p[1] for p in parts]) if with_logits else None
    return features, logits


def _real_statistics(net, net_id, source, count, batch_size, device, cache_dir, kind):
    """Cached real statistics: kind 'mean_cov' -> {mu, sigma}, 'features' -> {features}; returns (dict, hit)."""
    from stylegan.metrics import stats_cache
    from stylegan.metrics.frechet import feature_statistics

    path = None
    if cache_dir:
        path = stats_cache.cache_file(cache_dir, source.fingerprint(), net_id, count, kind)
        cached = stats_cache.load_cached(path)
        if cached is not None:
            return cached, True
    features, _ = _features(net, source, count, batch_size, device)
    if kind == "mean_cov":
        mu, sigma = feature_statistics(features)
        stats = dict(mu=mu, sigma=sigma)
    else:
        stats = dict(features=features)
    if path is not None and distributed.rank_and_world()[0] == 0:
        stats_cache.save_cached(path, stats, dict(kind=kind, feature_net=net_id, count=count,
                                                  dataset=source.fingerprint()))
    return stats, False


def _color_channels(source) -> int:
    """1 for gray(+alpha) images, 3 for RGB(A)."""
    if hasattr(source, "geometry"):
        return 1 if source.geometry().modes <= {"L", "LA"} else 3
    return 1 if source.read(0, 1).shape[1] in (1, 2) else 3


@torch.no_grad()
def _swd_descriptors(source, count, batch_size, seed, channels):
    from stylegan.metrics.preprocess import match_channels
    from stylegan.metrics.swd import pyramid_descriptors

    read = _batch_reader(source, count, batch_size)
    num = _num_batches(count, batch_size)
    local = {b: pyramid_descriptors(match_channels(read(b), channels),  # gray vs RGB: compare in RGB
                                    np.random.default_rng(distributed.batch_seed(seed, b)))
             for b in distributed.my_batches(num)}
    parts = distributed.gather_in_order(local, num)
    return [torch.cat([p[level] for p in parts]) for level in range(len(parts[0]))]


def compute_metric(name: str, generator=None, fakes=None, data=None, feature_net: str | None = None,
                   num: int | None = None, num_real: int | None = None, seed: int = 0, batch_size: int = 32,
                   cache_dir=None, device="cpu", ppl_distance: str | None = None,
                   truncation_psi: float = 1.0, noise_mode: str = "const", resolution: int | None = None,
                   transform: str | None = None, resize_filter: str = "lanczos", mirror: bool = False) -> dict:
    """Compute one registered metric and return a JSON-ready record.

    name: metric name from METRICS (e.g. 'fid50k_full', 'kid50k_full', 'pr50k3_full', 'ppl2_wend', 'is50k', 'swd').
    generator: a generator module (see GeneratorImages); exclusive with `fakes`.
    fakes: generated images as a folder/zip path, `[N, C, H, W]` array or dataset; exclusive with `generator`.
    data: real images: dataset zip/folder path, ImageDataset-like object or `[N, C, H, W]` uint8 array.
    feature_net: feature network spec (NAME, NAME:PATH or PATH, see features.py); None = the metric's default.
    num: generated images (PPL: latent pairs); None = the count in the metric's name.
    num_real: real images; None = all for '_full' metrics, else `num` or the metric's count.
    seed: seed of everything random (latents, labels, subsets, patches, projections).
    batch_size: images per forward pass.
    cache_dir: folder for cached real statistics; None = no caching.
    device: torch device for the networks.
    ppl_distance: PPL distance spec ('lpips-vgg16[:PATH]', 'effnet-lite0', 'fmnist'); None = automatic.
    truncation_psi: generator truncation (1 for comparable numbers).
    noise_mode: generator noise mode, 'const' or 'random'.
    resolution: common side when the two sides' images differ in size (None: chosen, see preprocess.py).
    transform: the dataset tool's transform for matching sizes: None (resize), 'center-crop',
        'center-crop-wide' or 'pad' (give the one the dataset zip was made with).
    resize_filter: the dataset tool's resize filter for matching sizes, 'lanczos' or 'box'.
    mirror: add x-flipped copies of the real images given as a path (NVIDIA's calc_metrics --mirror=1).
    """
    spec = metric_spec(name)
    start = time.time()
    if (generator is None) == (fakes is None):
        raise UserInputError("give exactly one of a generator (--network) or generated images (--fakes)")
    if num is not None and num < 1:
        raise UserInputError(f"num must be a positive count, got {num}")
    if batch_size < 1:
        raise UserInputError(f"batch_size must be at least 1, got {batch_size}")
    record = dict(metric=name, value=None, results={}, num_real=0, num_fake=0, feature_net=None, seed=seed)

    if spec.kind == "ppl":
        if generator is None:
            raise UserInputError(f"{name} needs a generator (--network): it interpolates latents")
        from stylegan.metrics.features import to_device
        from stylegan.metrics.ppl import PPLConfig, load_ppl_distance, perceptual_path_length

        dist = to_device(load_ppl_distance(ppl_distance), device)
        count = num or spec.num_fake
        value = perceptual_path_length(generator, dist, PPLConfig(**spec.options), count, batch_size, seed, device)
        record.update(value=value, results={"ppl": value}, num_fake=count, distance=dist.name)
        record["seconds"] = round(time.time() - start, 3)
        return record

    real = None
    if spec.num_real != 0:
        real = open_real_source(data, mirror=mirror)
    labels = getattr(real, "labels", None) if real is not None else None
    if generator is not None:
        fake_count = num or spec.num_fake
        fake = GeneratorImages(generator, fake_count, batch_size, seed, labels, truncation_psi, noise_mode, device)
    else:
        fake = open_fake_source(fakes)
        fake_count = min(len(fake), num or spec.num_fake)
    if fake_count < 2:
        raise UserInputError(f"{name} needs at least 2 generated images, got {fake_count}")
    real, fake, matched = match_sources(real, fake, resolution, transform, resize_filter)
    if matched is not None:
        record["matched"] = matched
    real_count = 0
    if real is not None:
        wanted = num_real or (len(real) if spec.num_real is None else (num or spec.num_real))
        real_count = min(len(real), wanted)
    record.update(num_fake=fake_count, num_real=real_count)

    if spec.kind == "swd":
        count = min(real_count, fake_count)
        channels = max(_color_channels(real), _color_channels(fake))
        real_desc = _swd_descriptors(real, count, batch_size, seed, channels)
        fake_desc = _swd_descriptors(fake, count, batch_size, seed + 1, channels)
        from stylegan.metrics.swd import swd_from_descriptors

        results = swd_from_descriptors(real_desc, fake_desc, seed=seed + 2)
        record.update(value=results["swd_mean"], results=results, num_real=count, num_fake=count)
        record["seconds"] = round(time.time() - start, 3)
        return record

    from stylegan.metrics.features import feature_net_id, load_feature_net

    net = load_feature_net(feature_net or spec.feature_net, device)
    net_id = feature_net_id(net)
    record["feature_net"] = getattr(net, "spec_name", net.name)
    fake_features, fake_logits = _features(net, fake, fake_count, batch_size, device, with_logits=spec.kind == "is")

    if spec.kind == "is":
        from stylegan.metrics.inception_score import inception_score, softmax

        mean, std = inception_score(softmax(fake_logits), **spec.options)
        record.update(value=mean, results=dict(is_mean=mean, is_std=std))
    elif spec.kind == "fid":
        from stylegan.metrics.frechet import feature_statistics, frechet_distance

        stats, hit = _real_statistics(net, net_id, real, real_count, batch_size, device, cache_dir, "mean_cov")
        value = frechet_distance(stats["mu"], stats["sigma"], *feature_statistics(fake_features))
        record.update(value=value, results={"fid": value}, real_stats_cached=hit)
    elif spec.kind == "kid":
        from stylegan.metrics.kid import kernel_inception_distance

        stats, hit = _real_statistics(net, net_id, real, real_count, batch_size, device, cache_dir, "features")
        value = kernel_inception_distance(stats["features"], fake_features, seed=seed, **spec.options)
        record.update(value=value, results={"kid": value}, real_stats_cached=hit)
    elif spec.kind == "pr":
        from stylegan.metrics.precision_recall import precision_recall

        stats, hit = _real_statistics(net, net_id, real, real_count, batch_size, device, cache_dir, "features")
        results = precision_recall(stats["features"], fake_features, **spec.options)
        record.update(results=results, real_stats_cached=hit)
    record["seconds"] = round(time.time() - start, 3)
    return record
