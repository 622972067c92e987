"""What the explorer renders: a validated request -> ws -> image, one render at a time, recent images cached.

A request names a seed and what to do with its latent (see `RenderRequest`). Latents follow the other
tools: z = `seed_to_z(seed)` (the same seed gives the same image as `stylegan generate`), w = G.mapping(z, c)
with truncation (StyleGAN, section 3.1), then optionally

- interpolation: w = lerp(w(seed), w(seed2), t), linear in W (truncation is linear, so the order does not matter);
- style mixing (StyleGAN, section 3.1): the ws of `mix_layers` come from `mix_seed` instead;
- StyleGAN3 only: translate (image widths) and rotate (degrees) the output through the input transform, as
  gen_images.py does (tools/transform.py); the request's values replace the stored transform for that render
  only, and the network's own transform is restored afterwards, so nothing leaks into the next request;
- semantic edits: the ws of chosen layers move along the top directions of a method (SeFa, GANSpace, a loaded
  file, class labels of conditional networks), on top of all of the above (serve/editing.py).

Renders go through one lock, so concurrent users queue instead of running the generator in parallel (which
would thrash the CPU and, with the noise-strength multiplier, race on the network's parameters). Finished
images of deterministic requests (noise mode 'const' or 'none') are kept in a small LRU cache.
"""
from __future__ import annotations

import contextlib
import io
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import UserInputError
from ..networks.synthesis import NOISE_MODES
from ..tools.generate import MAX_SEED, seed_ws
from ..io.images import to_uint8
from ..tools.layers import parse_layers, style_ranges, ws_resolutions
from ..tools.mixing import mix_styles
from ..runtime.choice import PathChoice
from ..tools.transform import has_input_transform, input_transform
from .editing import EditError, Editor, EditRequest, edit_layers

# Documented bounds of the request fields (docs/explorer.md).
PSI_RANGE = (-2.0, 2.0)
T_RANGE = (0.0, 1.0)
NOISE_STRENGTH_RANGE = (0.0, 5.0)
TRANSLATE_RANGE = (-2.0, 2.0)   # image widths, each of x and y
ROTATE_RANGE = (-360.0, 360.0)  # degrees


class RequestError(UserInputError):
    """A render request the server refuses (answered with HTTP 400 and the message)."""


@dataclass(frozen=True)
class RenderRequest:
    """One image to render; hashable, so it doubles as the cache key.

    seed:           seed of the base latent, 0..2^32-1.
    psi:            truncation psi; 1 disables truncation.
    cutoff:         truncate only the first `cutoff` ws; None = the network's default (all layers for StyleGAN2).
    class_idx:      class label for conditional networks, None for unconditional ones.
    seed2:          seed to interpolate towards; None disables interpolation.
    t:              interpolation position between seed (0) and seed2 (1).
    mix_seed:       seed whose ws replace those of `mix_layers`; None disables style mixing.
    mix_layers:     ws indices taken from mix_seed, sorted.
    noise_mode:     'const', 'random' or 'none' (per-pixel noise inputs).
    noise_strength: multiplier on every layer's learned noise strength.
    translate:      StyleGAN3: (x, y) translation of the output in image widths (x right, y down).
    rotate:         StyleGAN3: rotation of the output in degrees (gen_images.py's --rotate).
    edit:           a semantic edit applied last (serve/editing.py); None = none.
    """

    seed: int
    psi: float = 1.0
    cutoff: Optional[int] = None
    class_idx: Optional[int] = None
    seed2: Optional[int] = None
    t: float = 0.0
    mix_seed: Optional[int] = None
    mix_layers: Tuple[int, ...] = ()
    noise_mode: str = "const"
    noise_strength: float = 1.0
    translate: Tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0
    edit: Optional[EditRequest] = None

    @property
    def deterministic(self) -> bool:
        """Whether rendering twice gives the same image (random noise does not)."""
        return self.noise_mode != "random"


# JSON field -> RenderRequest field.
_FIELDS = {"seed": "seed", "psi": "psi", "cutoff": "cutoff", "class": "class_idx", "seed2": "seed2", "t": "t",
           "mix_seed": "mix_seed", "mix_layers": "mix_layers", "noise_mode": "noise_mode",
           "noise_strength": "noise_strength", "translate": "translate", "rotate": "rotate", "edit": "edit"}


