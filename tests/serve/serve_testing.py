"""Helpers for the explorer tests: small generators and a live uvicorn server in a thread."""
from __future__ import annotations

import contextlib
import io
import json
import math
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Optional, Tuple

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from stylegan.networks.stylegan2 import Generator

from patience import patience

# Not imported from tests/conftest.py: a second conftest module (tests/metrics) can shadow that name.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "official"
OFFICIAL_SNAPSHOT = FIXTURES / "official_snapshot_tiny16.pkl"


def decode(png: bytes) -> np.ndarray:
    """PNG bytes -> RGB array [H, W, 3] uint8."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def fixture_generator(name: str) -> Generator:
    """The generator of an official fixture folder (e.g. 'cond32', a conditional 32x32 network)."""
    folder = FIXTURES / name
    config = json.loads((folder / "config.json").read_text())
    G = Generator(**config["G_kwargs"])
    G.load_state_dict(load_file(str(folder / "G.safetensors")))
    return G.eval().requires_grad_(False)


@torch.no_grad()
def prepare(G: Generator, noise_strength: float = 0.1, seed: int = 0, samples: int = 1000) -> Generator:
    """Give a fresh G what training would: w_avg = mean w (truncation pulls towards it) and non-zero noise."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([samples, G.z_dim], generator=gen)
    c = torch.zeros([samples, G.c_dim])
    if G.c_dim:
        c[torch.arange(samples), torch.randint(G.c_dim, [samples], generator=gen)] = 1
    G.mapping.w_avg.copy_(G.mapping(z, c)[:, 0].mean(0))
    for module in G.modules():
        if isinstance(getattr(module, "noise_strength", None), torch.Tensor):
            module.noise_strength.fill_(noise_strength)
    return G.eval().requires_grad_(False)


def tiny_generator(resolution: int = 32, c_dim: int = 0, seed: int = 0) -> Generator:
    """A small random StyleGAN2 generator (fast on the CPU) with w_avg and noise set."""
    torch.manual_seed(seed)
    return prepare(Generator(z_dim=64, c_dim=c_dim, w_dim=64, img_resolution=resolution, img_channels=3,
                             channel_base=1024, channel_max=64))


def layered_generator(resolution: int = 64, octave_gain: float = 0.5, seed: int = 0) -> Generator:
    """A random 64x64 StyleGAN2 generator whose coarse layers dominate the image, as in trained networks.

    In a freshly initialised skip generator every resolution's toRGB adds about equally much to the image,
    and mostly low frequencies, so swapping the fine styles moves the blurred image as much as swapping the
    coarse ones. Trained generators put the coarse structure into the low-resolution outputs and add
    detail on top (StyleGAN2 paper, section 4.1, figure 8); we imitate that by scaling each toRGB weight by
    `octave_gain` per octave above 4x4. The explorer tests use it to check that 'coarse' and 'fine' reach
    the right layers, not to re-prove the paper.
    """
    torch.manual_seed(seed)
    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
                  channel_base=4096, channel_max=256)
    with torch.no_grad():
        for res in G.synthesis.block_resolutions:
            getattr(G.synthesis, f"b{res}").torgb.weight.mul_(octave_gain ** (math.log2(res) - 2))
    return prepare(G)


def free_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(64)
    return sock


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:
    """Serve `app` with uvicorn on a free localhost port in a thread; yields the base URL."""
    import uvicorn

    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + patience(60)
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=patience(30))
        sock.close()


def http(url: str, data: Optional[object] = None, raw: Optional[bytes] = None,
         method: Optional[str] = None, timeout: Optional[float] = None) -> Tuple[int, dict, bytes]:
    """(status, headers, body) of one request; `data` is sent as JSON, `raw` as is; `timeout` defaults to
    patience(60) seconds."""
    body = raw if raw is not None else (json.dumps(data).encode() if data is not None else None)
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=patience(60) if timeout is None else timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()
