"""Latent directions (tools/directions.py): SeFa against an independent SVD of the same weights, GANSpace's ordering
and reproducibility, label boundaries (conditional network; fmnist classifier on the demo network), the .npz format,
the fingerprint, layer specs, and StyleGAN v1 / v3 networks."""
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan.errors import FormatError, UserInputError
from stylegan.io.export import save_network
from stylegan.io.load import load_generator
from stylegan.networks.stylegan1 import Generator1
from stylegan.networks.stylegan3 import Generator3
from stylegan.tools.directions import (Directions, ganspace, label_directions, network_fingerprint, parse_layers,
                                       sample_w, sefa, style_affines)
from stylegan.tools.generate import seed_ws
from stylegan.tools.ws_io import save_ws

from official_helpers import OFFICIAL_SNAPSHOT, official_networks

DEMO = Path(__file__).resolve().parents[2] / "docs" / "assets" / "fmnist32-cpu.safetensors"

# tiny16 (StyleGAN2, 16x16, skip): which conv affine each w drives; w5 feeds only the last toRGB.
TINY16_STYLE_NAMES = {0: ["b4.conv1"], 1: ["b8.conv0"], 2: ["b8.conv1"], 3: ["b16.conv0"], 4: ["b16.conv1"]}


def tiny_v1():
    torch.manual_seed(0)
    return Generator1(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                      mapping_kwargs={"num_layers": 2}, fmap_base=64, fmap_max=16).eval().requires_grad_(False)


def tiny_v3():
    torch.manual_seed(0)
    G = Generator3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                   num_layers=4, num_critical=2, output_scale=1)
    with torch.no_grad():
        G.synthesis.input.affine.weight.normal_(0, 0.3)
    return G.eval().requires_grad_(False)


def svd_directions(mats):
    """Right singular vectors (rows) and squared singular values of the stacked matrices, by numpy."""
    A = np.concatenate(mats).astype(np.float64)
    _, s, vt = np.linalg.svd(A, full_matrices=True)
    return vt, np.pad(s ** 2, (0, vt.shape[0] - len(s)))


