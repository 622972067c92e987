"""The explorer on a StyleGAN3 network: translate/rotate request fields, per-request transforms, the API."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("starlette", reason="the explorer needs starlette (pip install starlette uvicorn)")
pytest.importorskip("uvicorn", reason="the explorer needs uvicorn (pip install starlette uvicorn)")

from stylegan.networks.stylegan3 import Generator3, make_transform  # noqa: E402
from stylegan.serve.app import create_app  # noqa: E402
from stylegan.serve.renderer import Renderer, RenderRequest, RequestError, network_info, parse_request  # noqa: E402
from stylegan.tools.generate import seed_ws  # noqa: E402
from stylegan.io.images import to_uint8  # noqa: E402

from serve_testing import http, live_server, tiny_generator  # noqa: E402


def tiny_sg3(seed=0):
    """A 16x16 StyleGAN3-T with 4 layers; the input affine perturbed so that w moves the grid (as trained ones)."""
    torch.manual_seed(seed)
    G = Generator3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                   num_layers=4, num_critical=2, output_scale=1)
    with torch.no_grad():
        G.synthesis.input.affine.weight.normal_(0, 0.3)
    return G.eval().requires_grad_(False)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def G():
    return tiny_sg3()


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png))).astype(np.int64)


def reference(G, seed, translate=(0, 0), angle=0):
    """The image gen_images.py would render: transform buffer = inv(make_transform(translate, angle))."""
    saved = G.synthesis.input.transform.clone()
    try:
        G.synthesis.input.transform.copy_(torch.linalg.inv(make_transform(translate, angle)))
        return to_uint8(G.synthesis(seed_ws(G, [seed]), noise_mode="const"))[0].astype(np.int64)
    finally:
        G.synthesis.input.transform.copy_(saved)


def test_info_describes_a_stylegan3_network(G):
    info = network_info(G)
    assert info["kind"] == "StyleGAN3" and info["architecture"].startswith("alias-free, T")
    assert info["has_transform"] is True and info["has_noise"] is False
    assert info["ws_resolutions"] == G.ws_resolutions() and len(info["ws_resolutions"]) == G.num_ws == 6
    assert sorted(sum(info["style_ranges"].values(), [])) == list(range(G.num_ws))
    assert info["bounds"]["translate"] == [-2.0, 2.0] and info["bounds"]["rotate"] == [-360.0, 360.0]
    assert network_info(tiny_generator(resolution=8))["has_transform"] is False


def test_translate_and_rotate_are_per_request_and_do_not_leak(G):
    stored = torch.linalg.inv(make_transform((0.1, -0.05), 7)).float()
    G.synthesis.input.transform.copy_(stored)  # a network saved with its own transform
    try:
        renderer = Renderer(G)
        plain = decode(renderer.render(renderer.parse({"seed": 3})).png)
        # As gen_images.py: the request's values replace the stored transform, so no fields = untransformed.
        assert np.array_equal(plain, reference(G, 3))
        moved = decode(renderer.render(renderer.parse({"seed": 3, "translate": [0.25, 0]})).png)
        assert np.array_equal(moved, reference(G, 3, (0.25, 0)))
        # StyleGAN3-T is translation equivariant: 0.25 image widths = 4 pixels to the right (inside the border).
        assert np.abs(np.roll(plain, 4, axis=1) - moved)[4:12, 6:12].max() <= 1
        down = decode(renderer.render(renderer.parse({"seed": 3, "translate": [0, 0.25]})).png)
        assert np.abs(np.roll(plain, 4, axis=0) - down)[6:12, 4:12].max() <= 1
        turned = decode(renderer.render(renderer.parse({"seed": 3, "rotate": 30})).png)
        assert np.array_equal(turned, reference(G, 3, angle=30)) and not np.array_equal(turned, plain)
        assert torch.equal(G.synthesis.input.transform, stored)  # restored after every render
        again = renderer.render(renderer.parse({"seed": 3}))
        assert again.cached and np.array_equal(decode(again.png), plain)
        assert renderer.parse({"seed": 3, "translate": [-0.0, 0], "rotate": -0.0}) == RenderRequest(seed=3)
    finally:
        G.synthesis.input.transform.copy_(torch.eye(3))


@pytest.mark.parametrize("data,message", [
    ({"seed": 1, "translate": 0.5}, "'translate' must be [x, y]"),
    ({"seed": 1, "translate": [0.5]}, "'translate' must be [x, y]"),
    ({"seed": 1, "translate": [0.5, "a"]}, "must be a number"),
    ({"seed": 1, "translate": [0, 3]}, "out of range"),
    ({"seed": 1, "rotate": "90"}, "'rotate' must be a number"),
    ({"seed": 1, "rotate": 400}, "out of range"),
    ({"seed": 1, "rotate": float("nan")}, "'rotate' must be a number"),
])
def test_bad_transform_fields(G, data, message):
    with pytest.raises(RequestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_request(data, G)


def test_stylegan2_refuses_translate_and_rotate():
    G2 = tiny_generator(resolution=8)
    for field in ({"translate": [0.1, 0]}, {"rotate": 10}):
        with pytest.raises(RequestError, match="StyleGAN3"):
            parse_request({"seed": 1, **field}, G2)
    assert parse_request({"seed": 1, "translate": [0, 0], "rotate": 0}, G2) == RenderRequest(seed=1)


def test_api_renders_translated_images_and_refuses_bad_fields(G):
    with live_server(create_app(G, name="sg3-tiny")) as url:
        status, _, body = http(url + "/api/info")
        assert status == 200 and b'"has_transform":true' in body
        status, headers, png = http(url + "/api/render", {"seed": 5, "translate": [0.125, -0.25], "rotate": 20})
        assert status == 200 and headers["content-type"] == "image/png"
        assert np.array_equal(decode(png), reference(G, 5, (0.125, -0.25), 20))
        status, _, body = http(url + "/api/render", {"seed": 5, "translate": [0, 9]})
        assert status == 400 and b"out of range" in body
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))
