"""Semantic edits in the explorer: the top directions of a method as sliders, applied to the ws on screen.

A render request may carry an edit (see `parse_edit`):

    "edit": {"method": "sefa", "layers": "coarse", "strengths": [2.5, 0, -1]}

Strength k moves the ws of the chosen layers along direction k of the method, on top of whatever the rest of the
request made (seed, truncation, interpolation, mixing):

    ws[:, layers] += sum_k strengths[k] * v_k          (tools.edit.apply_direction, once per non-zero k)

in W units, the same edit `stylegan edit` makes, so a downloaded latent renders the same with `generate --ws`.

Methods (tools/directions.py computes them; this module only picks, caches and applies):

- sefa:     closed-form factorization of the style-affine weights of the chosen layers (SeFa, Shen & Zhou 2021,
            section 3.2), so its directions change with the layer range; computed on demand, instantly.
- ganspace: PCA of sampled w (GANSpace, Haerkoenen et al. 2020, section 2.2); sampled once per network
            (`GANSPACE_SAMPLES`, seeded) and applied to whichever layers are chosen.
- labels:   conditional networks only: one boundary normal per class from the network's own labels (as
            InterFaceGAN), fitted on `LABEL_SAMPLES` seeded w; slider k moves towards class k. Labels predicted by a
            feature network need rendered samples, too slow to compute while the page waits: make them with
            `stylegan directions --method labels --feature-net fmnist` and load them with --directions.
- file:     directions loaded with `stylegan serve --directions DIRS.npz`, checked against the network.

Directions are cached per method (and per layer range for sefa) in the `Editor` of one app, so each is computed
once per network. The page scales each slider by how far w varies along its direction: `scale` is the standard
deviation of w . v_k over `SCALE_SAMPLES` seeded samples of w (tools.directions.sample_w), and the slider spans
+-SLIDER_SCALES scales.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ..errors import UserInputError
from ..tools.directions import VALUE_NAMES, Directions, ganspace, label_directions, sample_w, sefa
from ..tools.edit import apply_direction
from ..tools.layers import NAMED_RANGES, parse_layers

MAX_COMPONENTS = 8          # sliders on the page (the top directions of sefa, ganspace, a file)
MAX_CLASS_SLIDERS = 32      # labels: one slider per class, up to this many
STRENGTH_BOUND = 1000.0     # |strength| in W units, a sanity bound (sliders span +-3 scales, far less)
SLIDER_SCALES = 3.0         # the page's sliders span +-SLIDER_SCALES * scale
GANSPACE_SAMPLES = 2000     # w samples for the explorer's PCA (modest: the mapping network only)
LABEL_SAMPLES = 1000        # w samples for the class boundaries (a logistic regression per class)
SCALE_SAMPLES = 1000        # w samples for the slider scales
SAMPLE_SEED = 0             # seed of both samplings, so a restart shows the same sliders

METHOD_TITLES = {
    "sefa": "SeFa: closed-form factorization of the style weights",
    "ganspace": "GANSpace: PCA of sampled w",
    "labels": "class boundaries from the network's labels",
    "file": "loaded with --directions",
}


class EditError(UserInputError):
    """An edit the server refuses (answered with HTTP 400 and the message)."""


@dataclass(frozen=True)
class EditRequest:
    """One edit of the rendered ws; hashable, part of the render cache key.

    method:    'sefa', 'ganspace', 'labels' or 'file'.
    layers:    ws indices the edit moves, sorted.
    strengths: strength of direction k for k = 0.., W units; trailing zeros dropped, at least one non-zero.
    """

    method: str
    layers: Tuple[int, ...]
    strengths: Tuple[float, ...]


def edit_layers(value, G: nn.Module, default: Optional[Tuple[int, ...]] = None) -> Tuple[int, ...]:
    """ws indices from a list, or a spec: 'all', 'coarse', 'middle', 'fine', '0-5', '2,4' (tools.layers).

    value:   the request's 'layers' (None = `default`, or every layer).
    G:       the generator (num_ws bounds the indices).
    default: the layers used when none are given.
    """
    if value is None:
        return default if default is not None else tuple(range(G.num_ws))
    if isinstance(value, str):
        if value.strip() == "all":
            return tuple(range(G.num_ws))
        try:
            return tuple(parse_layers(value, G))
        except UserInputError as exc:
            raise EditError(f"'edit.layers': {exc}") from None
    if not isinstance(value, list) or not value:
        raise EditError(f"'edit.layers' must be a non-empty list of ws indices or a name (all, "
                        f"{', '.join(NAMED_RANGES)}) or a range like 0-{G.num_ws - 1}, got {value!r}")
    for idx in value:
        if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < G.num_ws:
            raise EditError(f"'edit.layers' holds {idx!r}: layer indices must be integers 0..{G.num_ws - 1}")
    return tuple(sorted(set(value)))


def _strengths(value, count: int) -> Tuple[float, ...]:
    """The strengths list, validated (at most `count`, finite, bounded), trailing zeros dropped."""
    if not isinstance(value, list):
        raise EditError(f"'edit.strengths' must be a list of numbers (one per direction), got {value!r}")
    if len(value) > count:
        raise EditError(f"'edit.strengths' has {len(value)} values, but this method offers {count} directions")
    out = []
    for s in value:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
            raise EditError(f"'edit.strengths' holds {s!r}: strengths must be finite numbers")
        if abs(s) > STRENGTH_BOUND:
            raise EditError(f"'edit.strengths' holds {s}: strengths must be in [-{STRENGTH_BOUND:g}, "
                            f"{STRENGTH_BOUND:g}]")
        out.append(float(s) + 0.0)  # -0.0 -> 0.0: one cache entry
    while out and out[-1] == 0:
        out.pop()
    return tuple(out)


class Editor:
    """The directions of one network, computed on first use and cached, and the edits made with them.

    G:          the generator (StyleGAN v1, 2 or 3).
    directions: directions loaded from a file (already checked against G), offered as method 'file'; None = none.
    file_name:  what the page calls that file.

    Thread-safe: computing and caching go through one lock (the mapping and affine weights are only read, so a
    render may run beside it).
    """

    def __init__(self, G: nn.Module, directions: Optional[Directions] = None, file_name: Optional[str] = None):
        self.G = G
        self.file = directions
        self.file_name = file_name
        self._cache: Dict[Tuple[str, Tuple[int, ...]], Directions] = {}
        self._samples: Optional[torch.Tensor] = None
        self._lock = threading.Lock()
        self.computed = 0  # directions computed so far (the tests check the cache with it)

    # --- what is offered ---

    @property
    def methods(self) -> List[str]:
        """The methods this network offers: sefa, ganspace, labels (conditional networks), file (--directions)."""
        return (["sefa", "ganspace"] + (["labels"] if self.G.c_dim > 0 else [])
                + (["file"] if self.file is not None else []))

    def check_method(self, method) -> None:
        """EditError unless `method` is on offer."""
        if method not in self.methods:
            why = ""
            if method == "file":
                why = " (start the server with --directions DIRS.npz to offer 'file')"
            elif method == "labels":
                why = (" ('labels' needs a conditional network; for a classifier's labels run stylegan directions "
                       "--method labels --feature-net ... and pass the file with --directions)")
            raise EditError(f"'edit.method' must be one of {', '.join(self.methods)}, got {method!r}{why}")

    def default_layers(self, method: str) -> Tuple[int, ...]:
        """The layers an edit moves when none are given: the file's recorded layers, else every layer."""
        if method == "file" and self.file.layers:
            return tuple(self.file.layers)
        return tuple(range(self.G.num_ws))

    def info(self) -> dict:
        """What /api/info says about editing."""
        return {
            "methods": [{"name": m, "title": METHOD_TITLES[m], "per_layers": m == "sefa",
                         "default_layers": list(self.default_layers(m))} for m in self.methods],
            "strength_bound": STRENGTH_BOUND,
            "slider_scales": SLIDER_SCALES,
            "file": None if self.file is None else {"name": self.file_name, "method": self.file.method},
        }

    # --- requests ---

    def parse(self, data) -> Optional[EditRequest]:
        """The request's 'edit' object -> EditRequest, or None when it changes nothing (no non-zero strength).

        Computes (and caches) the method's directions, so a request they cannot serve (e.g. sefa on layers that
        drive no styles) is refused here, with the reason.
        """
        if data is None:
            return None
        if not isinstance(data, dict):
            raise EditError("'edit' must be an object like {\"method\": \"sefa\", \"layers\": \"coarse\", "
                            "\"strengths\": [2, 0, -1]}")
        unknown = sorted(set(data) - {"method", "layers", "strengths"})
        if unknown:
            raise EditError(f"unknown field 'edit.{unknown[0]}'; known fields: method, layers, strengths")
        method = data.get("method")
        self.check_method(method)
        layers = edit_layers(data.get("layers"), self.G, self.default_layers(method))
        strengths = _strengths(data.get("strengths", []), self.count(method, layers))
        if not strengths:
            return None
        return EditRequest(method=method, layers=layers, strengths=strengths)

    def count(self, method: str, layers: Tuple[int, ...]) -> int:
        """How many directions (sliders) `method` offers on `layers`."""
        found = self.directions(method, layers)
        return min(MAX_CLASS_SLIDERS if found.method == "labels" else MAX_COMPONENTS, found.num_components)

    # --- directions ---

    def directions(self, method: str, layers: Tuple[int, ...]) -> Directions:
        """The Directions of `method` (for sefa: of the style weights of `layers`), computed once and cached."""
        self.check_method(method)
        if method == "file":
            return self.file
        key = (method, tuple(layers) if method == "sefa" else ())
        with self._lock:
            found = self._cache.get(key)
            if found is None:
                try:
                    found = self._compute(method, layers)
                except UserInputError as exc:
                    raise EditError(f"{method}: {exc}") from None
                self._cache[key] = found
                self.computed += 1
            return found

    def _compute(self, method: str, layers: Tuple[int, ...]) -> Directions:
        if method == "sefa":
            return sefa(self.G, layers=",".join(str(i) for i in layers))
        if method == "ganspace":
            return ganspace(self.G, num=GANSPACE_SAMPLES, seed=SAMPLE_SEED, layers="all",
                            components=min(MAX_COMPONENTS, self.G.w_dim))
        return label_directions(self.G, num=LABEL_SAMPLES, seed=SAMPLE_SEED, layers="all")

    def _w_samples(self) -> torch.Tensor:
        """[SCALE_SAMPLES, w_dim] seeded w (tools.directions.sample_w), computed once; call under the lock."""
        if self._samples is None:
            self._samples, _ = sample_w(self.G, SCALE_SAMPLES, SAMPLE_SEED)
        return self._samples

    def summary(self, method: str, layers: Tuple[int, ...]) -> dict:
        """What the page shows for `method` on `layers`: one entry per slider (label, value, scale)."""
        found = self.directions(method, layers)
        count = self.count(method, layers)
        with self._lock:
            samples = self._w_samples()
        vectors = torch.from_numpy(found.vectors[:count]).to(samples.dtype)
        scales = (samples @ vectors.T).std(dim=0)  # [count]: how far w spreads along each direction
        classes = found.params.get("classes") if found.method == "labels" else None
        components = []
        for k in range(count):
            value = float(found.values[k])
            components.append({
                "index": k,
                "label": f"class {classes[k]}" if classes else f"#{k}",
                "value": value if math.isfinite(value) else None,
                "scale": float(scales[k]) if float(scales[k]) > 0 else 1.0,
            })
        return {"method": method, "directions_method": found.method, "layers": list(layers),
                "value_name": VALUE_NAMES[found.method], "components": components}

    def apply(self, ws: torch.Tensor, edit: EditRequest) -> torch.Tensor:
        """ws [N, num_ws, w_dim] moved by the edit: ws[:, layers] += sum_k strengths[k] * v_k."""
        found = self.directions(edit.method, edit.layers)
        for k, strength in enumerate(edit.strengths):
            if strength != 0:
                ws = apply_direction(ws, found.vector(k).to(ws.device), strength, edit.layers)
        return ws
