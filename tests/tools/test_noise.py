"""tools.noise: stochastic variation (StyleGAN figure 4) and per-layer noise restriction."""
import numpy as np
import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.tools.generate import seed_ws
from stylegan.tools.noise import noise_figure, noise_layers, noise_only_in, noise_variation, std_image



def strengths(G):
    return [m.noise_strength.detach().clone() for m in noise_layers(G)]


def test_noise_layers_follow_the_ws(G):
    # StyleGAN2: the k-th conv layer takes w_k; 4x4 has one conv, every other block two.
    assert [m.resolution for m in noise_layers(G)] == [4, 8, 8, 16, 16]


@pytest.mark.parametrize("mode", ["none", "const"])
def test_std_is_zero_without_random_noise(G, mode):
    samples, std = noise_variation(G, seed_ws(G, [1]), num_samples=3, num_std=10, noise_mode=mode)
    assert std.shape == (16, 16) and std.max() < 1e-5  # zero up to float rounding across batch sizes
    assert np.array_equal(samples[0], samples[2])


def test_random_noise_varies_details(G):
    rng = torch.get_rng_state()
    samples, std = noise_variation(G, seed_ws(G, [1]), num_samples=3, num_std=20)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is left as it was
    assert samples.shape == (3, 16, 16, 3)
    assert std.min() >= 0 and std.max() > 0.05
    assert not np.array_equal(samples[0], samples[1])
    again, std_again = noise_variation(G, seed_ws(G, [1]), num_samples=3, num_std=20)
    assert np.array_equal(samples, again) and np.allclose(std, std_again)  # noise_seed makes it reproducible


def test_std_is_the_per_pixel_std_of_the_draws(G):
    ws = seed_ws(G, [4])
    draws, std = noise_variation(G, ws, num_samples=3, num_std=12, batch_size=5, noise_seed=7)
    state = torch.get_rng_state()
    torch.manual_seed(7)  # the same draws, by hand: batches of 5, 5, 2
    with torch.no_grad():
        images = torch.cat([G.synthesis(ws.expand(n, -1, -1), noise_mode="random") for n in (5, 5, 2)]).double()
    torch.set_rng_state(state)
    expected = images.std(dim=0, unbiased=True).mean(dim=0).numpy()  # over draws, then averaged over channels
    assert np.allclose(std, expected, atol=1e-5)
    assert np.array_equal(draws, (images[:3] * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())


def test_restricting_noise_zeroes_others_and_restores(G):
    before = strengths(G)
    with noise_only_in(G, [3, 4]) as kept:
        assert kept == [3, 4]
        inside = strengths(G)
        assert all(float(s) == 0 for s in inside[:3])
        assert torch.equal(inside[3], before[3]) and torch.equal(inside[4], before[4])
    assert all(torch.equal(a, b) for a, b in zip(strengths(G), before))
    with pytest.raises(RuntimeError, match="boom"):
        with noise_only_in(G, [0]):
            raise RuntimeError("boom")
    assert all(torch.equal(a, b) for a, b in zip(strengths(G), before))  # restored after an error too


def test_restricted_noise_changes_the_std_map(G):
    ws = seed_ws(G, [2])
    _, full = noise_variation(G, ws, 1, 20)
    _, coarse = noise_variation(G, ws, 1, 20, layers="coarse")
    _, fine = noise_variation(G, ws, 1, 20, layers="fine")
    assert coarse.max() > 0 and fine.max() > 0
    assert not np.allclose(coarse, full) and not np.allclose(fine, coarse)
    with pytest.raises(UserInputError, match="no noise inputs"):
        noise_variation(G, ws, 1, 20, layers=[G.num_ws - 1])  # the last w feeds only the final toRGB


def test_figure_layout_and_display(G):
    fig = noise_figure(G, [1, 2], num_samples=3, num_std=10)
    assert fig.shape == (2 * 16, 4 * 16, 3)
    std_tile = fig[:16, 48:]
    assert std_tile.max() == 255 and np.all(std_tile[..., 0] == std_tile[..., 1])  # normalised gray
    assert np.all(std_image(np.zeros([4, 4])) == 0)
    assert std_image(np.array([[0.0, 2.0]]), channels=1).tolist() == [[[0], [255]]]


@pytest.mark.parametrize("kwargs,message", [
    (dict(num_samples=0), "samples"), (dict(num_std=1), "draws"), (dict(layers="99"), "out of range"),
])
def test_bad_arguments(G, kwargs, message):
    with pytest.raises(UserInputError, match=message):
        noise_variation(G, seed_ws(G, [1]), **{"num_samples": 2, "num_std": 4, **kwargs})