def assert_same_up_to_sign(vectors, reference, values, atol=1e-4):
    """Each vector equals its reference up to sign, where the eigenvalue is separated from its neighbours."""
    gaps = np.minimum(np.abs(np.diff(values, prepend=np.inf)), np.abs(np.diff(values, append=-np.inf)))
    distinct = gaps > 1e-3 * values[0]
    assert distinct.sum() >= len(values) // 2
    dots = np.abs(np.sum(vectors[distinct] * reference[distinct], axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=atol)


@pytest.fixture(scope="module")
def G():
    return load_generator(OFFICIAL_SNAPSHOT)


@pytest.fixture(scope="module")
def demo():
    return load_generator(DEMO)


@pytest.mark.parametrize("spec,indices", [("all", range(6)), ("middle", [1, 2]), ("1-3", [1, 2, 3]), ("4", [4])])
def test_sefa_matches_an_svd_of_the_style_weights(G, spec, indices):
    d = sefa(G, spec)
    state = G.state_dict()
    gain = 1 / np.sqrt(G.w_dim)  # equalized learning rate of the affines
    mats = [state[f"synthesis.{name}.affine.weight"].numpy() * gain
            for i in indices for name in TINY16_STYLE_NAMES.get(i, [])]
    reference, eigenvalues = svd_directions(mats)
    assert d.method == "sefa" and d.vectors.shape == (G.w_dim, G.w_dim) and d.layers == tuple(indices)
    np.testing.assert_allclose(d.vectors @ d.vectors.T, np.eye(G.w_dim), atol=1e-5)
    np.testing.assert_allclose(d.values, eigenvalues, rtol=1e-6, atol=1e-6 * eigenvalues[0])
    assert np.all(np.diff(d.values) <= 0)
    assert_same_up_to_sign(d.vectors, reference, d.values)


def test_sefa_refuses_layers_without_channel_styles(G):
    with pytest.raises(UserInputError, match="drive no channel styles"):
        sefa(G, "5")  # the last w feeds only the final toRGB


def test_style_affines_per_version():
    v1, v3 = tiny_v1(), tiny_v3()
    affines = style_affines(v1)
    assert sorted(affines) == list(range(v1.num_ws))
    # the scale half of each AdaIN style layer: layer k of block b is ws 2b + k
    style = v1.synthesis.b8.layer1.style
    np.testing.assert_allclose(affines[3][0].numpy(), style.weight[:16].double().numpy() * style.weight_gain)
    affines = style_affines(v3)
    assert sorted(affines) == list(range(1, v3.num_ws - 1))  # neither the input transform nor ToRGB
    for d in (sefa(v1), sefa(v3)):
        np.testing.assert_allclose(d.vectors @ d.vectors.T, np.eye(d.w_dim), atol=1e-5)
    layer = getattr(v3.synthesis, v3.synthesis.layer_names[1])
    reference, _ = svd_directions([layer.affine.weight.numpy() * layer.affine.weight_gain])
    d = sefa(v3, "2")
    assert abs(float(d.vectors[0] @ reference[0])) == pytest.approx(1, abs=1e-5)


def test_ganspace_sorted_bounded_and_reproducible(G):
    a = ganspace(G, num=500, seed=3, components=10)
    b = ganspace(G, num=500, seed=3, components=10)
    c = ganspace(G, num=500, seed=4, components=10)
    assert a.vectors.shape == (10, G.w_dim) and a.layers == tuple(range(G.num_ws))
    assert np.all(np.diff(a.values) <= 0) and np.all(a.values >= 0) and a.values.sum() <= 1 + 1e-9
    np.testing.assert_array_equal(a.vectors, b.vectors)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.allclose(a.values, c.values)
    np.testing.assert_allclose(a.vectors @ a.vectors.T, np.eye(10), atol=1e-5)
    w, _ = sample_w(G, 500, 3)
    np.testing.assert_allclose(a.mean, w.mean(0).numpy(), atol=1e-5)
    # all components explain everything; the first explains what the variance of w along it says
    full = ganspace(G, num=500, seed=3, components=G.w_dim)
    assert full.values.sum() == pytest.approx(1)
    centred = (w - w.mean(0)).double().numpy()
    along = (centred @ a.vectors[0].astype(np.float64)).var(ddof=1) / centred.var(axis=0, ddof=1).sum()
    assert a.values[0] == pytest.approx(along, rel=1e-4)
    with pytest.raises(UserInputError, match="components"):
        ganspace(G, num=100, components=G.w_dim + 1)
    with pytest.raises(UserInputError, match=">= 2"):
        ganspace(G, num=1)


def test_ganspace_and_sefa_on_v1_and_v3():
    for net in (tiny_v1(), tiny_v3()):
        d = ganspace(net, num=200, components=4, layers="coarse")
        assert d.vectors.shape == (4, net.w_dim) and d.layers == parse_layers("coarse", net)
        assert np.all(np.diff(d.values) <= 0) and d.values.sum() <= 1 + 1e-9
    assert ganspace(tiny_v1(), num=50).num_components == 16  # the default 32 capped at w_dim
    with pytest.raises(UserInputError, match="seed must be"):
        ganspace(tiny_v1(), num=50, seed=-1)


def test_label_directions_of_a_conditional_network():
    _, G, _ = official_networks("cond32")
    d = label_directions(G, num=1000, classes=[0, 3])
    assert d.method == "labels" and d.vectors.shape == (2, G.w_dim) and d.params["classes"] == [0, 3]
    assert d.params["source"] == "network labels"
    np.testing.assert_allclose(np.linalg.norm(d.vectors, axis=1), 1, atol=1e-6)
    assert np.all(d.values > 0.85)  # the class embedding separates the w of one class from the rest (chance: 0.5)
    with pytest.raises(UserInputError, match="out of range"):
        label_directions(G, num=400, classes=[10])


def test_label_directions_need_labels(G):
    with pytest.raises(UserInputError, match="unconditional"):
        label_directions(G, num=100)
    with pytest.raises(UserInputError, match="no class outputs|unknown feature net"):
        label_directions(G, num=100, feature_net="nope")


def test_label_direction_raises_the_classifier_probability_monotonically(demo):
    """On the demo network, the fmnist boundary of a class moves samples into that class, step by step."""
    from stylegan.metrics.fmnist_net import load_fmnist_net
    from stylegan.tools.edit import apply_direction

    cls = 9  # ankle boot: common in the demo network's samples
    d = label_directions(demo, feature_net="fmnist", num=1000, classes=[cls])
    assert d.params["feature_net"] == "fmnist" and d.values[0] > 0.75
    net = load_fmnist_net()
    ws = seed_ws(demo, list(range(16)))
    probs = []
    for strength in (-4, -2, 0, 2, 4, 6):
        with torch.no_grad():
            images = demo.synthesis(apply_direction(ws, d.vector(0), strength, d.layers), noise_mode="const")
            probs.append(net(images)[1].softmax(dim=1)[:, cls].mean().item())
    assert np.all(np.diff(probs) > 0), probs
    assert probs[-1] > 3 * probs[2]  # strength 6 vs unedited


def test_save_load_round_trip_and_foreign_files(G, tmp_path):
    d = ganspace(G, num=200, components=5, layers="1-3")
    path = d.save(tmp_path / "dirs.npz")
    back = Directions.load(path)
    assert back.method == "ganspace" and back.layers == (1, 2, 3) and back.fingerprint == d.fingerprint
    assert back.params == d.params
    np.testing.assert_array_equal(back.vectors, d.vectors)
    np.testing.assert_array_equal(back.values, d.values)
    np.testing.assert_array_equal(back.mean, d.mean)
    assert Directions.load(sefa(G).save(tmp_path / "s.npz")).mean is None
    save_ws(tmp_path / "ws.npz", torch.zeros([1, G.num_ws, G.w_dim]))
    with pytest.raises(FormatError, match="not a directions file .it holds ws"):
        Directions.load(tmp_path / "ws.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="not a directions file"):
        Directions.load(tmp_path / "junk.npz")
    with pytest.raises(UserInputError, match="no such file"):
        Directions.load(tmp_path / "missing.npz")
    with np.load(path) as data:
        arrays = dict(data)
    np.savez(tmp_path / "partial.npz", **{k: v for k, v in arrays.items() if k != "vectors"})
    with pytest.raises(FormatError, match="damaged directions file .no 'vectors' array"):
        Directions.load(tmp_path / "partial.npz")
    np.savez(tmp_path / "nan.npz", **{**arrays, "vectors": np.full_like(arrays["vectors"], np.nan)})
    with pytest.raises(FormatError, match="must be finite"):
        Directions.load(tmp_path / "nan.npz")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_fingerprint_survives_export_and_tells_networks_apart(G, tmp_path):
    save_network(tmp_path / "g.safetensors", {"G_ema": G})
    again = load_generator(tmp_path / "g.safetensors")
    assert network_fingerprint(again) == network_fingerprint(G)
    other = load_generator(DEMO)
    assert network_fingerprint(other) != network_fingerprint(G)
    d = sefa(G)
    d.check_network(again)
    with pytest.raises(UserInputError) as err:
        d.check_network(other)
    assert network_fingerprint(G) in str(err.value) and network_fingerprint(other) in str(err.value)
    with torch.no_grad():
        again.synthesis.b8.conv0.affine.weight[0, 0] += 1e-3  # a style weight: another network
    assert network_fingerprint(again) != network_fingerprint(G)


def test_parse_layers(G):
    assert parse_layers("all", G) == tuple(range(6))
    # 16x16: coarse 4 px, middle 8 px, fine 16 px (tools/layers.py on networks under 64 px)
    assert parse_layers("coarse", G) == (0,) and parse_layers("middle", G) == (1, 2)
    assert parse_layers("fine", G) == (3, 4, 5)
    assert parse_layers("0-2,4", G) == (0, 1, 2, 4) and parse_layers("3", G) == (3,)
    assert parse_layers("fine", 8, 32) == (5, 6, 7) and parse_layers("all", 8, 32) == tuple(range(8))
    for bad in ("6", "x", "3-1", ""):
        with pytest.raises(UserInputError, match="bad layers|no layers"):
            parse_layers(bad, G)
