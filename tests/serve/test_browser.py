"""The explorer page in a real headless Chromium (driven by Playwright), against uvicorn on localhost.

Needs the `playwright` Python package and a Chromium binary (Debian: `apt-get install chromium`; another one
can be named by STYLEGAN_CHROMIUM). Playwright's own browser downloads are not used. Where no browser can be
found or launched the tests skip and say why. Screenshots go to $STYLEGAN_TEST_ARTIFACTS/explorer (or a
temporary folder, printed with -s).
"""
import base64
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("starlette", reason="the explorer needs starlette (pip install starlette uvicorn)")
pytest.importorskip("uvicorn", reason="the explorer needs uvicorn (pip install starlette uvicorn)")

from stylegan.serve.app import create_app  # noqa: E402
from stylegan.io.images import to_uint8  # noqa: E402
from stylegan.tools.layers import style_ranges  # noqa: E402

from patience import patience  # noqa: E402
from serve_testing import fixture_generator, layered_generator, live_server  # noqa: E402

# The flags this machine needs (no sandbox as root, no GPU, and no background traffic to Google's hosts).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1100, "height": 760}


def find_chromium():
    named = os.environ.get("STYLEGAN_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("no browser driver: the playwright package is not installed (pip install playwright)")
    executable = find_chromium()
    if executable is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set STYLEGAN_CHROMIUM to a Chromium binary)")
    with sync_playwright() as playwright:
        try:
            # Playwright gives every launch a fresh, empty --user-data-dir and adds --headless.
            launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        except Error as exc:
            pytest.skip(f"Chromium at {executable} could not be launched: {str(exc).splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = os.environ.get("STYLEGAN_TEST_ARTIFACTS")
    folder = Path(root) / "explorer" if root else tmp_path_factory.mktemp("explorer")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"explorer screenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def explorer():
    """(url, G, renderer) of an explorer for a random 64x64 generator whose coarse layers dominate."""
    torch.set_num_threads(1)
    G = layered_generator()
    app = create_app(G, name="random64-layered")
    with live_server(app) as url:
        yield url, G, app.state.explorer.renderer


@pytest.fixture
def page(browser, explorer):
    torch.set_num_threads(1)
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(patience(60) * 1000)  # milliseconds; a limit for hangs, not a speed check
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(explorer[0])
    wait_settled(page, 0)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


# --- helpers ---

def renders(page) -> int:
    return int(page.get_attribute("#image", "data-renders"))


def wait_settled(page, before: int) -> None:
    """Wait until an image newer than render number `before` is shown and nothing more is on its way."""
    page.wait_for_function(
        "n => { const img = document.getElementById('image');"
        " return Number(img.dataset.renders) > n && img.dataset.state === 'ready'; }",
        arg=before)


def act(page, action) -> None:
    before = renders(page)
    action()
    wait_settled(page, before)


def shown_png(page) -> bytes:
    """The bytes of the image on screen (its blob URL read back in the page)."""
    encoded = page.evaluate("""async () => {
        const res = await fetch(document.getElementById('image').src);
        const bytes = new Uint8Array(await res.arrayBuffer());
        let text = '';
        for (const b of bytes) text += String.fromCharCode(b);
        return btoa(text);
    }""")
    return base64.b64decode(encoded)


def shown_request(page) -> dict:
    return json.loads(page.get_attribute("#image", "data-request"))


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.float64)


