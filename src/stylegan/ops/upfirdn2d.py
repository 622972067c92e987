"""Upsample, FIR-filter, downsample: the resampling primitive of StyleGAN2 (appendix B of Karras et al. 2020).

`upfirdn2d` pads the input with zeros between samples (upsampling by `up`), pads or crops its borders,
convolves every channel with a 2-D FIR filter (or a separable pair of 1-D passes) and keeps every
`down`-th sample. The wrappers `filter2d`, `upsample2d` and `downsample2d` choose the padding that keeps the
output centred. Padding lists are `[x_before, x_after, y_before, y_after]` (x = width).

This file holds the plain PyTorch reference; faster paths must match it: `IMPLS` names them all (upfirdn2d_fast.py,
upfirdn2d_triton.py), and `upsample2d`/`downsample2d` take the name of the one to run.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from .misc import pick_impl
from .triton_support import lazy_impl

IntOrPair = Union[int, Sequence[int]]


def setup_filter(f, device=None, normalize: bool = True, flip_filter: bool = False, gain: float = 1.0,
                 separable: Optional[bool] = None) -> torch.Tensor:
    """Turn a list of taps into a float32 filter tensor.

    f:          taps, e.g. [1, 3, 3, 1]; a 1-D list becomes the outer product with itself unless separable.
    device:     where to put the result.
    normalize:  scale so the taps sum to 1.
    flip_filter: flip the taps (convolution vs correlation).
    gain:       overall gain; applied as gain**(ndim/2) so a separable pair multiplies to `gain`.
    separable:  keep 1-D (applied as two passes); default: 1-D filters with at least 8 taps.
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2):
        raise ValueError(f"filter must be 1-D or 2-D, got shape {list(f.shape)}")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def _pair(value: IntOrPair) -> Tuple[int, int]:
    if isinstance(value, int):
        return value, value
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"expected an int or a pair, got {value}")
    return value  # type: ignore[return-value]


def parse_padding(padding: IntOrPair) -> List[int]:
    """Normalise padding to [x_before, x_after, y_before, y_after]."""
    if isinstance(padding, int):
        return [padding] * 4
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        return [px, px, py, py]
    if len(padding) != 4:
        raise ValueError(f"padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding}")
    return padding


def filter_size(f: Optional[torch.Tensor]) -> Tuple[int, int]:
    """(width, height) of a filter; a 1-D filter is square."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def upfirdn2d(x: torch.Tensor, f: Optional[torch.Tensor], up: IntOrPair = 1, down: IntOrPair = 1,
              padding: IntOrPair = 0, flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Reference upfirdn2d on `x` [N, C, H, W].

    f:           filter [fh, fw] or separable [ft]; None means identity.
    up, down:    integer factors (int or [x, y]).
    padding:     zeros added after upsampling (negative crops): int, [x, y] or [x0, x1, y0, y1].
    flip_filter: False = true convolution (the filter is flipped before correlating).
    gain:        multiplies the result (as gain**(f.ndim/2) on the filter taps).
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects [N, C, H, W], got shape {list(x.shape)}")
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = parse_padding(padding)
    n, c, h, w = x.shape

    # Zero-insertion: sample i lands at position i*up.
    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    # Pad with zeros, then crop where padding is negative.
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]

    # Depthwise FIR filter; conv2d correlates, so flip the taps for a true convolution.
    f = f.to(device=x.device, dtype=x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c)
    else:
        x = F.conv2d(x, f[None, None, None, :].expand(c, 1, 1, f.shape[0]), groups=c)
        x = F.conv2d(x, f[None, None, :, None].expand(c, 1, f.shape[0], 1), groups=c)

    # Decimate.
    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x


# Every implementation by name (ops.registry.OPS["upfirdn2d"]); the faster ones import this module, so their modules
# are imported at their first call.
IMPLS = {"reference": upfirdn2d, "fast": lazy_impl("upfirdn2d_fast", "upfirdn2d_fast"),
         "triton": lazy_impl("upfirdn2d_triton", "upfirdn2d_triton")}


def filter2d(x: torch.Tensor, f: torch.Tensor, padding: IntOrPair = 0, flip_filter: bool = False,
             gain: float = 1.0) -> torch.Tensor:
    """Filter without changing the size (beyond `padding`)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: IntOrPair = 2, padding: IntOrPair = 0,
               flip_filter: bool = False, gain: float = 1.0, impl: str = "reference") -> torch.Tensor:
    """Upsample by `up` with anti-imaging filter `f`; output is `up` times larger. impl: a name in IMPLS."""
    upx, upy = _pair(up)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return pick_impl(IMPLS, "upfirdn2d", impl)(x, f, up=up, padding=pad, flip_filter=flip_filter,
                                               gain=gain * upx * upy)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: IntOrPair = 2, padding: IntOrPair = 0,
                 flip_filter: bool = False, gain: float = 1.0, impl: str = "reference") -> torch.Tensor:
    """Downsample by `down` with anti-aliasing filter `f`; output is `down` times smaller. impl: a name in IMPLS."""
    downx, downy = _pair(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return pick_impl(IMPLS, "upfirdn2d", impl)(x, f, down=down, padding=pad, flip_filter=flip_filter, gain=gain)
