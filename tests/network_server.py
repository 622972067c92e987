"""A local HTTP server on 127.0.0.1 for the download tests: real network files, and the ways a download goes wrong.

Fixtures for test modules (import them): `server`, a started NetworkServer; `cache`, the download cache root,
a fresh folder that STYLEGAN_CACHE points to, so that nothing lands in the user's cache.

    with NetworkServer() as server:
        server.add("/net.pkl", FIXTURE.read_bytes())               # 200, byte ranges, ETag
        server.add("/gone.pkl", status=404)
        server.add("/half.pkl", data, cut=1000, cut_times=1)       # the first answer stops after 1000 bytes
        fetch(server.url("/net.pkl"), ...)
        server.requests                                             # [(method, path, headers), ...]

Nothing here reaches beyond this machine. Handlers that stall wait for `release`, which stop() sets.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple

import pytest


@dataclass
class Route:
    """body: what GET returns; status: != 200 answers with that code and a short text; content_type;
    ranges: honour `Range` (206) and say `Accept-Ranges: bytes`; etag (default: from the body); cut: send only
    this many bytes of the body, then close, for the first `cut_times` answers (None: every answer); stall: send
    `cut` bytes, then wait for the server's release; trickle: send the body in this many pieces, 10 ms apart;
    redirect: answer 302 to this path; headers: more response headers."""
    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    ranges: bool = True
    etag: Optional[str] = None
    cut: Optional[int] = None
    cut_times: Optional[int] = None
    stall: bool = False
    trickle: int = 0
    redirect: Optional[str] = None
    headers: Dict[str, str] = field(default_factory=dict)
    answered: int = 0


class _Handler(BaseHTTPRequestHandler):
    server_version = "TestNetworkServer/1"

    def log_message(self, *args):  # quiet
        pass

    def do_HEAD(self):
        self._answer(head=True)

    def do_GET(self):
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        owner: NetworkServer = self.server.owner
        owner.requests.append((self.command, self.path, dict(self.headers)))
        route = owner.routes.get(self.path)
        if route is None or route.status != 200:
            self._plain(404 if route is None else route.status, route.headers if route else {}, head)
            return
        if route.redirect:
            self.send_response(302)
            self.send_header("Location", owner.url(route.redirect))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, etag = route.body, route.etag or '"' + hashlib.sha256(route.body).hexdigest()[:16] + '"'
        start, status = self._range_start(route, etag, len(body))
        if start is None:
            self._plain(416, {"Content-Range": f"bytes */{len(body)}"}, head)
            return
        self.send_response(status)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("ETag", etag)
        if route.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        for key, value in route.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return
        payload = body[start:]
        route.answered += 1
        cutting = route.cut is not None and (route.cut_times is None or route.answered <= route.cut_times)
        if route.stall:
            self.wfile.write(payload[:route.cut or 0])
            self.wfile.flush()
            owner.release.wait(30)
        elif cutting:
            self.wfile.write(payload[:route.cut])
            self.close_connection = True
        elif route.trickle:
            step = -(-len(payload) // route.trickle)
            for i in range(0, len(payload), step):
                self.wfile.write(payload[i:i + step])
                self.wfile.flush()
                time.sleep(0.01)
        else:
            self.wfile.write(payload)

    def _range_start(self, route: Route, etag: str, size: int) -> Tuple[Optional[int], int]:
        """(first byte, status): 0/200 for the whole body, N/206 for `Range: bytes=N-`, None when unsatisfiable."""
        value = self.headers.get("Range")
        if not route.ranges or not value or not value.startswith("bytes=") or not value.endswith("-"):
            return 0, 200
        if self.headers.get("If-Range") not in (None, etag):
            return 0, 200  # the file changed since the part was fetched: send it whole
        start = int(value[len("bytes="):-1])
        return (start, 206) if start < size else (None, 416)

    def _plain(self, status: int, headers: Dict[str, str], head: bool) -> None:
        text = f"status {status}".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(text)


class NetworkServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) answering the routes added to it."""

    def __init__(self):
        self.routes: Dict[str, Route] = {}
        self.requests: List[Tuple[str, str, dict]] = []
        self.release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    def add(self, path: str, body: bytes = b"", **kwargs) -> str:
        """Serve `body` (or the behaviour in kwargs, see Route) at `path`; returns its URL."""
        self.routes[path] = Route(body=body, **kwargs)
        return self.url(path)

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def gets(self, path: str) -> List[dict]:
        """The headers of each GET of `path` so far."""
        return [headers for method, p, headers in self.requests if method == "GET" and p == path]

    def start(self) -> "NetworkServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "NetworkServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture
def server():
    with NetworkServer() as s:
        yield s


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("STYLEGAN_CACHE", str(root))
    return root