def _integer(data: dict, key: str, lo: int, hi: int, optional: bool = True) -> Optional[int]:
    value = data.get(key)
    if value is None:
        if optional:
            return None
        raise RequestError(f"'{key}' is required (an integer {lo}..{hi})")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"'{key}' must be an integer {lo}..{hi}, got {value!r}")
    if not lo <= value <= hi:
        raise RequestError(f"'{key}' = {value} is out of range {lo}..{hi}")
    return value


def _number(data: dict, key: str, default: float, bounds: Tuple[float, float]) -> float:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f"'{key}' must be a number in [{bounds[0]}, {bounds[1]}], got {value!r}")
    if not bounds[0] <= value <= bounds[1]:
        raise RequestError(f"'{key}' = {value} is out of range [{bounds[0]}, {bounds[1]}]")
    return float(value)


def _translate(data: dict) -> Tuple[float, float]:
    value = data.get("translate")
    if value is None:
        return (0.0, 0.0)
    if not isinstance(value, list) or len(value) != 2:
        raise RequestError(f"'translate' must be [x, y] in image widths, got {value!r}")
    x = _number({"translate": value[0]}, "translate", 0.0, TRANSLATE_RANGE)
    y = _number({"translate": value[1]}, "translate", 0.0, TRANSLATE_RANGE)
    return (x + 0.0, y + 0.0)  # -0.0 -> 0.0: one cache entry


def _layers(value, G: nn.Module) -> Tuple[int, ...]:
    """A list of ws indices, or a spec string like 'coarse', 'fine', '0-3' (tools.layers.parse_layers)."""
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            return tuple(parse_layers(value, G))
        except UserInputError as exc:
            raise RequestError(f"'mix_layers': {exc}") from None
    if not isinstance(value, list):
        raise RequestError(f"'mix_layers' must be a list of layer indices or a name (coarse, middle, fine), "
                           f"got {value!r}")
    for idx in value:
        if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < G.num_ws:
            raise RequestError(f"'mix_layers' holds {idx!r}: layer indices must be integers 0..{G.num_ws - 1}")
    return tuple(sorted(set(value)))


def parse_request(data, G: nn.Module, editor: Optional[Editor] = None) -> RenderRequest:
    """Validate a JSON render request against generator `G`; raises RequestError saying what is wrong.

    data:   the decoded JSON body.
    G:      the generator.
    editor: what validates the 'edit' field (the methods on offer); None = a fresh Editor(G) (sefa, ganspace;
            labels on conditional networks).
    """
    if not isinstance(data, dict):
        raise RequestError("the request body must be a JSON object like {\"seed\": 42}")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise RequestError(f"unknown field '{unknown[0]}'; known fields: {', '.join(_FIELDS)}")
    seed = _integer(data, "seed", 0, MAX_SEED, optional=False)
    psi = _number(data, "psi", 1.0, PSI_RANGE)
    if psi != 1 and getattr(G.mapping, "w_avg", None) is None:
        raise RequestError("this network tracks no average w, so it cannot be truncated: use psi = 1")
    cutoff = _integer(data, "cutoff", 0, G.num_ws)
    if G.c_dim > 0:
        class_idx = _integer(data, "class", 0, G.c_dim - 1, optional=False)
    else:
        if data.get("class") is not None:
            raise RequestError("'class' was given, but this network is unconditional")
        class_idx = None
    seed2 = _integer(data, "seed2", 0, MAX_SEED)
    t = _number(data, "t", 0.0, T_RANGE)
    mix_seed = _integer(data, "mix_seed", 0, MAX_SEED)
    mix_layers = _layers(data.get("mix_layers"), G)
    noise_mode = data.get("noise_mode", "const")
    if noise_mode not in NOISE_MODES:
        raise RequestError(f"'noise_mode' must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
    noise_strength = _number(data, "noise_strength", 1.0, NOISE_STRENGTH_RANGE)
    translate = _translate(data)
    rotate = _number(data, "rotate", 0.0, ROTATE_RANGE) + 0.0
    if (translate != (0.0, 0.0) or rotate != 0) and not has_input_transform(G):
        raise RequestError("'translate' and 'rotate' move the input grid of StyleGAN3 networks; this network has "
                           "none: leave them out")
    try:
        edit = (editor or Editor(G)).parse(data.get("edit"))
    except EditError as exc:
        raise RequestError(str(exc)) from None
    # Normalise what has no effect, so equivalent requests share one cache entry.
    if seed2 is None:
        t = 0.0
    if mix_seed is None or not mix_layers:
        mix_seed, mix_layers = None, ()
    return RenderRequest(seed=seed, psi=psi, cutoff=cutoff, class_idx=class_idx, seed2=seed2, t=t,
                         mix_seed=mix_seed, mix_layers=mix_layers, noise_mode=noise_mode,
                         noise_strength=noise_strength, translate=translate, rotate=rotate, edit=edit)


# --- latents -------------------------------------------------------------------------------------------------

def interpolate_ws(ws_a: torch.Tensor, ws_b: torch.Tensor, t: float) -> torch.Tensor:
    """Linear interpolation in W: (1 - t) ws_a + t ws_b."""
    return torch.lerp(ws_a, ws_b, t)


@contextlib.contextmanager
def scaled_noise(G: nn.Module, factor: float) -> Iterator[None]:
    """Multiply every learned `noise_strength` of G by `factor` inside the block, restoring them after."""
    if factor == 1:
        yield
        return
    params = [m.noise_strength for m in G.modules() if isinstance(getattr(m, "noise_strength", None), torch.Tensor)]
    saved = [p.detach().clone() for p in params]
    try:
        with torch.no_grad():
            for p in params:
                p.mul_(factor)
        yield
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)


