"""serve.app over real HTTP (uvicorn in a thread): pages, the JSON API, errors, concurrency, bad networks."""
import io
import json
import re
import threading

import numpy as np
import pytest
import torch

pytest.importorskip("starlette", reason="the explorer needs starlette (pip install starlette uvicorn)")
pytest.importorskip("uvicorn", reason="the explorer needs uvicorn (pip install starlette uvicorn)")

from stylegan.io.export import save_network  # noqa: E402
from stylegan.serve.app import STATIC_DIR, create_app  # noqa: E402
from stylegan.serve.renderer import Renderer  # noqa: E402

from serve_testing import OFFICIAL_SNAPSHOT, decode, http, live_server, tiny_generator  # noqa: E402


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


def test_page_and_assets_are_served_and_local(server):
    url, _ = server
    status, headers, body = http(url + "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    page = body.decode()
    assert '<script src="/static/app.js">' in page and 'href="/static/style.css"' in page
    for name in ("app.js", "style.css"):
        status, _, _ = http(f"{url}/static/{name}")
        assert status == 200
    for path in STATIC_DIR.iterdir():  # nothing is fetched from outside the server (no CDN)
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", path.read_text()), path.name


def test_info_summarises_the_network(server, G):
    url, _ = server
    status, headers, body = http(url + "/api/info")
    info = json.loads(body)
    assert status == 200 and headers["content-type"] == "application/json"
    assert info["name"] == "tiny32" and info["device"] == "cpu"
    assert info["num_params"] == sum(p.numel() for p in G.parameters())
    assert (info["img_resolution"], info["num_ws"], info["conditional"]) == (32, G.num_ws, False)


def test_render_returns_png_and_caches_it(server, G):
    url, app = server
    request = {"seed": 11, "psi": 0.7, "mix_seed": 12, "mix_layers": "coarse"}
    status, headers, png = http(url + "/api/render", request)
    assert status == 200 and headers["content-type"] == "image/png" and headers["x-cache"] == "miss"
    assert float(headers["x-render-ms"]) > 0
    renderer = app.state.explorer.renderer
    expected = Renderer(G, cache_size=0).render(renderer.parse(request)).png
    assert decode(png).shape == (32, 32, 3) and png == expected
    hits = renderer.stats.hits
    status, headers, again = http(url + "/api/render", request)
    assert headers["x-cache"] == "hit" and headers["x-render-ms"] == "0.0" and again == png
    assert renderer.stats.hits == hits + 1


def test_w_download_is_an_npz_with_key_w(server, G):
    url, _ = server
    status, headers, body = http(url + "/api/w", {"seed": 3, "seed2": 4, "t": 0.5})
    assert status == 200 and 'filename="seed3.npz"' in headers["content-disposition"]
    with np.load(io.BytesIO(body)) as data:
        assert data["w"].shape == (1, G.num_ws, G.w_dim)


@pytest.mark.parametrize("path,kwargs,status,message", [
    ("/api/render", dict(data={"seed": -5}), 400, "'seed' = -5 is out of range"),
    ("/api/render", dict(data={"seed": 1, "mix_seed": 2, "mix_layers": [99]}), 400, "integers 0..7"),
    ("/api/render", dict(raw=b"{not json"), 400, "not valid JSON"),
    ("/api/render", dict(raw=b""), 400, "must be a JSON object"),
    ("/api/w", dict(data={"seed": 1, "psi": 9}), 400, "'psi' = 9 is out of range"),
    ("/api/render", dict(raw=b"[" + b"1," * 20000 + b"1]"), 413, "too large"),
])
def test_bad_requests_get_json_errors(server, path, kwargs, status, message):
    url, _ = server
    got, headers, body = http(url + path, **kwargs)
    assert got == status and headers["content-type"] == "application/json"
    assert message in json.loads(body)["error"]


def test_wrong_method_is_refused(server):
    url, _ = server
    assert http(url + "/api/render")[0] == 405
    assert http(url + "/api/nothing")[0] == 404


def test_concurrent_users_are_served_one_render_at_a_time(server, G):
    url, app = server
    renderer = app.state.explorer.renderer
    peak, active, lock = [0], [0], threading.Lock()
    original = G.synthesis.forward

    def counting_forward(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    G.synthesis.forward = counting_forward
    requests = [{"seed": 100 + k, "noise_strength": 0.5 * (k % 3), "psi": 0.5} for k in range(10)]
    answers = [None] * len(requests)

    def user(k):
        answers[k] = http(url + "/api/render", requests[k])

    try:
        threads = [threading.Thread(target=user, args=(k,)) for k in range(len(requests))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        del G.synthesis.forward
    assert peak[0] == 1
    for request, (status, _, png) in zip(requests, answers):
        assert status == 200
        assert png == Renderer(G, cache_size=0).render(renderer.parse(request)).png


def test_an_export_file_loads(tmp_path, G):
    path = tmp_path / "tiny.safetensors"
    save_network(path, {"G_ema": G})
    with live_server(create_app(path)) as url:
        info = json.loads(http(url + "/api/info")[2])
        assert info["name"] == "tiny.safetensors" and info["num_ws"] == G.num_ws
        status, _, png = http(url + "/api/render", {"seed": 1})
        assert status == 200 and png == Renderer(G).render(Renderer(G).parse({"seed": 1})).png


def test_an_official_snapshot_loads():
    with live_server(create_app(OFFICIAL_SNAPSHOT)) as url:
        info = json.loads(http(url + "/api/info")[2])
        assert info["img_resolution"] == 16
        assert http(url + "/api/render", {"seed": 0, "psi": 0.5})[0] == 200


@pytest.mark.parametrize("make,message", [
    (lambda tmp: tmp / "missing.pkl", "missing.pkl: no such file"),
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: (tmp / "junk.pkl").write_bytes(b"hello, not a network") and tmp / "junk.pkl",
     "neither a stylegan export"),
])
def test_a_bad_network_path_serves_an_error_page(tmp_path, make, message):
    path = make(tmp_path)
    with live_server(create_app(path)) as url:
        status, headers, body = http(url + "/")
        assert status == 503 and headers["content-type"].startswith("text/html")
        page = body.decode()
        assert "could not load its network" in page and message in page
        for api, data in (("/api/info", None), ("/api/render", {"seed": 1}), ("/api/w", {"seed": 1})):
            status, _, body = http(url + api, data)
            assert status == 503 and message in json.loads(body)["error"]
        assert http(url + "/static/style.css")[0] == 200  # the error page keeps its style