def blurred(image: np.ndarray, blocks: int = 8) -> np.ndarray:
    """Block means on a blocks x blocks grid: what is left of the image below 1/8 of its resolution."""
    h, w, c = image.shape
    return image.reshape(blocks, h // blocks, blocks, w // blocks, c).mean(axis=(1, 3))


def summary(page) -> dict:
    return dict(page.eval_on_selector_all(
        "#summary tr", "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent])"))


# --- tests ---

def test_page_loads_and_shows_the_summary(page, explorer, artifacts):
    _, G, renderer = explorer
    table = summary(page)
    assert table["Network"] == "random64-layered" and table["Type"] == "StyleGAN2"
    assert table["Architecture"] == "skip" and table["Resolution"] == "64\u00d764, 3 channels"
    assert table["Parameters"] == f"{sum(p.numel() for p in G.parameters()):,}"
    assert table["num_ws"] == str(G.num_ws) and table["Conditional"] == "no"
    assert page.is_hidden("#class-row")
    assert len(page.query_selector_all("input.layer")) == G.num_ws
    # The first image is seed 0 as `stylegan generate` makes it.
    assert shown_request(page)["seed"] == 0
    assert shown_png(page) == renderer.render(renderer.parse(shown_request(page))).png
    assert "rendered in" in page.inner_text("#status") or "from the cache" in page.inner_text("#status")
    page.screenshot(path=str(artifacts / "summary.png"))


def test_moving_the_truncation_slider_changes_the_image(page, explorer, artifacts):
    _, _, renderer = explorer
    before_png = shown_png(page)
    box = page.locator("#psi").bounding_box()
    y = box["y"] + box["height"] / 2
    act(page, lambda: page.mouse.click(box["x"] + 0.3 * box["width"], y))  # psi 1 -> about -0.8
    psi = float(page.input_value("#psi"))
    assert psi < 0 and page.inner_text("#psi-value") == f"{psi:.2f}"
    after_png = shown_png(page)
    assert np.abs(pixels(after_png) - pixels(before_png)).mean() > 5
    assert shown_request(page)["psi"] == psi
    assert after_png == renderer.render(renderer.parse(shown_request(page))).png

    # Dragging sends far fewer requests than input events (debounced, one in flight, stale ones dropped),
    # and the image ends up matching where the slider stopped.
    start, steps = renders(page), 20
    page.mouse.move(box["x"] + 0.3 * box["width"], y)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.9 * box["width"], y, steps=steps)
    page.mouse.up()
    # Settled: the image shown is the one for where the slider stopped (however long the renders take).
    page.wait_for_function(
        "() => { const img = document.getElementById('image');"
        " return img.dataset.state === 'ready' && Number(img.dataset.renders) > 0"
        " && JSON.parse(img.dataset.request).psi === Number(document.getElementById('psi').value); }")
    assert renders(page) > start
    sent = renders(page) - start
    print(f"a {steps}-step drag of the psi slider rendered {sent} images")
    psi = float(page.input_value("#psi"))
    assert 1 <= sent < steps and psi > 1
    assert shown_request(page)["psi"] == psi
    assert shown_png(page) == renderer.render(renderer.parse(shown_request(page))).png
    page.screenshot(path=str(artifacts / "truncation.png"))


def test_style_mixing_coarse_changes_low_frequencies_fine_keeps_them(page, explorer, artifacts):
    _, G, renderer = explorer
    page.fill("#mix-seed", "1")  # mixing is off: no new render
    base = pixels(shown_png(page))
    act(page, lambda: page.click("button[data-range='coarse']"))
    assert page.is_checked("#mix-on")
    checked = [int(v) for v in page.eval_on_selector_all("input.layer:checked", "b => b.map(x => x.value)")]
    assert checked == style_ranges(G)["coarse"]
    assert shown_request(page)["mix_layers"] == checked and shown_request(page)["mix_seed"] == 1
    coarse = pixels(shown_png(page))
    page.screenshot(path=str(artifacts / "mixing-coarse.png"))
    act(page, lambda: page.click("button[data-range='fine']"))
    assert shown_request(page)["mix_layers"] == style_ranges(G)["fine"]
    fine = pixels(shown_png(page))
    page.screenshot(path=str(artifacts / "mixing-fine.png"))

    low_coarse = np.abs(blurred(coarse) - blurred(base)).mean()  # mean change of 8x8 block means, 0..255
    low_fine = np.abs(blurred(fine) - blurred(base)).mean()
    print(f"blurred change: coarse mixing {low_coarse:.1f}, fine mixing {low_fine:.1f} (of 255)")
    # Swapping the coarse styles moves the coarse structure a lot; swapping the fine ones barely does,
    # yet it does change the image.
    assert low_coarse > 20 and low_coarse > 4 * low_fine
    assert low_fine < 10 and np.abs(fine - base).mean() > 0.5

    # A single layer by its checkbox, and back to no mixing (the unmixed image, now from the cache).
    act(page, lambda: page.click("button[data-range='none']"))
    assert np.array_equal(pixels(shown_png(page)), base)
    assert "from the cache" in page.inner_text("#status")
    act(page, lambda: page.check("#layer-0"))
    assert shown_request(page)["mix_layers"] == [0]
    assert shown_png(page) == renderer.render(renderer.parse(shown_request(page))).png


