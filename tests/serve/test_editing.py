"""Semantic edits in the explorer: serve.editing (Editor, request parsing) and its HTTP API (/api/directions, the
'edit' field of /api/render and /api/w, --directions files), on StyleGAN2, a conditional network, v1 and v3."""
import io
import json

import numpy as np
import pytest
import torch

pytest.importorskip("starlette", reason="the explorer needs starlette (pip install starlette uvicorn)")
pytest.importorskip("uvicorn", reason="the explorer needs uvicorn (pip install starlette uvicorn)")

from stylegan.errors import UserInputError  # noqa: E402
from stylegan.serve import editing  # noqa: E402
from stylegan.serve.app import create_app  # noqa: E402
from stylegan.serve.editing import Editor, EditRequest  # noqa: E402
from stylegan.serve.renderer import Renderer, RenderRequest, RequestError  # noqa: E402
from stylegan.tools.directions import ganspace, label_directions, sefa  # noqa: E402
from stylegan.tools.generate import seed_ws  # noqa: E402
from stylegan.io.images import to_uint8  # noqa: E402
from stylegan.tools.layers import style_ranges  # noqa: E402

from serve_testing import decode, fixture_generator, http, live_server, tiny_generator  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def G():
    torch.set_num_threads(1)
    return tiny_generator()


@pytest.fixture(scope="module")
def server(G):
    app = create_app(G, name="tiny32")
    with live_server(app) as url:
        yield url, app


def expected_ws(G, seed, method_dirs, strengths, layers, **mapping):
    """w(seed) + sum_k s_k v_k on `layers`, written out by hand (not through tools.edit)."""
    ws = seed_ws(G, [seed], **mapping).clone()
    for k, s in enumerate(strengths):
        ws[:, list(layers)] += s * torch.from_numpy(method_dirs.vectors[k])
    return ws


# --- the Editor and request parsing ---

def test_edit_moves_only_the_chosen_layers_by_strength_times_direction(G):
    renderer = Renderer(G, cache_size=0)
    coarse = style_ranges(G)["coarse"]
    req = renderer.parse({"seed": 4, "psi": 0.7, "edit": {"method": "sefa", "layers": "coarse",
                                                          "strengths": [2.5, 0, -1.5]}})
    assert req.edit == EditRequest("sefa", tuple(coarse), (2.5, 0.0, -1.5))
    dirs = sefa(G, layers="coarse")  # SeFa factorizes the chosen layers' style weights
    got = renderer.compute_ws(req)
    want = expected_ws(G, 4, dirs, [2.5, 0, -1.5], coarse, truncation_psi=0.7)
    torch.testing.assert_close(got, want)
    base = seed_ws(G, [4], truncation_psi=0.7)
    moved = (got - base).norm(dim=2)[0]
    assert [i for i in range(G.num_ws) if moved[i] > 0] == coarse
    torch.testing.assert_close(moved[coarse], torch.full([len(coarse)], (2.5 ** 2 + 1.5 ** 2) ** 0.5))
    # The image is the synthesis of those ws, and differs from the unedited one.
    image = decode(renderer.render(req).png)
    with torch.no_grad():
        assert np.array_equal(image, to_uint8(G.synthesis(want, noise_mode="const"))[0])
    assert not np.array_equal(image, decode(renderer.render(renderer.parse({"seed": 4, "psi": 0.7})).png))


def test_edit_comes_after_mixing_and_interpolation(G):
    renderer = Renderer(G, cache_size=0)
    plain = {"seed": 1, "seed2": 2, "t": 0.3, "mix_seed": 3, "mix_layers": "fine"}
    base = renderer.compute_ws(renderer.parse(plain))
    edited = renderer.compute_ws(renderer.parse({**plain, "edit": {"method": "ganspace", "layers": [0, 1],
                                                                   "strengths": [0, 1.25]}}))
    direction = torch.from_numpy(ganspace(G, num=editing.GANSPACE_SAMPLES, seed=0, components=8).vectors[1])
    want = base.clone()
    want[:, [0, 1]] += 1.25 * direction
    torch.testing.assert_close(edited, want)


def test_zero_strengths_are_no_edit_and_share_the_cache(G):
    renderer = Renderer(G)
    plain = renderer.parse({"seed": 9})
    for strengths in ([], [0, 0, -0.0]):
        assert renderer.parse({"seed": 9, "edit": {"method": "sefa", "strengths": strengths}}) == plain
    assert renderer.parse({"seed": 9, "edit": None}) == plain
    # Trailing zeros do not make a new cache entry.
    a = renderer.parse({"seed": 9, "edit": {"method": "sefa", "strengths": [1, 0, 0]}})
    b = renderer.parse({"seed": 9, "edit": {"method": "sefa", "strengths": [1], "layers": "all"}})
    assert a == b and a.edit.layers == tuple(range(G.num_ws))


