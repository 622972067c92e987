"""io.clamp_effect: measuring what dropping conv_clamp changes (the threshold, early stop, seeds, sizes)."""
import copy

import numpy as np
import pytest
import torch

from stylegan.io.clamp_effect import (
    IMAGE_TOLERANCE, MAX_SEEDS, MIN_SEEDS, SCORE_TOLERANCE, conv_clamp_of, default_num_seeds, discriminator_effect,
    generator_effect, seed_latents, synthesis_macs,
)
from stylegan.networks.discriminator import Discriminator
from stylegan.networks.stylegan2 import Generator


def generator(**overrides):
    kwargs = dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                  channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=256)
    torch.manual_seed(0)
    return Generator(**{**kwargs, **overrides}).eval()


def shifted(G, delta):
    """A copy of G whose images are G's plus `delta` everywhere (the last ToRGB bias moved; skip architecture)."""
    free = copy.deepcopy(G)
    with torch.no_grad():
        free.synthesis.b16.torgb.bias += delta
    return free


def test_seed_latents_are_nvidias():
    z = seed_latents(range(3, 6), 7)
    assert z.dtype == torch.float32 and z.shape == (3, 7)
    assert torch.equal(z[1], torch.from_numpy(np.random.RandomState(4).randn(7)).float())


@pytest.mark.parametrize("levels, negligible", [(0.9, True), (1.1, False)])
def test_generator_threshold_is_half_an_8_bit_level(levels, negligible):
    G = generator()
    effect = generator_effect("G_ema", G, shifted(G, levels / 255), num_seeds=200)
    assert IMAGE_TOLERANCE == 1 / 255 and effect.tolerance == IMAGE_TOLERANCE
    assert effect.max_abs_diff == pytest.approx(levels / 255, abs=1e-6) and effect.negligible is negligible
    assert (effect.role, effect.conv_clamp, effect.output) == ("G_ema", 256, "images")
    # Above the threshold the first batch (64 images at 16x16) decides: stopped early, a lower bound.
    assert (effect.num_seeds, effect.stopped_early) == ((200, False) if negligible else (64, True))
    assert effect.worst_seed in range(effect.num_seeds)
    text = str(effect)
    assert text.startswith(f"G_ema without conv_clamp=256: its images of seeds 0-{effect.num_seeds - 1} change by ")
    assert ("max |Δ| >= " in text) is not negligible and text.endswith("(<= 0.00392)")


def test_identical_networks_change_nothing():
    G = generator()
    effect = generator_effect("G", G, copy.deepcopy(G), num_seeds=70)
    assert effect.max_abs_diff == 0 and effect.negligible and effect.num_seeds == 70 and not effect.stopped_early


@pytest.mark.parametrize("scale", [1.0, 300.0])
@pytest.mark.parametrize("fraction, negligible", [(0.5, True), (2.0, False)])
def test_discriminator_threshold_is_relative_to_its_scores(scale, fraction, negligible):
    """Negligible: max |Δ score| <= 1e-3 max(1, max |score|); scale 300 makes the scores exceed 1."""
    G = generator()
    torch.manual_seed(1)
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=32,
                      num_fp16_res=0, conv_clamp=256).eval()
    with torch.no_grad():
        D.b4.out.weight *= scale
        scores = D(G(seed_latents(range(64), 16), None, noise_mode="const"))  # the first batch measured
    tolerance = SCORE_TOLERANCE * max(1.0, scores.abs().max().item())
    assert (tolerance > SCORE_TOLERANCE) is (scale > 1)
    free = copy.deepcopy(D)
    with torch.no_grad():
        free.b4.out.bias += fraction * tolerance
    effect = discriminator_effect("D", D, free, G, num_seeds=64)
    assert effect.output == "scores" and effect.conv_clamp == 256
    assert effect.tolerance == pytest.approx(tolerance)
    assert effect.max_abs_diff == pytest.approx(fraction * tolerance, rel=1e-3) and effect.negligible is negligible


def test_conv_clamp_of():
    assert conv_clamp_of(generator()) == 256
    assert conv_clamp_of(generator(conv_clamp=None)) is None


def test_number_of_seeds_follows_the_network_size():
    """A few thousand for small networks, MIN_SEEDS for NVIDIA's big ones (counted on the meta device)."""
    assert default_num_seeds(generator()) == MAX_SEEDS == 4096
    with torch.device("meta"):
        ffhq = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3, channel_base=32768,
                         channel_max=512, num_fp16_res=4, conv_clamp=256)
        mid = Generator(z_dim=64, c_dim=0, w_dim=64, img_resolution=64, img_channels=3, channel_base=4096,
                        channel_max=128, num_fp16_res=0, conv_clamp=256)
    assert default_num_seeds(ffhq) == MIN_SEEDS == 8
    assert 1.3e11 < synthesis_macs(ffhq) < 1.5e11  # multiply-adds per 1024x1024 image (config F)
    assert MIN_SEEDS < default_num_seeds(mid) < MAX_SEEDS