def encode_png(image: np.ndarray) -> bytes:
    """uint8 [H, W, C] (C = 1, 3 or 4) -> PNG bytes (fast compression: renders are sent once and forgotten)."""
    pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def encode_npz(ws: torch.Tensor) -> bytes:
    """ws [1, num_ws, w_dim] -> .npz bytes with key 'w' (the layout of NVIDIA's projector output)."""
    buf = io.BytesIO()
    np.savez(buf, w=ws.detach().cpu().numpy().astype(np.float32))
    return buf.getvalue()


# --- the network summary -------------------------------------------------------------------------------------

def _architecture(G: nn.Module) -> str:
    if has_input_transform(G):  # StyleGAN3: config R has 1x1 convolutions, T 3x3
        radial = getattr(G, "init_kwargs", {}).get("conv_kernel", 3) == 1
        return "alias-free, " + ("R (rotation equivariant)" if radial else "T (translation equivariant)")
    for module in G.synthesis.modules():
        arch = getattr(module, "architecture", None)
        if isinstance(arch, str):
            return arch
    return "progressive (StyleGAN v1)" if hasattr(G.synthesis, "set_lod") else "unknown"


def _kind(G: nn.Module) -> str:
    from ..networks.registry import class_key
    try:
        key = class_key(G)
    except UserInputError:
        return type(G).__name__
    return {"stylegan2.Generator": "StyleGAN2", "stylegan1.Generator": "StyleGAN (v1)",
            "stylegan3.Generator": "StyleGAN3"}.get(key, key)


def network_info(G: nn.Module) -> dict:
    """What the page shows and needs: sizes, layers, ranges and the request bounds."""
    default_cutoff = getattr(G.mapping, "default_cutoff", None)
    return {
        "kind": _kind(G),
        "architecture": _architecture(G),
        "img_resolution": G.img_resolution,
        "img_channels": G.img_channels,
        "z_dim": G.z_dim,
        "w_dim": G.w_dim,
        "c_dim": G.c_dim,
        "conditional": G.c_dim > 0,
        "num_ws": G.num_ws,
        "num_params": sum(p.numel() for p in G.parameters()),
        "ws_resolutions": ws_resolutions(G),
        "style_ranges": style_ranges(G),
        "default_cutoff": G.num_ws if default_cutoff is None else default_cutoff,
        "can_truncate": getattr(G.mapping, "w_avg", None) is not None,
        "has_noise": any(isinstance(getattr(m, "noise_strength", None), torch.Tensor) for m in G.modules()),
        "noise_modes": list(NOISE_MODES),
        "has_transform": has_input_transform(G),
        "bounds": {"seed": [0, MAX_SEED], "psi": list(PSI_RANGE), "t": list(T_RANGE),
                   "noise_strength": list(NOISE_STRENGTH_RANGE), "translate": list(TRANSLATE_RANGE),
                   "rotate": list(ROTATE_RANGE)},
    }


# --- the renderer --------------------------------------------------------------------------------------------

@dataclass
class RenderResult:
    """A PNG and how it was made: render time in milliseconds (0 for cache hits), cache hit or not."""

    png: bytes
    ms: float
    cached: bool


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