def test_directions_are_computed_once_per_method_and_sefa_layer_range(G, monkeypatch):
    calls = []
    for name in ("sefa", "ganspace"):
        original = getattr(editing, name)
        monkeypatch.setattr(editing, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    editor = Editor(G)
    renderer = Renderer(G, editor=editor)
    for _ in range(3):
        renderer.directions("ganspace", None)
        renderer.directions("ganspace", "fine")  # GANSpace is PCA of the whole w: one computation for any layers
        renderer.directions("sefa", "coarse")
        renderer.parse({"seed": 1, "edit": {"method": "sefa", "layers": "coarse", "strengths": [1]}})
    renderer.directions("sefa", "0-5")
    assert sorted(calls) == ["ganspace", "sefa", "sefa"] and editor.computed == 3


def test_directions_summary_lists_the_top_components(G):
    renderer = Renderer(G)
    summary = renderer.directions("sefa", "middle")
    dirs = sefa(G, layers="middle")
    assert summary["layers"] == style_ranges(G)["middle"] and summary["value_name"] == "eigenvalue"
    comps = summary["components"]
    assert len(comps) == editing.MAX_COMPONENTS and [c["index"] for c in comps] == list(range(len(comps)))
    np.testing.assert_allclose([c["value"] for c in comps], dirs.values[:len(comps)])
    # scale: the standard deviation of w along the direction, over seeded samples of w.
    w = editing.sample_w(G, editing.SCALE_SAMPLES, editing.SAMPLE_SEED)[0]
    np.testing.assert_allclose([c["scale"] for c in comps], (w @ torch.from_numpy(dirs.vectors[:8]).T).std(0),
                               rtol=1e-5)
    gs = renderer.directions("ganspace", None)
    ratios = [c["value"] for c in gs["components"]]
    assert gs["value_name"] == "explained variance" and ratios == sorted(ratios, reverse=True) and sum(ratios) <= 1


@pytest.mark.parametrize("edit,message", [
    ("sefa", "'edit' must be an object"),
    ({"method": "pca", "strengths": [1]}, "'edit.method' must be one of sefa, ganspace, got 'pca'"),
    ({"method": "labels", "strengths": [1]}, "needs a conditional network"),
    ({"method": "file", "strengths": [1]}, "start the server with --directions"),
    ({"method": "sefa", "strengths": [1], "amount": 2}, "unknown field 'edit.amount'"),
    ({"method": "sefa", "strengths": 1}, "'edit.strengths' must be a list"),
    ({"method": "sefa", "strengths": ["1"]}, "strengths must be finite numbers"),
    ({"method": "sefa", "strengths": [float("inf")]}, "strengths must be finite numbers"),
    ({"method": "sefa", "strengths": [True]}, "strengths must be finite numbers"),
    ({"method": "sefa", "strengths": [5000]}, "strengths must be in [-1000, 1000]"),
    ({"method": "sefa", "strengths": [1] * 9}, "has 9 values, but this method offers 8 directions"),
    ({"method": "sefa", "strengths": [1], "layers": [0, 8]}, "layer indices must be integers 0..7"),
    ({"method": "sefa", "strengths": [1], "layers": "huge"}, "'edit.layers'"),
    ({"method": "sefa", "strengths": [1], "layers": []}, "must be a non-empty list"),
    ({"method": "sefa", "strengths": [1], "layers": [7]}, "sefa: layers '7' (ws [7]) drive no channel styles"),
])
def test_bad_edits_are_refused_with_the_reason(G, edit, message):
    with pytest.raises(RequestError) as info:
        Renderer(G).parse({"seed": 1, "edit": edit})
    assert message in str(info.value)


# --- over HTTP ---

def test_info_offers_the_methods(server):
    url, _ = server
    info = json.loads(http(url + "/api/info")[2])
    assert [m["name"] for m in info["edit"]["methods"]] == ["sefa", "ganspace"]
    assert info["edit"]["methods"][0]["per_layers"] is True and info["edit"]["file"] is None


def test_api_directions_and_an_edited_download(server, G):
    url, app = server
    status, headers, body = http(url + "/api/directions?method=sefa&layers=0-3")
    summary = json.loads(body)
    assert status == 200 and headers["content-type"] == "application/json"
    assert summary["method"] == "sefa" and summary["layers"] == [0, 1, 2, 3]
    np.testing.assert_allclose([c["value"] for c in summary["components"]], sefa(G, layers="0-3").values[:8])

    request = {"seed": 5, "edit": {"method": "sefa", "layers": [0, 1, 2, 3], "strengths": [0, 0, 2.0]}}
    status, _, body = http(url + "/api/w", request)
    with np.load(io.BytesIO(body)) as data:
        w = torch.from_numpy(data["w"])
    torch.testing.assert_close(w, expected_ws(G, 5, sefa(G, layers="0-3"), [0, 0, 2.0], [0, 1, 2, 3]))
    status, headers, png = http(url + "/api/render", request)
    assert status == 200 and headers["x-cache"] == "miss"
    with torch.no_grad():
        assert np.array_equal(decode(png), to_uint8(G.synthesis(w, noise_mode="const"))[0])
    renderer = app.state.explorer.renderer
    assert renderer.parse(request) == RenderRequest(seed=5, edit=EditRequest("sefa", (0, 1, 2, 3), (0.0, 0.0, 2.0)))


@pytest.mark.parametrize("query,message", [
    ("", "'edit.method' must be one of sefa, ganspace, got None"),
    ("?method=labels", "needs a conditional network"),
    ("?method=sefa&layers=0-99", "'edit.layers': layer 8 is out of range"),
    ("?method=sefa&k=3", "unknown parameter 'k'"),
])
def test_api_directions_refuses_bad_queries(server, query, message):
    url, _ = server
    status, headers, body = http(url + "/api/directions" + query)
    assert status == 400 and message in json.loads(body)["error"]
    status, _, body = http(url + "/api/render", {"seed": 1, "edit": {"method": "sefa", "strengths": ["x"]}})
    assert status == 400 and "strengths must be finite numbers" in json.loads(body)["error"]


def test_labels_on_a_conditional_network():
    G = fixture_generator("cond32")
    renderer = Renderer(G, cache_size=0)
    assert [m["name"] for m in renderer.info["edit"]["methods"]] == ["sefa", "ganspace", "labels"]
    summary = renderer.directions("labels", None)
    assert summary["value_name"] == "held-out accuracy"
    assert [c["label"] for c in summary["components"]] == [f"class {k}" for k in range(G.c_dim)]
    assert all(0.5 < c["value"] <= 1 for c in summary["components"])  # better than chance on held-out w
    dirs = label_directions(G, num=editing.LABEL_SAMPLES, seed=0)
    req = renderer.parse({"seed": 2, "class": 1, "edit": {"method": "labels", "strengths": [0, 0, 0, 1.5]}})
    want = expected_ws(G, 2, dirs, [0, 0, 0, 1.5], range(G.num_ws), class_idx=1)
    torch.testing.assert_close(renderer.compute_ws(req), want, atol=1e-5, rtol=1e-5)


def test_a_directions_file_is_offered_and_another_networks_is_refused(tmp_path, G):
    path = ganspace(G, num=300, seed=7, layers="coarse", components=4).save(tmp_path / "dirs.npz")
    app = create_app(G, name="tiny32", directions=path)
    with live_server(app) as url:
        info = json.loads(http(url + "/api/info")[2])["edit"]
        assert [m["name"] for m in info["methods"]] == ["sefa", "ganspace", "file"]
        assert info["file"] == {"name": "dirs.npz", "method": "ganspace"}
        assert info["methods"][2]["default_layers"] == style_ranges(G)["coarse"]
        summary = json.loads(http(url + "/api/directions?method=file")[2])
        assert summary["layers"] == style_ranges(G)["coarse"] and len(summary["components"]) == 4
        assert summary["directions_method"] == "ganspace"
        status, _, body = http(url + "/api/w", {"seed": 3, "edit": {"method": "file", "strengths": [0, 1.5]}})
        with np.load(io.BytesIO(body)) as data:
            w = torch.from_numpy(data["w"])
        dirs = ganspace(G, num=300, seed=7, layers="coarse", components=4)
        torch.testing.assert_close(w, expected_ws(G, 3, dirs, [0, 1.5], style_ranges(G)["coarse"]))
        status, _, body = http(url + "/api/render", {"seed": 3, "edit": {"method": "file", "strengths": [1] * 5}})
        assert status == 400 and "offers 4 directions" in json.loads(body)["error"]
    with pytest.raises(UserInputError, match="were computed for network"):
        create_app(tiny_generator(seed=1), directions=path)
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    with pytest.raises(UserInputError, match="not a directions file"):
        create_app(G, directions=tmp_path / "junk.npz")


def test_stylegan1_and_stylegan3_are_edited_too():
    from stylegan.networks.stylegan1 import Generator1
    from stylegan.networks.stylegan3 import Generator3
    torch.manual_seed(0)
    nets = [Generator1(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, fmap_base=128, fmap_max=16),
            Generator3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256,
                       channel_max=16, num_layers=4, num_critical=2, output_scale=1)]
    for G in nets:
        G = G.eval().requires_grad_(False)
        renderer = Renderer(G, cache_size=0)
        for method in ("sefa", "ganspace"):
            summary = renderer.directions(method, None)
            assert len(summary["components"]) == min(8, G.w_dim)
            req = renderer.parse({"seed": 0, "edit": {"method": method, "strengths": [2.0]}})
            base = renderer.compute_ws(RenderRequest(seed=0))
            moved = (renderer.compute_ws(req) - base).norm(dim=2)[0]
            torch.testing.assert_close(moved, torch.full([G.num_ws], 2.0))
            assert not np.array_equal(decode(renderer.render(req).png), decode(renderer.render(RenderRequest(0)).png))
