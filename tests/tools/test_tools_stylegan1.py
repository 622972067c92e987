"""The tools on a StyleGAN (v1) generator: two noise layers per resolution, its own truncation default."""
import numpy as np
import pytest
import torch

from stylegan.tools.export import example_inputs, export_generator, verify_export
from stylegan.tools.generate import seed_ws
from stylegan.tools.mixing import style_mixing_images
from stylegan.tools.noise import noise_layers, noise_variation

stylegan1 = pytest.importorskip("stylegan.networks.stylegan1")


@pytest.fixture(scope="module")
def G1():
    torch.manual_seed(0)
    G = stylegan1.Generator1(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                             mapping_kwargs={"num_layers": 2}, fmap_base=64, fmap_max=16).eval()
    with torch.no_grad():
        for m in noise_layers(G):
            m.noise_strength.fill_(0.2)  # fresh v1 networks start with zero noise strength
        G.mapping.w_avg.normal_()
    return G


def test_noise_layers_and_variation(G1):
    assert [m.resolution for m in noise_layers(G1)] == [4, 4, 8, 8, 16, 16]  # ws index k drives layer k
    ws = seed_ws(G1, [1])
    _, std = noise_variation(G1, ws, 1, 10)
    _, std_none = noise_variation(G1, ws, 1, 10, noise_mode="none")
    assert std.max() > 0.01 and std_none.max() < 1e-5


def test_mixing_all_layers_gives_the_column_image(G1):
    parts = style_mixing_images(G1, [1], [2], list(range(G1.num_ws)), truncation_psi=0.7)
    assert np.abs(parts["cells"][0, 0].astype(int) - parts["cols"][0].astype(int)).max() <= 1


def test_torchscript_export_keeps_v1_truncation(G1, tmp_path):
    path = export_generator(G1, tmp_path / "G1.pt", "torchscript")
    assert verify_export(G1, path, "torchscript", seeds=[1, 2, 3], psi=0.5) < 1e-5
    z, psi = example_inputs(G1, [1, 2, 3], psi=0.5)
    with torch.no_grad():
        expected = G1(z, None, truncation_psi=0.5, noise_mode="const")  # v1's own default cutoff
        assert torch.allclose(torch.jit.load(str(path))(z, psi), expected, atol=1e-5)