class Renderer:
    """Renders requests for one generator, one at a time, with an LRU cache of recent deterministic images.

    G:          generator (StyleGAN v1, 2 or 3); put in eval mode, gradients off.
    cache_size: how many recent images to keep (0 disables the cache).
    editor:     the directions on offer for edits (serve/editing.py); None = Editor(G) (sefa, ganspace; labels
                on conditional networks).
    path:       the inference path chosen for G (runtime.choice): the synthesis runs under its autocast (the
                mapping, the ws and their downloads stay float32); None: float32. The page's info names it.
    """

    def __init__(self, G: nn.Module, cache_size: int = 64, editor: Optional[Editor] = None,
                 path: Optional[PathChoice] = None):
        self.G = G.eval().requires_grad_(False)
        self.device = next(G.parameters()).device
        self.path = path
        self.cache_size = cache_size
        self.stats = CacheStats()
        self.editor = editor if editor is not None else Editor(G)
        self.info = {**network_info(G), "edit": self.editor.info(),
                     "path": path.summary() if path is not None else "path: fp32, as loaded"}
        self._render_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: "OrderedDict[RenderRequest, bytes]" = OrderedDict()

    def parse(self, data) -> RenderRequest:
        return parse_request(data, self.G, self.editor)

    @torch.no_grad()
    def compute_ws(self, req: RenderRequest) -> torch.Tensor:
        """The ws the request renders: [1, num_ws, w_dim]."""
        def ws_of(seed: int) -> torch.Tensor:
            return seed_ws(self.G, [seed], req.psi, req.cutoff, req.class_idx)

        ws = ws_of(req.seed)
        if req.seed2 is not None:
            ws = interpolate_ws(ws, ws_of(req.seed2), req.t)
        if req.mix_seed is not None and req.mix_layers:
            ws = mix_styles(ws, ws_of(req.mix_seed), req.mix_layers)
        if req.edit is not None:
            ws = self.editor.apply(ws, req.edit)
        return ws

    def directions(self, method: str, layers) -> dict:
        """The sliders of `method` on `layers` (a spec or list; None = the method's default): Editor.summary.

        Not under the render lock: the directions only read the mapping and affine weights, which renders leave
        alone (the noise multiplier and the StyleGAN3 transform are what a render changes).
        """
        try:
            self.editor.check_method(method)
            chosen = edit_layers(layers, self.G, self.editor.default_layers(method))
            return self.editor.summary(method, chosen)
        except EditError as exc:
            raise RequestError(str(exc)) from None

    def ws_npz(self, req: RenderRequest) -> bytes:
        """The request's ws as .npz bytes (key 'w', [1, num_ws, w_dim] float32)."""
        with self._render_lock:
            return encode_npz(self.compute_ws(req))

    @torch.no_grad()
    def render_image(self, req: RenderRequest) -> np.ndarray:
        """uint8 [H, W, C]; callers hold the render lock (the noise multiplier and the StyleGAN3 transform edit G
        in place and are restored on exit)."""
        ws = self.compute_ws(req)
        autocast = self.path.autocast(self.device) if self.path is not None else contextlib.nullcontext()
        with scaled_noise(self.G, req.noise_strength), input_transform(self.G, req.translate, req.rotate), autocast:
            img = self.G.synthesis(ws, noise_mode=req.noise_mode)
        return to_uint8(img)[0]

    def _cached(self, req: RenderRequest) -> Optional[bytes]:
        with self._cache_lock:
            png = self._cache.get(req)
            if png is not None:
                self._cache.move_to_end(req)
                self.stats.hits += 1
            return png

    def _store(self, req: RenderRequest, png: bytes) -> None:
        with self._cache_lock:
            self.stats.misses += 1
            if self.cache_size <= 0 or not req.deterministic:
                return
            self._cache[req] = png
            self._cache.move_to_end(req)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def render(self, req: RenderRequest) -> RenderResult:
        """PNG bytes for `req`: from the cache when possible, else rendered under the lock."""
        if req.deterministic:
            png = self._cached(req)
            if png is not None:
                return RenderResult(png, 0.0, True)
        with self._render_lock:
            if req.deterministic:  # someone may have rendered it while we waited
                png = self._cached(req)
                if png is not None:
                    return RenderResult(png, 0.0, True)
            start = time.perf_counter()
            png = encode_png(self.render_image(req))
            ms = (time.perf_counter() - start) * 1000
        self._store(req, png)
        return RenderResult(png, ms, False)

