"""Latent directions in W for semantic editing: SeFa, GANSpace and label boundaries (docs/editing.md).

- `sefa`: closed-form factorization (Shen & Zhou 2021, eq. 5): the directions n maximising |A n| for the stacked
  channel-style affine weights A of the chosen layers are the eigenvectors of AᵀA. No sampling.
- `ganspace`: PCA of sampled w (Härkönen et al. 2020, section 2): principal axes of `num` seeded w = mapping(z).
- `labels`: a linear boundary in W per class (as InterFaceGAN, Shen et al. 2020): one-vs-rest logistic regression
  on sampled w, labelled by a conditional network's class or by a classifier's prediction on the rendered image.

Every method works in W (never Z) and returns a `Directions`: unit vectors [K, w_dim] that `tools.edit` adds to
chosen ws. Which affine weights form A, per generator version (`style_affines`):

- StyleGAN2: each SynthesisLayer's affine (the modulation styles of the convolutions). The toRGB affines are left
  out, as in SeFa and rosinality's closed_form_factorization.py: they scale the 1x1 colour projection of the skip
  output, not features, and would let colour dominate; so the last w (which feeds only the final toRGB) has no A.
- StyleGAN v1: the scale half of each AdaIN style layer (y_s; the bias half y_b shifts, it does not steer features).
- StyleGAN3: each SynthesisLayer3 affine except ToRGB's (as StyleGAN2); the input affine is excluded too: its 4
  outputs rotate and translate the Fourier features, they are not channel styles.

Every matrix enters with its equalized-learning-rate gain (weight * weight_gain), the map it applies to w.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..errors import FormatError, UserInputError
from ..io.atomic import atomic_path
from ..networks.layers import FullyConnectedLayer
from ..networks.stylegan1 import SynthesisNetwork1
from ..networks.stylegan3 import SynthesisNetwork3
from . import layers as layer_names

METHODS = ("sefa", "ganspace", "labels")
# What `Directions.values` holds for each method (tables, slider labels).
VALUE_NAMES = {"sefa": "eigenvalue", "ganspace": "explained variance", "labels": "held-out accuracy"}
FILE_TAG = "stylegan-directions"  # stored under 'format' in every .npz this module writes
FILE_VERSION = 1
DEFAULT_COMPONENTS = 32  # ganspace


@dataclass
class Directions:
    """Directions in W found by one method for one network.

    method:      'sefa', 'ganspace' or 'labels'.
    vectors:     [K, w_dim] float32, unit-norm rows; most important first (labels: one per class, in class order).
    values:      [K]: eigenvalues of AᵀA (sefa), explained variance ratios (ganspace), held-out balanced accuracy of
                 each class boundary (labels).
    layers:      ws indices the directions were computed for; the default range `tools.edit` applies them to.
    fingerprint: `network_fingerprint(G)` of the network they were computed on.
    params:      the method's parameters (JSON-serialisable: num, seed, layers spec, classes, feature net, ...).
    mean:        ganspace: the mean w [w_dim] the components are centred on; None otherwise.
    """

    method: str
    vectors: np.ndarray
    values: np.ndarray
    layers: Tuple[int, ...]
    fingerprint: str
    params: dict = field(default_factory=dict)
    mean: Optional[np.ndarray] = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        self.values = np.asarray(self.values, dtype=np.float64)
        self.layers = tuple(int(i) for i in self.layers)
        if self.vectors.ndim != 2 or self.values.shape != (self.vectors.shape[0],):
            raise ValueError(f"vectors must be [K, w_dim] with values [K], got {list(self.vectors.shape)} and "
                             f"{list(self.values.shape)}")
        if self.mean is not None:
            self.mean = np.asarray(self.mean, dtype=np.float32)
        if not (np.isfinite(self.vectors).all() and np.isfinite(self.values).all()):
            raise ValueError("vectors and values must be finite")

    @property
    def num_components(self) -> int:
        return self.vectors.shape[0]

    @property
    def w_dim(self) -> int:
        return self.vectors.shape[1]

    def vector(self, component: int) -> torch.Tensor:
        """Direction `component` as a float32 tensor [w_dim]; UserInputError when out of range."""
        if not isinstance(component, (int, np.integer)) or not 0 <= component < self.num_components:
            raise UserInputError(f"component {component} is out of range: these {self.method} directions have "
                                 f"components 0..{self.num_components - 1}")
        return torch.from_numpy(self.vectors[component].copy())

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write every field to an .npz file (no pickles), atomically; returns the path.

        path: destination file (written as given).
        """
        path = Path(path)
        if path.is_dir():
            raise UserInputError(f"{path} is a folder; give the .npz file to write the directions to")
        arrays = dict(format=np.array(FILE_TAG), version=np.array(FILE_VERSION), method=np.array(self.method),
                      vectors=self.vectors, values=self.values, layers=np.array(self.layers, dtype=np.int64),
                      fingerprint=np.array(self.fingerprint), params=np.array(json.dumps(self.params)))
        if self.mean is not None:
            arrays["mean"] = self.mean
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Directions":
        """Read a file written by `save`; FormatError for anything else.

        path: an .npz file from `stylegan directions` or `Directions.save`.
        """
        path = Path(path)
        if not path.is_file():
            raise UserInputError(f"{path}: no such file; make one with `stylegan directions ... --out {path.name}`")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise FormatError(f"{path}: not a directions file (not a readable .npz: {exc}); make one with "
                              f"`stylegan directions`") from None
        if "format" not in arrays or str(arrays["format"]) != FILE_TAG:
            hint = " (it holds ws: pass it as --ws)" if "w" in arrays else ""
            raise FormatError(f"{path}: not a directions file{hint}; make one with `stylegan directions`")
        try:
            version = int(arrays["version"])
            if version > FILE_VERSION:
                raise FormatError(f"{path}: directions file version {version} is newer than this package reads "
                                  f"({FILE_VERSION}); upgrade stylegan")
            return cls(method=str(arrays["method"]), vectors=arrays["vectors"], values=arrays["values"],
                       layers=tuple(arrays["layers"].tolist()), fingerprint=str(arrays["fingerprint"]),
                       params=json.loads(str(arrays["params"])), mean=arrays.get("mean"))
        except KeyError as exc:
            raise FormatError(f"{path}: damaged directions file (no {exc} array)") from None
        except (ValueError, TypeError) as exc:
            raise FormatError(f"{path}: damaged directions file ({exc})") from None

    def check_network(self, G: nn.Module) -> None:
        """UserInputError unless G is the network these directions were computed for.

        G: the generator they are about to be applied to.
        """
        fingerprint = network_fingerprint(G)
        if fingerprint != self.fingerprint:
            raise UserInputError(f"these {self.method} directions were computed for network {self.fingerprint}, but "
                                 f"this network is {fingerprint}: compute directions for it with `stylegan "
                                 f"directions`")
        if self.w_dim != G.w_dim or (self.layers and max(self.layers) >= G.num_ws):
            raise UserInputError(f"these directions have w_dim {self.w_dim} and layers up to {max(self.layers)}, "
                                 f"but this network has w_dim {G.w_dim} and {G.num_ws} ws")


