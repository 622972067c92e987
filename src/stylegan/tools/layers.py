"""Which w belongs to which resolution, and the named style ranges of the StyleGAN paper (section 3.1).

Coarse styles act at 4x4-8x8 (pose, face shape), middle at 16x16-32x32 (features, hair style), fine at
64x64 and above (colours, micro-structure). Networks smaller than 64x64 have no such levels; there the last
resolution counts as fine and the ones between 8 and it as middle, so every range is non-empty from 16x16 up.

StyleGAN3 layers all run at about the same size and widen their frequency band instead; each w is placed at
the resolution whose Nyquist frequency is the band its layer produces (2 f_c, rounded to a power of two:
`SynthesisNetwork3.ws_resolutions`), so the same bands apply. For a 1024x1024 StyleGAN3 (16 ws) that gives
coarse = w0-w3 (Fourier features and layers 0-2), middle = w4-w6, fine = w7-w15.
"""
from __future__ import annotations

from typing import Dict, List

from torch import nn

from ..errors import UserInputError
from .generate import parse_range_list

NAMED_RANGES = ("coarse", "middle", "fine")


def ws_resolutions(G: nn.Module) -> List[int]:
    """The resolution each of the G.num_ws latents acts at.

    StyleGAN2: w0 drives the 4x4 conv; w(2k-1), w(2k) the two convs at 4*2^k (w(2k-1) also the previous
    toRGB); the last w only the final toRGB.
    StyleGAN v1 (two AdaIN layers per resolution) and StyleGAN3 (2 f_c per layer) provide their own
    `ws_resolutions()`.
    """
    own = getattr(G, "ws_resolutions", None)
    if callable(own):
        return list(own())
    return [min(4 * 2 ** ((i + 1) // 2), G.img_resolution) for i in range(G.num_ws)]


def style_ranges(G: nn.Module) -> Dict[str, List[int]]:
    """{'coarse': [ws indices], 'middle': [...], 'fine': [...]} for this generator."""
    res = ws_resolutions(G)
    top = G.img_resolution
    if top >= 64:
        bands = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, top)}
    else:
        bands = {"coarse": (4, min(8, top // 4)), "middle": (min(16, top // 2), top // 2), "fine": (top, top)}
    return {name: [i for i, r in enumerate(res) if lo <= r <= hi] for name, (lo, hi) in bands.items()}


def parse_layers(spec: str, G: nn.Module) -> List[int]:
    """'coarse', 'middle', 'fine', 'coarse,fine', '0-6', '0,2,4' -> sorted ws indices, validated."""
    ranges = style_ranges(G)
    out = set()
    for part in spec.split(","):
        part = part.strip()
        if part in ranges:
            out.update(ranges[part])
        elif part:
            indices = parse_range_list(part, what="layers", max_value=10 ** 6)
            bad = [i for i in indices if i >= G.num_ws]
            if bad:
                raise UserInputError(f"layer {bad[0]} is out of range: this network has layers 0..{G.num_ws - 1} "
                                     f"(or use coarse, middle, fine)")
            out.update(indices)
    if not out:
        raise UserInputError(f"no layers selected by {spec!r}; use e.g. coarse, middle, fine or 0-{G.num_ws - 1}")
    return sorted(out)
