"""PPL: interpolation, outlier rejection and path lengths of generators with known geometry."""
import math

import numpy as np
import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.metrics.ppl import (PPLConfig, face_crop, lerp, load_ppl_distance, perceptual_path_length,
                                  reject_outliers_mean, slerp)


class LinearGenerator(torch.nn.Module):
    """mapping = identity, synthesis = scale * orthonormal map into 1x8x8 images."""

    def __init__(self, z_dim=16, scale=0.5):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, 0, z_dim, 1
        self.img_resolution, self.img_channels = 8, 1
        q, _ = torch.linalg.qr(torch.randn(64, z_dim, generator=torch.Generator().manual_seed(0)))
        self.register_buffer("basis", q * scale)

    def mapping(self, z, c):
        return z[:, None, :]

    def synthesis(self, ws, noise_mode="const"):
        return (ws[:, 0].double() @ self.basis.double().T).reshape(-1, 1, 8, 8)


def squared_l2(a, b):
    return (a.double() - b.double()).square().flatten(1).sum(1)


def test_slerp_endpoints_norm_and_constant_speed():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 8, generator=g, dtype=torch.float64), torch.randn(4, 8, generator=g, dtype=torch.float64)
    na, nb = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    torch.testing.assert_close(slerp(a, b, torch.zeros(4, dtype=torch.float64)), na)
    torch.testing.assert_close(slerp(a, b, torch.ones(4, dtype=torch.float64)), nb)
    mid = slerp(a, b, torch.full((4,), 0.5, dtype=torch.float64))
    torch.testing.assert_close(mid.norm(dim=1), torch.ones(4, dtype=torch.float64))
    # The angle travelled is t times the angle between a and b.
    angle = torch.acos((na * nb).sum(1))
    torch.testing.assert_close(torch.acos((na * mid).sum(1).clamp(-1, 1)), angle / 2)
    torch.testing.assert_close(lerp(a, b, torch.full((4,), 0.25, dtype=torch.float64)), a + (b - a) * 0.25)


def test_outlier_rejection_keeps_the_1st_to_99th_percentile():
    values = np.concatenate([np.arange(1.0, 99.0), [1e9, -1e9]])
    lo, hi = np.percentile(values, 1, method="lower"), np.percentile(values, 99, method="higher")
    expected = values[(values >= lo) & (values <= hi)].mean()
    assert reject_outliers_mean(values) == pytest.approx(expected)
    assert abs(reject_outliers_mean(values)) < 100


def test_w_space_endpoint_ppl_of_a_linear_generator():
    # d = ||s Q (w1 - w0) eps||^2 / eps^2 = s^2 ||z1 - z0||^2, whose mean is s^2 * 2 * z_dim.
    G = LinearGenerator(z_dim=16, scale=0.5)
    value = perceptual_path_length(G, squared_l2, PPLConfig(space="w", sampling="end"), num_samples=3000,
                                   batch_size=500, seed=0)
    assert value == pytest.approx(0.25 * 2 * 16, rel=0.04)


def test_z_space_endpoint_ppl_of_a_linear_generator():
    # slerp moves eps * theta along the unit sphere, so d = s^2 theta^2 with theta the angle between z0, z1.
    G = LinearGenerator(z_dim=16, scale=0.5)
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(20000, 16, generator=g), torch.randn(20000, 16, generator=g)
    theta2 = torch.acos(torch.nn.functional.cosine_similarity(a, b).clamp(-1, 1)).square().mean().item()
    value = perceptual_path_length(G, squared_l2, PPLConfig(space="z", sampling="end"), num_samples=3000,
                                   batch_size=500, seed=0)
    assert value == pytest.approx(0.25 * theta2, rel=0.04)


def test_ppl_is_reproducible_and_validates_config():
    G = LinearGenerator()
    config = PPLConfig(space="z", sampling="full")
    a = perceptual_path_length(G, squared_l2, config, num_samples=40, batch_size=16, seed=3)
    assert a == perceptual_path_length(G, squared_l2, config, num_samples=40, batch_size=16, seed=3)
    assert a != perceptual_path_length(G, squared_l2, config, num_samples=40, batch_size=16, seed=4)
    with pytest.raises(UserInputError, match="space"):
        PPLConfig(space="x")
    with pytest.raises(UserInputError, match="lpips-vgg16"):
        load_ppl_distance("nope")


def test_face_crop_region():
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    torch.testing.assert_close(face_crop(x), x[:, :, 3:7, 2:6])
    assert math.isclose(face_crop(torch.zeros(1, 3, 1024, 1024)).shape[2], 512)
