"""compute_metric end to end on tiny data: records, reproducibility, the statistics cache, bad input."""
import json

import numpy as np
import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.metrics import METRICS, compute_metric
from stylegan.metrics import evaluate

from metrics_helpers import TinyGenerator, blob_images, write_folder


def test_fid_end_to_end_with_a_generator(tiny_generator, real_folder, tmp_path):
    record = compute_metric("fid10k_full", generator=tiny_generator, data=str(real_folder), feature_net="fmnist",
                            num=64, batch_size=32, cache_dir=tmp_path / "cache")
    assert record["metric"] == "fid10k_full" and record["feature_net"] == "fmnist"
    assert record["num_fake"] == 64 and record["num_real"] == 80
    assert np.isfinite(record["value"]) and record["value"] > 0
    assert record["results"] == {"fid": record["value"]}
    json.dumps(record)  # JSON-ready


def test_same_seed_same_value_and_other_seed_other_value(tiny_generator, real_folder):
    kwargs = dict(generator=tiny_generator, data=str(real_folder), feature_net="fmnist", num=32, batch_size=16)
    a = compute_metric("kid50k_full", seed=1, **kwargs)["value"]
    assert compute_metric("kid50k_full", seed=1, **kwargs)["value"] == a
    assert compute_metric("kid50k_full", seed=2, **kwargs)["value"] != a


def test_random_noise_is_seeded_too(real_folder):
    G = TinyGenerator()
    kwargs = dict(generator=G, data=str(real_folder), feature_net="fmnist", num=32, noise_mode="random")
    assert compute_metric("fid10k_full", **kwargs)["value"] == compute_metric("fid10k_full", **kwargs)["value"]


def test_real_statistics_are_cached_and_reused(tiny_generator, real_folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    kwargs = dict(generator=tiny_generator, data=str(real_folder), feature_net="fmnist", num=32, cache_dir=cache)
    first = compute_metric("fid10k_full", **kwargs)
    assert first["real_stats_cached"] is False
    assert len(list(cache.glob("mean_cov-*.safetensors"))) == 1
    # The second call must not read a single real image.
    from stylegan.metrics import image_sources
    def no_reading(self, start, stop):
        raise AssertionError("real images were read despite the cache")
    monkeypatch.setattr(image_sources.DatasetSource, "read", no_reading)
    second = compute_metric("fid10k_full", **kwargs)
    assert second["real_stats_cached"] is True and second["value"] == first["value"]
    monkeypatch.undo()
    # A different real count is a different cache entry.
    third = compute_metric("fid10k_full", num_real=40, **kwargs)
    assert third["real_stats_cached"] is False and third["num_real"] == 40


def test_fakes_folder_equals_fakes_array(real_folder, tmp_path):
    fakes = blob_images(40, seed=5)
    folder = write_folder(tmp_path / "fakes", fakes)
    from_folder = compute_metric("fid10k_full", fakes=str(folder), data=str(real_folder), feature_net="fmnist")
    from_array = compute_metric("fid10k_full", fakes=fakes, data=str(real_folder), feature_net="fmnist")
    assert from_folder["num_fake"] == 40 and from_folder["value"] == pytest.approx(from_array["value"], rel=1e-9)
    # Same distribution scores far better than a distorted one.
    noisy = np.clip(fakes.astype(int) + np.random.default_rng(0).integers(-90, 90, fakes.shape), 0, 255).astype(np.uint8)
    assert compute_metric("fid10k_full", fakes=noisy, data=str(real_folder), feature_net="fmnist")["value"] > from_array["value"]


def test_other_metrics_run_on_tiny_data(tiny_generator, real_folder):
    common = dict(generator=tiny_generator, data=str(real_folder), feature_net="fmnist", num=24, batch_size=12)
    pr = compute_metric("pr50k3_full", **common)
    assert set(pr["results"]) == {"precision", "recall"} and all(0 <= v <= 1 for v in pr["results"].values())
    inception_score = compute_metric("is50k", **common)
    assert 1 <= inception_score["value"] <= 10 and inception_score["num_real"] == 0
    swd = compute_metric("swd", generator=tiny_generator, data=str(real_folder), num=16, batch_size=8)
    assert swd["num_real"] == swd["num_fake"] == 16 and swd["value"] > 0
    assert set(swd["results"]) == {"swd_level0", "swd_mean"}  # 16x16 images: one pyramid level
    rgb = compute_metric("swd", generator=TinyGenerator(channels=3), data=str(real_folder), num=16, batch_size=8)
    assert rgb["value"] > 0  # gray data against an RGB generator is compared in RGB
    ppl = compute_metric("ppl2_wend", generator=tiny_generator, num=8, batch_size=4, ppl_distance="fmnist")
    assert ppl["distance"] == "fmnist-uniform" and ppl["value"] > 0


def test_conditional_generators_get_labels(real_folder):
    G = TinyGenerator(c_dim=3)
    record = compute_metric("fid10k_full", generator=G, data=str(real_folder), feature_net="fmnist", num=16)
    assert np.isfinite(record["value"])
    images = evaluate.GeneratorImages(G, 8, 8, seed=0).batch(0)
    assert images.dtype == torch.uint8 and images.shape == (8, 1, 16, 16)


def test_bad_inputs_name_the_problem(tiny_generator, real_folder):
    with pytest.raises(UserInputError) as err:
        compute_metric("fid1k", generator=tiny_generator, data=str(real_folder))
    for name in METRICS:
        assert name in str(err.value)
    with pytest.raises(UserInputError, match="exactly one"):
        compute_metric("fid10k_full", data=str(real_folder))
    with pytest.raises(UserInputError, match="needs a generator"):
        compute_metric("ppl2_wend", fakes=blob_images(4, 0))
    with pytest.raises(UserInputError, match="--data"):
        compute_metric("fid10k_full", generator=tiny_generator, feature_net="fmnist", num=4)


def test_corrupt_cache_file_is_a_miss_and_gets_rewritten(tiny_generator, real_folder, tmp_path):
    cache = tmp_path / "cache"
    kwargs = dict(generator=tiny_generator, data=str(real_folder), feature_net="fmnist", num=16, cache_dir=cache)
    first = compute_metric("fid10k_full", **kwargs)
    (entry,) = cache.glob("mean_cov-*.safetensors")
    entry.write_bytes(b"not a safetensors file")
    second = compute_metric("fid10k_full", **kwargs)
    assert second["real_stats_cached"] is False and second["value"] == first["value"]
    assert compute_metric("fid10k_full", **kwargs)["real_stats_cached"] is True
