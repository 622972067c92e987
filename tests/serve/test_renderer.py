"""serve.renderer: request validation, latents (seeds, interpolation, mixing), noise, cache, serialisation."""
import io
import threading
import time

import numpy as np
import pytest
import torch
from serve_testing import decode, fixture_generator, tiny_generator

from stylegan.serve.renderer import (
    Renderer,
    RenderRequest,
    RequestError,
    network_info,
    parse_request,
)
from stylegan.tools.generate import generate_images
from stylegan.io.images import to_uint8
from stylegan.tools.layers import style_ranges
from stylegan.tools.mixing import mix_styles


@pytest.fixture(scope="module")
def G():
    torch.set_num_threads(1)
    return tiny_generator()


def test_seed_and_truncation_match_generate(G):
    renderer = Renderer(G)
    for psi in (1.0, 0.6):
        shown = decode(renderer.render(renderer.parse({"seed": 7, "psi": psi})).png)
        assert np.array_equal(shown, generate_images(G, [7], truncation_psi=psi)[0])


def test_the_inference_path_runs_the_synthesis_and_only_the_synthesis(G):
    from stylegan.runtime.choice import PathChoice
    from stylegan.runtime.path import FAST
    plain, bf16 = Renderer(G), Renderer(G, path=PathChoice(FAST.replace(precision="bf16"), "flags"))
    req = plain.parse({"seed": 5, "psi": 0.7})
    assert torch.equal(bf16.compute_ws(req), plain.compute_ws(req))  # ws (and their downloads) stay float32
    exact, rounded = plain.render_image(req), bf16.render_image(req)
    # bf16 autocast changes the synthesis's arithmetic: close, not equal
    assert not np.array_equal(exact, rounded)
    assert np.abs(exact.astype(int) - rounded.astype(int)).mean() < 4
    assert bf16.info["path"].startswith("path: bf16, NCHW") and plain.info["path"] == "path: fp32, as loaded"


def test_interpolation_is_linear_in_w(G):
    renderer = Renderer(G)
    w3 = renderer.compute_ws(renderer.parse({"seed": 3, "psi": 0.8}))
    w9 = renderer.compute_ws(renderer.parse({"seed": 9, "psi": 0.8}))
    at = lambda t: renderer.compute_ws(renderer.parse({"seed": 3, "seed2": 9, "t": t, "psi": 0.8}))
    torch.testing.assert_close(at(0.0), w3)
    torch.testing.assert_close(at(1.0), w9)
    torch.testing.assert_close(at(0.25), 0.75 * w3 + 0.25 * w9)


def test_mixing_takes_the_chosen_layers_from_the_second_seed(G):
    renderer = Renderer(G)
    base = renderer.compute_ws(renderer.parse({"seed": 1}))
    other = renderer.compute_ws(renderer.parse({"seed": 2}))
    mixed = renderer.compute_ws(renderer.parse({"seed": 1, "mix_seed": 2, "mix_layers": [0, 5]}))
    for idx in range(G.num_ws):
        source = other if idx in (0, 5) else base
        torch.testing.assert_close(mixed[:, idx], source[:, idx])
    fine = renderer.parse({"seed": 1, "mix_seed": 2, "mix_layers": "fine"})
    assert list(fine.mix_layers) == style_ranges(G)["fine"]
    assert torch.equal(mix_styles(base, other, []), base)


def test_noise_strength_multiplier_scales_the_learned_strengths(G):
    renderer = Renderer(G, cache_size=0)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    img = lambda **kw: decode(renderer.render(renderer.parse({"seed": 4, **kw})).png).astype(int)
    plain, none = img(), img(noise_mode="none")
    assert np.abs(plain - none).mean() > 0.5  # the fixture's noise is visible
    assert np.array_equal(img(noise_strength=0.0), none)
    assert np.abs(img(noise_strength=3.0) - none).mean() > 2 * np.abs(plain - none).mean()
    for key, value in G.state_dict().items():  # the multiplier is undone after each render
        assert torch.equal(value, before[key]), key


def test_cache_hits_lru_eviction_and_random_noise(G):
    renderer = Renderer(G, cache_size=2)
    first = renderer.render(renderer.parse({"seed": 1}))
    again = renderer.render(renderer.parse({"seed": 1, "t": 0.7}))  # t without seed2 is the same request
    assert not first.cached and again.cached and again.png == first.png and again.ms == 0
    renderer.render(renderer.parse({"seed": 2}))
    renderer.render(renderer.parse({"seed": 3}))  # evicts seed 1, the least recently used
    assert renderer.render(renderer.parse({"seed": 3})).cached
    assert not renderer.render(renderer.parse({"seed": 1})).cached
    assert (renderer.stats.hits, renderer.stats.misses) == (2, 4)
    noisy = renderer.parse({"seed": 1, "noise_mode": "random"})
    a, b = renderer.render(noisy), renderer.render(noisy)
    assert not a.cached and not b.cached and a.png != b.png