def test_seeds_interpolation_and_noise_controls(page, explorer):
    _, _, renderer = explorer
    seed0 = shown_png(page)
    act(page, lambda: page.click("#seed-random"))
    seed = int(page.input_value("#seed"))
    assert shown_request(page)["seed"] == seed and shown_png(page) != seed0
    act(page, lambda: page.fill("#seed", "0"))
    assert shown_png(page) == seed0

    act(page, lambda: page.check("#interp-on"))
    assert shown_request(page) == {**shown_request(page), "seed": 0, "seed2": 1, "t": 0.5}
    act(page, lambda: page.fill("#t", "0"))
    assert np.array_equal(pixels(shown_png(page)), pixels(seed0))
    act(page, lambda: page.fill("#t", "1"))
    seed1 = renderer.render(renderer.parse({"seed": 1})).png
    assert np.array_equal(pixels(shown_png(page)), pixels(seed1))
    act(page, lambda: page.uncheck("#interp-on"))

    act(page, lambda: page.select_option("#noise-mode", "none"))
    no_noise = shown_png(page)
    assert shown_request(page)["noise_mode"] == "none" and no_noise != seed0
    act(page, lambda: page.select_option("#noise-mode", "const"))
    act(page, lambda: page.fill("#noise-strength", "0"))
    assert shown_request(page)["noise_strength"] == 0 and shown_png(page) == no_noise

    page.fill("#seed", "-3")  # refused on the page, no request sent
    page.wait_for_function("() => document.getElementById('image').dataset.state === 'error'")
    assert "Seed must be a whole number" in page.inner_text("#error")


def test_downloads_png_and_w(page, explorer, artifacts):
    _, G, renderer = explorer
    act(page, lambda: page.click("button[data-range='middle']"))
    with page.expect_download() as png_download:
        page.click("#download-png")
    png_path = artifacts / png_download.value.suggested_filename
    png_download.value.save_as(str(png_path))
    assert png_path.name == "seed0-mix2.png"
    assert png_path.read_bytes() == shown_png(page)

    with page.expect_download() as w_download:
        page.click("#download-w")
    w_path = artifacts / w_download.value.suggested_filename
    w_download.value.save_as(str(w_path))
    assert w_path.name == "seed0-mix2.npz"
    with np.load(w_path) as data:
        w = data["w"]
    assert w.shape == (1, G.num_ws, G.w_dim)
    expected = renderer.compute_ws(renderer.parse(shown_request(page)))
    assert np.array_equal(w, expected.numpy())
    with torch.no_grad():
        image = to_uint8(G.synthesis(torch.from_numpy(w), noise_mode="const"))[0]
    assert np.array_equal(pixels(png_path.read_bytes()), image)


def test_a_semantic_edit_slider_changes_the_image_and_the_download(page, explorer, artifacts):
    """SeFa on the coarse layers: slider 0 moves the image, and the downloaded w is w + strength * v_0 there."""
    from stylegan.tools.directions import sefa

    _, G, renderer = explorer
    before = shown_png(page)
    coarse = style_ranges(G)["coarse"]
    assert page.eval_on_selector_all("#edit-method option", "o => o.map(x => x.value)") == ["", "sefa", "ganspace"]
    page.select_option("#edit-method", "sefa")
    page.click("button.edit-range[data-range='coarse']")
    page.wait_for_function(
        "layers => { const box = document.getElementById('edit-sliders');"
        " return box.dataset.state === 'ready' && box.dataset.method === 'sefa' && box.dataset.layers === layers; }",
        arg=json.dumps(coarse, separators=(",", ":")))
    assert (page.input_value("#edit-from"), page.input_value("#edit-to")) == (str(coarse[0]), str(coarse[-1]))
    assert len(page.query_selector_all("input.edit-strength")) == 8
    assert shown_png(page) == before  # all strengths 0: no edit yet
    strength = round(0.5 * float(page.get_attribute("#edit-0", "max")), 3)  # 1.5 standard deviations of w
    act(page, lambda: page.fill("#edit-0", str(strength)))
    assert page.inner_text("#edit-0-value") == f"{strength:.2f}"
    request = shown_request(page)
    assert request["edit"] == {"method": "sefa", "layers": coarse, "strengths": [strength] + [0] * 7}
    after = shown_png(page)
    print(f"sefa #0 at {strength} on w{coarse[0]}-w{coarse[-1]}: mean pixel change "
          f"{np.abs(pixels(after) - pixels(before)).mean():.1f} (of 255)")
    assert np.abs(pixels(after) - pixels(before)).mean() > 1
    assert after == renderer.render(renderer.parse(request)).png
    page.screenshot(path=str(artifacts / "edit-sefa.png"))

    with page.expect_download() as w_download:
        page.click("#download-w")
    w_path = artifacts / w_download.value.suggested_filename
    w_download.value.save_as(str(w_path))
    assert w_path.name == "seed0-sefa.npz"
    with np.load(w_path) as data:
        w = torch.from_numpy(data["w"])
    unedited = renderer.compute_ws(renderer.parse({k: v for k, v in request.items() if k != "edit"}))
    direction = torch.from_numpy(sefa(G, layers="coarse").vectors[0])
    want = unedited.clone()
    want[:, coarse] += strength * direction
    torch.testing.assert_close(w, want)
    others = [i for i in range(G.num_ws) if i not in coarse]
    assert torch.equal(w[:, others], unedited[:, others])
    with torch.no_grad():
        image = to_uint8(G.synthesis(w, noise_mode="const"))[0]
    assert np.array_equal(pixels(after), image)

    act(page, lambda: page.click("#edit-reset"))  # back to the unedited image (from the cache)
    assert "edit" not in shown_request(page) and shown_png(page) == before


