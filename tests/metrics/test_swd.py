"""SWD: Laplacian pyramid, patch extraction, normalisation and the sliced distance."""
import numpy as np
import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.metrics.swd import (laplacian_pyramid, normalize_descriptors, pyramid_up, random_patches,
                                  sliced_wasserstein)
from stylegan.metrics.swd import sliced_wasserstein_distance as swd


def test_pyramid_levels_and_exact_reconstruction():
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64) * 255
    levels = laplacian_pyramid(x)
    assert [lv.shape[2] for lv in levels] == [64, 32, 16]
    # Collapsing the pyramid (upsample and add, coarse to fine) gives the image back.
    image = levels[-1]
    for lv in reversed(levels[:-1]):
        image = lv + pyramid_up(image)
    torch.testing.assert_close(image, x)


def test_patches_are_slices_of_the_images():
    x = torch.arange(2 * 3 * 12 * 10, dtype=torch.float32).reshape(2, 3, 12, 10)
    rng = np.random.default_rng(0)
    patches = random_patches(x, per_image=5, size=7, rng=rng)
    assert patches.shape == (10, 3, 7, 7)
    rng = np.random.default_rng(0)
    ys, xs = rng.integers(0, 12 - 7 + 1, size=(2, 5)), rng.integers(0, 10 - 7 + 1, size=(2, 5))
    for n in range(2):
        for p in range(5):
            expected = x[n, :, ys[n, p]:ys[n, p] + 7, xs[n, p]:xs[n, p] + 7]
            torch.testing.assert_close(patches[n * 5 + p], expected)


def test_descriptor_normalisation_is_per_channel():
    desc = torch.randn(500, 3, 7, 7) * torch.tensor([1.0, 5.0, 0.1]).view(1, 3, 1, 1) + 7
    flat = normalize_descriptors(desc).reshape(500, 3, 7, 7)
    torch.testing.assert_close(flat.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(flat.std(dim=(0, 2, 3), unbiased=False), torch.ones(3, dtype=torch.float64))


def test_sliced_distance_of_a_shift_in_one_dimension():
    # In 1-D every unit direction is +-1, and W1 between a set and its shift by c is |c|.
    a = torch.randn(1000, 1, dtype=torch.float64)
    assert sliced_wasserstein(a, a + 0.3, np.random.default_rng(0)) == pytest.approx(0.3)
    assert sliced_wasserstein(a, a.clone(), np.random.default_rng(0)) == 0.0


def test_swd_ranks_similar_sets_below_different_ones_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    smooth = lambda n: torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=32, mode="bilinear")
    real = (smooth(64) * 255).to(torch.uint8)
    similar = (smooth(64) * 255).to(torch.uint8)
    noise = (torch.rand(64, 3, 32, 32, generator=g) * 255).to(torch.uint8)
    near, far = swd(real, similar, seed=1), swd(real, noise, seed=1)
    assert set(near) == {"swd_level0", "swd_level1", "swd_mean"}  # 32 and 16 pixel levels
    assert near["swd_mean"] < far["swd_mean"] / 2
    assert swd(real, noise, seed=1) == far


def test_swd_needs_equal_shapes():
    with pytest.raises(UserInputError, match="equal shape"):
        swd(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.zeros(4, 1, 32, 32, dtype=torch.uint8))