def test_concurrent_renders_run_one_at_a_time(G):
    renderer = Renderer(G)
    active, peak, lock = [0], [0], threading.Lock()
    original = G.synthesis.forward

    def counting_forward(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)  # widen the window in which an unserialised render would overlap
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    G.synthesis.forward = counting_forward
    results = {}
    try:
        def work(seed):
            results[seed] = renderer.render(renderer.parse({"seed": seed, "noise_strength": 1 + seed / 10}))
        threads = [threading.Thread(target=work, args=(s,)) for s in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        del G.synthesis.forward
    assert peak[0] == 1 and len(results) == 6
    for seed, result in results.items():  # each thread got its own image, with its own noise multiplier
        expected = Renderer(G, cache_size=0).render(parse_request({"seed": seed, "noise_strength": 1 + seed / 10}, G))
        assert result.png == expected.png


def test_ws_npz_has_the_rendered_w(G):
    renderer = Renderer(G)
    req = renderer.parse({"seed": 5, "psi": 0.5, "mix_seed": 6, "mix_layers": "coarse"})
    with np.load(io.BytesIO(renderer.ws_npz(req))) as data:
        assert list(data.keys()) == ["w"]
        w = data["w"]
    assert w.shape == (1, G.num_ws, G.w_dim) and w.dtype == np.float32
    image = to_uint8(G.synthesis(torch.from_numpy(w), noise_mode="const"))[0]
    assert np.array_equal(decode(renderer.render(req).png), image)


@pytest.mark.parametrize("data,message", [
    ({}, "'seed' is required"),
    ({"seed": -1}, "'seed' = -1 is out of range 0..4294967295"),
    ({"seed": 2 ** 32}, "out of range"),
    ({"seed": "7"}, "'seed' must be an integer"),
    ({"seed": 1.5}, "'seed' must be an integer"),
    ({"seed": True}, "'seed' must be an integer"),
    ({"seed": 1, "psi": 2.5}, "'psi' = 2.5 is out of range [-2.0, 2.0]"),
    ({"seed": 1, "psi": "x"}, "'psi' must be a number"),
    ({"seed": 1, "cutoff": 9}, "'cutoff' = 9 is out of range 0..8"),
    ({"seed": 1, "seed2": 2, "t": 1.5}, "'t' = 1.5 is out of range [0.0, 1.0]"),
    ({"seed": 1, "mix_seed": 2, "mix_layers": [8]}, "layer indices must be integers 0..7"),
    ({"seed": 1, "mix_seed": 2, "mix_layers": "sideways"}, "cannot read layers"),
    ({"seed": 1, "mix_seed": 2, "mix_layers": 3}, "'mix_layers' must be a list"),
    ({"seed": 1, "noise_mode": "loud"}, "'noise_mode' must be one of random, const, none"),
    ({"seed": 1, "noise_strength": 6}, "'noise_strength' = 6 is out of range [0.0, 5.0]"),
    ({"seed": 1, "noise_strength": float("nan")}, "'noise_strength' must be a number"),
    ({"seed": 1, "class": 0}, "this network is unconditional"),
    ({"seed": 1, "psy": 0.5}, "unknown field 'psy'"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_requests_are_refused_with_a_reason(G, data, message):
    with pytest.raises(RequestError) as info:
        parse_request(data, G)
    assert message in str(info.value)


def test_conditional_network_needs_a_class_in_range():
    G = fixture_generator("cond32")
    renderer = Renderer(G)
    assert renderer.info["conditional"] and renderer.info["c_dim"] == G.c_dim
    with pytest.raises(RequestError, match="'class' is required"):
        renderer.parse({"seed": 1})
    with pytest.raises(RequestError, match=f"out of range 0..{G.c_dim - 1}"):
        renderer.parse({"seed": 1, "class": G.c_dim})
    images = [decode(renderer.render(renderer.parse({"seed": 1, "class": k})).png) for k in (0, 1)]
    assert not np.array_equal(*images)
    assert G.img_channels == 3 and np.array_equal(images[1], generate_images(G, [1], class_idx=1)[0])


def test_network_info_summarises_the_generator(G):
    info = network_info(G)
    assert info["kind"] == "StyleGAN2" and info["architecture"] == "skip"
    assert (info["img_resolution"], info["img_channels"], info["num_ws"]) == (32, 3, 8)
    assert info["num_params"] == sum(p.numel() for p in G.parameters())
    assert info["ws_resolutions"] == [4, 8, 8, 16, 16, 32, 32, 32]
    assert info["style_ranges"] == style_ranges(G) and info["default_cutoff"] == 8
    assert info["conditional"] is False and info["has_noise"] and info["can_truncate"]


def test_request_is_a_hashable_cache_key(G):
    a = parse_request({"seed": 1, "mix_seed": 2, "mix_layers": [3, 1, 3]}, G)
    b = parse_request({"seed": 1, "mix_seed": 2, "mix_layers": [1, 3]}, G)
    assert a == b and hash(a) == hash(b) and a.mix_layers == (1, 3)
    assert parse_request({"seed": 1, "mix_seed": 2}, G) == RenderRequest(seed=1)  # no layers: no mixing


def test_stylegan1_generators_render_too():
    stylegan1 = pytest.importorskip("stylegan.networks.stylegan1", reason="StyleGAN v1 networks not in this build")
    torch.manual_seed(0)
    G = stylegan1.Generator1(z_dim=32, c_dim=0, w_dim=32, img_resolution=32, img_channels=3, fmap_base=256,
                             fmap_max=32).eval()
    renderer = Renderer(G)
    assert renderer.info["kind"] == "StyleGAN (v1)" and renderer.info["default_cutoff"] == G.truncation_cutoff
    shown = decode(renderer.render(renderer.parse({"seed": 3, "psi": 0.5})).png)
    assert np.array_equal(shown, generate_images(G, [3], truncation_psi=0.5)[0])  # v1's default cutoff applies
    mixed = renderer.parse({"seed": 3, "mix_seed": 4, "mix_layers": "coarse", "noise_strength": 2})
    assert renderer.render(mixed).png != renderer.render(renderer.parse({"seed": 3})).png