def test_class_selector_on_a_conditional_network(browser):
    torch.set_num_threads(1)
    G = fixture_generator("cond32")
    with live_server(create_app(G, name="cond32")) as url:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(url)
        wait_settled(page, 0)
        assert summary(page)["Conditional"] == f"yes, {G.c_dim} classes"
        assert page.is_visible("#class-row")
        options = page.eval_on_selector_all("#class option", "o => o.map(x => x.value)")
        assert options == [str(k) for k in range(G.c_dim)]
        first = shown_png(page)
        assert shown_request(page)["class"] == 0
        act(page, lambda: page.select_option("#class", "2"))
        assert shown_request(page)["class"] == 2 and shown_png(page) != first
        methods = page.eval_on_selector_all("#edit-method option", "o => o.map(x => x.value)")
        assert methods == ["", "sefa", "ganspace", "labels"]  # class boundaries: conditional networks only
        context.close()


def test_a_bad_network_path_shows_the_error_page(browser, tmp_path, artifacts):
    missing = tmp_path / "no-such-network.pkl"
    with live_server(create_app(missing)) as url:
        page = browser.new_page(viewport=VIEWPORT)
        response = page.goto(url)
        assert response.status == 503
        assert page.inner_text("h1") == "The explorer could not load its network"
        assert page.inner_text("#error-message") == f"{missing}: no such file"
        page.screenshot(path=str(artifacts / "error-page.png"))
        page.close()


def test_stylegan3_translate_and_rotate_controls(browser, explorer, artifacts):
    """The StyleGAN3 controls: shown only for StyleGAN3, sent as translate/rotate, reset by their button."""
    from stylegan.networks.stylegan3 import Generator3
    from stylegan.serve.renderer import RenderRequest

    torch.set_num_threads(1)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(explorer[0])  # the StyleGAN2 explorer: no such controls, none sent
    wait_settled(page, 0)
    assert not page.is_visible("#transform-box") and "translate" not in shown_request(page)
    torch.manual_seed(0)
    G = Generator3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                   num_layers=4, num_critical=2, output_scale=1).eval().requires_grad_(False)
    app = create_app(G, name="sg3-tiny")
    with live_server(app) as url:
        page.goto(url)
        wait_settled(page, 0)
        assert summary(page)["Type"] == "StyleGAN3" and page.is_visible("#transform-box")
        first = shown_png(page)
        assert shown_request(page)["translate"] == [0, 0] and shown_request(page)["rotate"] == 0
        act(page, lambda: page.fill("#translate-x", "0.25"))
        act(page, lambda: page.fill("#rotate", "30"))
        assert shown_request(page)["translate"] == [0.25, 0] and shown_request(page)["rotate"] == 30
        renderer = app.state.explorer.renderer
        expected = renderer.render(RenderRequest(seed=0, translate=(0.25, 0.0), rotate=30.0)).png
        assert pixels(shown_png(page)).tolist() == pixels(expected).tolist()
        page.screenshot(path=str(artifacts / "stylegan3-transform.png"))
        act(page, lambda: page.click("#transform-reset"))
        assert shown_request(page)["translate"] == [0, 0] and shown_png(page) == first
    context.close()
