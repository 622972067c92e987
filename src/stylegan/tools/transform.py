"""Translating and rotating StyleGAN3 output through its input transform (Karras et al. 2021, section 3.1).

A StyleGAN3 synthesis network samples its Fourier-feature input on a grid moved by the buffer
`synthesis.input.transform`; NVIDIA's gen_images.py (and its visualizer) set it to inv(make_transform(translate,
angle)), which translates the output by `translate` image widths and rotates it by `angle` degrees. As there,
the value given replaces the stored one: translate (0, 0) and angle 0 render the untransformed network.

Networks without such a buffer (StyleGAN v1/v2) cannot be moved this way; `check_transform` says so in one line.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import UserInputError


def parse_translate(text: str, flag: str = "--translate") -> Tuple[float, float]:
    """'0.3,-0.1' -> (0.3, -0.1), as gen_images.py reads --translate; UserInputError otherwise."""
    parts = text.split(",")
    try:
        if len(parts) == 2:
            x, y = float(parts[0]), float(parts[1])
            if math.isfinite(x) and math.isfinite(y):
                return x, y
    except ValueError:
        pass
    raise UserInputError(f"{flag} takes two numbers like 0.3,1 (image widths), got {text!r}")


def has_input_transform(G: nn.Module) -> bool:
    """Whether G's output can be translated and rotated through an input transform (StyleGAN3)."""
    return callable(getattr(G, "set_transform", None))


def check_transform(G: nn.Module, translate: Sequence[float] = (0, 0), angle: float = 0) -> None:
    """UserInputError when a translation or rotation is asked of a network without an input transform."""
    if not has_input_transform(G) and (tuple(float(t) for t in translate) != (0.0, 0.0) or float(angle) != 0):
        raise UserInputError("translate and rotate move the input grid of StyleGAN3 generators; this network "
                             f"({type(G).__name__}) has none: leave them at 0")


def apply_transform(G: nn.Module, translate: Optional[Sequence[float]] = None, angle: Optional[float] = None) -> None:
    """What the tools' --translate/--rotate flags do: nothing when both are None (G keeps its stored transform),
    else G.set_transform(translate or (0, 0), angle or 0), replacing the stored one as gen_images.py does.

    G:         the generator (changed in place).
    translate: (x, y) in image widths, or None.
    angle:     degrees, or None.
    """
    if translate is None and angle is None:
        return
    translate, angle = translate if translate is not None else (0, 0), angle if angle is not None else 0
    check_transform(G, translate, angle)
    if has_input_transform(G):
        G.set_transform(translate, angle)


@contextlib.contextmanager
def input_transform(G: nn.Module, translate: Sequence[float] = (0, 0), angle: float = 0) -> Iterator[nn.Module]:
    """Within the block G renders translated by `translate` (image widths) and rotated by `angle` (degrees), as
    gen_images.py sets it; the stored transform is restored on exit. Yields G.

    G:         the generator (its transform buffer is changed in place while the block runs; not thread-safe).
    translate: (x, y) in image widths.
    angle:     degrees, counter-clockwise as gen_images.py's --rotate.
    Networks without an input transform are accepted when translate and angle are 0 (nothing to do).
    """
    check_transform(G, translate, angle)
    if not has_input_transform(G):
        yield G
        return
    buffer = G.synthesis.input.transform
    saved = buffer.detach().clone()
    try:
        G.set_transform(translate, angle)
        yield G
    finally:
        with torch.no_grad():
            buffer.copy_(saved)