def network_fingerprint(G: nn.Module) -> str:
    """16 hex digits of a SHA-256 over the weights that define W and the styles.

    The mapping network's parameters and every affine of the synthesis network (style affines, toRGB affines,
    StyleGAN3's input affine), by name, shape and float32 value; buffers (w_avg) and the convolutions do not
    count. The same network loaded from an NVIDIA .pkl or from our export gives the same fingerprint.

    G: a generator (v1, v2 or v3).
    """
    digest = hashlib.sha256()
    digest.update(f"w_dim={G.w_dim};num_ws={G.num_ws};".encode())
    named = [(f"mapping.{n}", p) for n, p in G.mapping.named_parameters()]
    for module_name, module in G.synthesis.named_modules():
        if isinstance(module, FullyConnectedLayer):
            named += [(f"synthesis.{module_name}.{n}", p) for n, p in module.named_parameters()]
    for name, param in sorted(named, key=lambda item: item[0]):
        value = param.detach().to("cpu", torch.float32).contiguous().numpy()
        digest.update(f"{name}:{list(value.shape)};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:16]


def parse_layers(spec: str, G: Union[nn.Module, int], resolution: Optional[int] = None) -> Tuple[int, ...]:
    """'all', 'coarse', 'middle', 'fine' (or several, comma-separated), '0-5', '3', '0,2,4' -> sorted ws indices.

    The named ranges are the StyleGAN paper's (section 3.1), from each w's resolution (tools/layers.py):
    coarse 4-8 px, middle 16-32, fine 64 and up; networks under 64 px count their top resolution as fine.

    spec:       the layer spec; UserInputError when it is malformed or out of range.
    G:          the generator (its num_ws and ws resolutions: StyleGAN v1 and v3 place their ws differently
                from v2), or num_ws as an int together with `resolution` (then StyleGAN2's placement is assumed).
    resolution: the image resolution, only when G is num_ws.
    """
    if not isinstance(spec, str):
        raise UserInputError(f"layers must be a string like all, coarse or 0-5, got {spec!r}")
    if isinstance(G, (int, np.integer)):
        if resolution is None:
            raise TypeError("parse_layers(spec, num_ws, resolution): resolution is missing")
        G = SimpleNamespace(num_ws=int(G), img_resolution=int(resolution))
    if spec.strip().lower() == "all":
        return tuple(range(G.num_ws))
    try:
        return tuple(layer_names.parse_layers(spec, G))
    except UserInputError as exc:
        raise UserInputError(f"bad layers {spec!r}: {exc}; valid: all, coarse, middle, fine, or ws indices "
                             f"0..{G.num_ws - 1} such as 0-5 or 3") from None


def style_affines(G: nn.Module) -> Dict[int, List[torch.Tensor]]:
    """{ws index: [effective weight [channels, w_dim], ...]} of the channel-style affines (module docstring).

    G: a generator (v1, v2 or v3). ws indices that drive no channel style (StyleGAN2's last w, StyleGAN3's
       first and last) are absent.
    """
    synthesis = G.synthesis
    out: Dict[int, List[torch.Tensor]] = {}

    def add(idx: int, layer: FullyConnectedLayer, rows: Optional[int] = None) -> None:
        weight = layer.weight.detach().to("cpu", torch.float64) * layer.weight_gain
        out.setdefault(idx, []).append(weight[:rows] if rows is not None else weight)

    if isinstance(synthesis, SynthesisNetwork1):
        for k, res in enumerate(synthesis.block_resolutions):
            block = getattr(synthesis, f"b{res}")
            for j, layer in enumerate((block.layer0, block.layer1)):
                add(2 * k + j, layer.style, rows=layer.out_channels)  # the scale half y_s (adain: scale first)
    elif isinstance(synthesis, SynthesisNetwork3):
        for i, name in enumerate(synthesis.layer_names):
            layer = getattr(synthesis, name)
            if not layer.is_torgb:
                add(i + 1, layer.affine)  # ws[0] drives the input transform
    else:
        w_idx = 0
        for res in synthesis.block_resolutions:
            block = getattr(synthesis, f"b{res}")
            idx = w_idx
            if block.in_channels != 0:
                add(idx, block.conv0.affine)
                idx += 1
            add(idx, block.conv1.affine)
            w_idx += block.num_conv  # the toRGB's w (idx + 1) is the next block's first
    return out


def _fix_signs(vectors: torch.Tensor) -> torch.Tensor:
    """Flip each row so its largest-magnitude entry is positive (eigenvectors have no sign of their own)."""
    pick = vectors.abs().argmax(dim=1, keepdim=True)
    signs = torch.sign(vectors.gather(1, pick))
    return vectors * torch.where(signs == 0, torch.ones_like(signs), signs)


def sefa(G: nn.Module, layers: str = "all") -> Directions:
    """SeFa directions: eigenvectors of AᵀA (eq. 5 of Shen & Zhou 2021), largest eigenvalue first; all w_dim of them.

    G:      the generator.
    layers: which ws indices' style affines form A (parse_layers); also the default range for applying them.
    """
    indices = parse_layers(layers, G)
    affines = style_affines(G)
    mats = [m for i in indices for m in affines.get(i, [])]
    if not mats:
        raise UserInputError(f"layers {layers!r} (ws {list(indices)}) drive no channel styles (toRGB and the "
                             f"StyleGAN3 input are left out); choose others, e.g. all")
    A = torch.cat(mats)  # [sum of channels, w_dim]
    eigenvalues, eigenvectors = torch.linalg.eigh(A.t() @ A)  # ascending
    order = torch.argsort(eigenvalues, descending=True)
    vectors = _fix_signs(eigenvectors[:, order].t())
    return Directions("sefa", vectors.float().numpy(), eigenvalues[order].clamp_min(0).numpy(), indices,
                      network_fingerprint(G), dict(layers=layers, affine_rows=int(A.shape[0])))


def sample_w(G: nn.Module, num: int, seed: int, batch_size: int = 1000) -> Tuple[torch.Tensor, torch.Tensor]:
    """(w [num, w_dim], class [num] or -1s) of `num` seeded z through G.mapping, untruncated.

    G:          the generator; conditional ones get classes drawn uniformly from the same seed.
    num:        how many w.
    seed:       z = RandomState(seed).randn(num, z_dim), then the classes.
    batch_size: z per mapping call.
    """
    if not isinstance(num, int) or num < 2:
        raise UserInputError(f"number of samples must be a whole number >= 2, got {num!r}")
    if not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        raise UserInputError(f"seed must be a whole number in 0..{2 ** 32 - 1}, got {seed!r}")
    rng = np.random.RandomState(seed)
    z = torch.from_numpy(rng.randn(num, G.z_dim)).float()
    classes = torch.from_numpy(rng.randint(G.c_dim, size=num)) if G.c_dim else torch.full([num], -1)
    device = next(G.parameters()).device
    ws = []
    with torch.no_grad():
        for start in range(0, num, batch_size):
            cls = classes[start:start + batch_size]
            c = torch.zeros([len(cls), G.c_dim])
            if G.c_dim:
                c[torch.arange(len(cls)), cls] = 1
            ws.append(G.mapping(z[start:start + batch_size].to(device), c.to(device))[:, 0].cpu())
    return torch.cat(ws), classes


def ganspace(G: nn.Module, num: int = 10000, seed: int = 0, layers: str = "all",
             components: Optional[int] = None) -> Directions:
    """GANSpace: principal axes of `num` sampled w, by explained variance ratio, largest first.

    G:          the generator (conditional ones: classes drawn uniformly, see sample_w).
    num:        sampled w.
    seed:       seed of the samples (the same seed gives the same components).
    layers:     the default ws range for applying the components (PCA itself uses the whole w).
    components: how many components to keep (at most w_dim); None: 32, or w_dim if smaller.
    """
    indices = parse_layers(layers, G)
    if components is None:
        components = min(DEFAULT_COMPONENTS, G.w_dim)
    if not isinstance(components, int) or not 1 <= components <= G.w_dim:
        raise UserInputError(f"components must be in 1..{G.w_dim} (w_dim) for this network, got {components!r}")
    w, _ = sample_w(G, num, seed)
    w = w.double()
    mean = w.mean(dim=0)
    cov = (w - mean).t() @ (w - mean) / (num - 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    order = torch.argsort(eigenvalues, descending=True)[:components]
    variance = eigenvalues.clamp_min(0)
    ratio = variance[order] / variance.sum().clamp_min(1e-30)
    vectors = _fix_signs(eigenvectors[:, order].t())
    return Directions("ganspace", vectors.float().numpy(), ratio.numpy(), indices, network_fingerprint(G),
                      dict(num=num, seed=seed, layers=layers, components=components,
                           std=[math.sqrt(float(v)) for v in variance[order]]),
                      mean=mean.float().numpy())


def _fit_boundary(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3, steps: int = 200) -> Tuple[torch.Tensor, float]:
    """(unit normal [w_dim] in x's space, bias) of a class-balanced L2 logistic regression of y (0/1) on x.

    x:     features [N, D] float64.
    y:     labels [N] in {0, 1}, both present.
    l2:    weight decay on the standardised coefficients.
    steps: L-BFGS iterations.
    """
    mu, sd = x.mean(dim=0), x.std(dim=0).clamp_min(1e-8)
    xs = (x - mu) / sd
    pos = y.sum()
    weights = torch.where(y > 0, 0.5 / pos, 0.5 / (len(y) - pos))  # each class weighs half
    a = torch.zeros(x.shape[1], dtype=x.dtype, requires_grad=True)
    b = torch.zeros([], dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([a, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (weights * nn.functional.binary_cross_entropy_with_logits(xs @ a + b, y, reduction="none")).sum()
        loss = loss + l2 * a.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    normal = (a / sd).detach()  # a·(x - mu)/sd = (a/sd)·x + const
    norm = normal.norm().clamp_min(1e-30)
    return normal / norm, float((b.detach() - (a.detach() * mu / sd).sum()) / norm)


def _balanced_accuracy(scores: torch.Tensor, y: torch.Tensor) -> float:
    """Mean of the true-positive and true-negative rates of `scores > 0` against 0/1 labels `y`."""
    pred = scores > 0
    pos, neg = y > 0, y <= 0
    tpr = (pred & pos).sum().item() / max(pos.sum().item(), 1)
    tnr = (~pred & neg).sum().item() / max(neg.sum().item(), 1)
    return 0.5 * (tpr + tnr)


def classify_samples(G: nn.Module, w: torch.Tensor, feature_net: str, batch_size: int = 64) -> torch.Tensor:
    """Class probabilities [N, classes] a classifier gives the images of w (all ws equal, noise 'const').

    G:           the generator.
    w:           [N, w_dim] latents.
    feature_net: a registered feature net that predicts classes (metrics.features; e.g. 'fmnist').
    batch_size:  images per forward pass.
    """
    from ..metrics.features import load_feature_net

    device = next(G.parameters()).device
    net = load_feature_net(feature_net, device=device)
    if not getattr(net, "num_classes", 0):
        raise UserInputError(f"feature net {feature_net!r} has no class outputs; use a classifier such as fmnist")
    probs = []
    with torch.no_grad():
        for start in range(0, len(w), batch_size):
            ws = w[start:start + batch_size].to(device).unsqueeze(1).repeat(1, G.num_ws, 1)
            _, logits = net(G.synthesis(ws, noise_mode="const"))
            probs.append(logits.softmax(dim=1).cpu())
    return torch.cat(probs)


def label_directions(G: nn.Module, *, classes: Optional[Sequence[int]] = None, feature_net: Optional[str] = None,
                     num: int = 2000, seed: int = 0, layers: str = "all", holdout: float = 0.25,
                     batch_size: int = 64) -> Directions:
    """One boundary normal in W per class: it points from the other classes' w towards this class's.

    Labels come from G's own classes (conditional G, no feature_net) or from `feature_net`'s prediction on the
    rendered sample. Each class is fitted one-vs-rest (class-balanced logistic regression) on the first
    1 - holdout of the samples; `values` is its balanced accuracy on the rest.

    G:           the generator.
    classes:     class indices to fit (default: every class with at least 5 samples on each side).
    feature_net: a classifier from metrics.features (e.g. 'fmnist'); None uses G's labels (conditional G only).
    num:         sampled w.
    seed:        seed of the samples.
    layers:      the default ws range for applying the directions.
    holdout:     fraction of samples held out to measure accuracy.
    batch_size:  images per classifier pass.
    """
    indices = parse_layers(layers, G)
    if not 0 < holdout < 1:
        raise UserInputError(f"holdout must be between 0 and 1, got {holdout}")
    if feature_net is None and G.c_dim == 0:
        raise UserInputError("this network is unconditional: label its samples with a classifier, e.g. "
                             "feature_net='fmnist' (--feature-net fmnist)")
    w, own = sample_w(G, num, seed)
    if feature_net is None:
        labels, num_classes, source = own, G.c_dim, "network labels"
    else:
        probs = classify_samples(G, w, feature_net, batch_size)
        labels, num_classes, source = probs.argmax(dim=1), probs.shape[1], feature_net
    split = int(round(num * (1 - holdout)))
    counts = torch.bincount(labels, minlength=num_classes)
    train_counts = torch.bincount(labels[:split], minlength=num_classes)
    test_counts = torch.bincount(labels[split:], minlength=num_classes)

    def enough(k: int) -> bool:  # both sides present in both parts
        return 5 <= train_counts[k] <= split - 5 and 2 <= test_counts[k] <= num - split - 2

    if classes is None:
        classes = [k for k in range(num_classes) if enough(k)]
    else:
        classes = [int(k) for k in classes]
        for k in classes:
            if not 0 <= k < num_classes:
                raise UserInputError(f"class {k} is out of range: the labels have classes 0..{num_classes - 1}")
    rare = [k for k in classes if not enough(k)]
    if rare or not classes:
        raise UserInputError(f"too few samples labelled {rare or 'any class'} among {num} (counts per class "
                             f"{counts.tolist()}) to fit and check a boundary; raise --num or choose other classes")
    x = w.double()
    vectors, values = [], []
    for k in classes:
        y = (labels == k).double()
        normal, bias = _fit_boundary(x[:split], y[:split])
        vectors.append(normal)
        values.append(_balanced_accuracy(x[split:] @ normal + bias, y[split:]))
    return Directions("labels", torch.stack(vectors).float().numpy(), np.array(values), indices,
                      network_fingerprint(G),
                      dict(num=num, seed=seed, layers=layers, classes=classes, source=source,
                           feature_net=feature_net, holdout=holdout, class_counts=counts.tolist()))
