"""The explorer's web app: a Starlette ASGI app serving the page, its assets and a small JSON API.

    GET  /            the page (static/index.html), or an error page (HTTP 503) when the network did not load
    GET  /static/...  app.js, style.css
    GET  /api/info    the network summary and request bounds (JSON)
    POST /api/render  a render request (JSON, see renderer.parse_request) -> image/png;
                      headers X-Render-Ms (render time, 0 for cache hits) and X-Cache (hit or miss)
    POST /api/w       the same request -> the ws it renders as .npz (key 'w', [1, num_ws, w_dim])
    GET  /api/directions?method=sefa&layers=coarse
                      the sliders of an editing method (serve/editing.py): per direction a label, its value
                      (eigenvalue, explained variance) and scale; computed on first use, then cached

Bad requests get HTTP 400 with {"error": "..."}; everything the app knows lives in the object that
`create_app` builds, so several apps (or tests) can run side by side.

    uvicorn can serve it directly:  `stylegan serve --network net.safetensors` (see cli/serve.py).
"""
from __future__ import annotations

import html
import json
import logging
import os
from pathlib import Path
from typing import Optional, Union

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from torch import nn

from ..errors import UserInputError
from ..runtime.choice import PathChoice
from .editing import Editor
from .renderer import Renderer, RequestError

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 16 * 1024
NO_STORE = {"Cache-Control": "no-store"}

logger = logging.getLogger(__name__)

ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>StyleGAN explorer: no network</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body class="error-page"><main>
<h1>The explorer could not load its network</h1>
<p id="error-message" class="error">{message}</p>
<p>Check the file given to <code>stylegan serve --network</code> (a <code>.safetensors</code> export or an
NVIDIA <code>.pkl</code> snapshot) and start the server again.</p>
</main></body></html>
"""


def _json_error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=NO_STORE)


class Explorer:
    """The state of one app: a renderer, or the reason there is none.

    renderer:   renders requests for the loaded generator; None when loading failed.
    load_error: why the network could not be loaded (shown on the error page).
    name:       what the page calls the network (its file name by default).
    device:     where the generator runs.
    """

    def __init__(self, renderer: Optional[Renderer], load_error: Optional[str], name: str, device: str):
        self.renderer = renderer
        self.load_error = load_error
        self.name = name
        self.device = device

    # --- pages ---

    async def index(self, request: Request) -> Response:
        if self.renderer is None:
            return HTMLResponse(ERROR_PAGE.format(message=html.escape(self.load_error or "unknown error")),
                                status_code=503, headers=NO_STORE)
        return FileResponse(STATIC_DIR / "index.html", headers=NO_STORE)

    # --- API ---

    def _unavailable(self) -> JSONResponse:
        return _json_error(f"no network loaded: {self.load_error}", 503)

    async def info(self, request: Request) -> Response:
        if self.renderer is None:
            return self._unavailable()
        return JSONResponse({"name": self.name, "device": self.device, **self.renderer.info}, headers=NO_STORE)

    async def _read_request(self, request: Request):
        """The parsed render request, or a JSONResponse saying why there is none."""
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return _json_error(f"request body too large (at most {MAX_BODY_BYTES} bytes)", 413)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _json_error(f"request body too large (at most {MAX_BODY_BYTES} bytes)", 413)
        try:
            data = json.loads(body or b"null")
        except ValueError as exc:
            return _json_error(f"the request body is not valid JSON ({exc})", 400)
        try:  # in a worker thread: an edit's first use computes its directions (GANSpace samples the mapping)
            return await run_in_threadpool(self.renderer.parse, data)
        except RequestError as exc:
            return _json_error(str(exc), 400)

    async def render(self, request: Request) -> Response:
        if self.renderer is None:
            return self._unavailable()
        req = await self._read_request(request)
        if isinstance(req, Response):
            return req
        result = await run_in_threadpool(self.renderer.render, req)
        headers = {**NO_STORE, "X-Render-Ms": f"{result.ms:.1f}", "X-Cache": "hit" if result.cached else "miss"}
        return Response(result.png, media_type="image/png", headers=headers)

    async def directions(self, request: Request) -> Response:
        if self.renderer is None:
            return self._unavailable()
        params = request.query_params
        unknown = sorted(set(params) - {"method", "layers"})
        if unknown:
            return _json_error(f"unknown parameter '{unknown[0]}'; known parameters: method, layers", 400)
        try:
            summary = await run_in_threadpool(self.renderer.directions, params.get("method"), params.get("layers"))
        except RequestError as exc:
            return _json_error(str(exc), 400)
        return JSONResponse(summary, headers=NO_STORE)

    async def ws(self, request: Request) -> Response:
        if self.renderer is None:
            return self._unavailable()
        req = await self._read_request(request)
        if isinstance(req, Response):
            return req
        data = await run_in_threadpool(self.renderer.ws_npz, req)
        headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="seed{req.seed}.npz"'}
        return Response(data, media_type="application/octet-stream", headers=headers)


def _load(network: Union[str, os.PathLike], device: str):
    """(generator, None) or (None, why it failed): a failed load becomes the error page, not a crash."""
    from ..io.load import load_generator
    try:
        return load_generator(network, device=device), None
    except (UserInputError, OSError) as exc:
        return None, str(exc)
    except Exception as exc:  # a file we cannot read for a reason we did not foresee: still show a page
        logger.exception("loading %s failed", network)
        return None, f"{network}: {type(exc).__name__}: {exc}"


def _editor(G: nn.Module, directions) -> Editor:
    """The app's Editor, offering `directions` (a Directions, an .npz path, or None) as method 'file'."""
    if directions is None:
        return Editor(G)
    if isinstance(directions, (str, os.PathLike)):
        from ..tools.directions import Directions
        path = Path(directions)
        found = Directions.load(path)
        name = path.name
    else:
        found, name = directions, f"{directions.method} directions"
    found.check_network(G)
    return Editor(G, found, name)


def create_app(network: Union[nn.Module, str, os.PathLike], device: str = "cpu", name: Optional[str] = None,
               cache_size: int = 64, directions=None, path: Optional[PathChoice] = None) -> Starlette:
    """The explorer app for generator `network` (a module, or a network file to load).

    network:    a generator module, or the path of a .safetensors export / NVIDIA .pkl; a file that fails
                to load gives an app that answers every page with an error page (HTTP 503) saying why.
    device:     where to load a network file (a module stays where it is).
    name:       what the page calls the network (default: the file name, or the module's class name).
    cache_size: how many recent images to keep.
    directions: directions to offer as editing method 'file': a tools.directions.Directions or the path of its
                .npz; UserInputError when it was made for another network (checked by its fingerprint).
    path:       the inference path chosen for G (runtime.choice.prepare_inference, which also put G in its
                layout): renders run under its autocast. None: G as it is, float32.
    """
    if isinstance(network, nn.Module):
        G, error = network, None
        name = name or type(network).__name__
        device = str(next(network.parameters()).device)
    else:
        G, error = _load(network, device)
        name = name or Path(network).name
    renderer = Renderer(G, cache_size=cache_size, editor=_editor(G, directions), path=path) if G is not None else None
    explorer = Explorer(renderer, error, name, device)
    routes = [
        Route("/", explorer.index, methods=["GET"]),
        Route("/api/info", explorer.info, methods=["GET"]),
        Route("/api/render", explorer.render, methods=["POST"]),
        Route("/api/w", explorer.ws, methods=["POST"]),
        Route("/api/directions", explorer.directions, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.explorer = explorer
    return app
