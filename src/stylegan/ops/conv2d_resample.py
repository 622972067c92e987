"""2-D convolution combined with FIR up/downsampling (StyleGAN2 appendix B).

Semantics (the reference): zero-insert by `up`, pad, FIR-filter with `f` (gain up**2), convolve with `w`,
then FIR-filter and decimate by `down`. `conv2d_resample` computes the same thing faster by moving the
convolution to the lower resolution: a strided convolution for downsampling and a transposed convolution for
upsampling. Both accept the same arguments and are tested against each other.

`flip_weight=True` means cross-correlation (PyTorch's conv2d); False means true convolution. The official
layers use False when upsampling, so the same weights give the same images here.
"""
from __future__ import annotations

from typing import Callable, List, Optional

import torch
import torch.nn.functional as F

from .misc import check_output, pick_impl
from .upfirdn2d import IMPLS as upfirdn2d_impls
from .upfirdn2d import IntOrPair, filter_size, parse_padding, upfirdn2d
from .upfirdn2d_fast import upfirdn2d_fast


def _total_padding(f: Optional[torch.Tensor], up: int, down: int, padding: IntOrPair) -> List[int]:
    """Padding [x0, x1, y0, y1] applied after zero-insertion so that filtering keeps the output centred."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    return [px0, px1, py0, py1]


def _conv(x: torch.Tensor, w: torch.Tensor, flip_weight: bool, stride: int = 1, padding=0, groups: int = 1) -> torch.Tensor:
    if not flip_weight and (w.shape[2] > 1 or w.shape[3] > 1):
        w = w.flip([2, 3])
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _check(x: torch.Tensor, w: torch.Tensor, groups: int, up: int, down: int) -> None:
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"expected x [N, C, H, W] and w [O, I, kh, kw], got {list(x.shape)} and {list(w.shape)}")
    if x.shape[1] != w.shape[1] * groups:
        raise ValueError(f"x has {x.shape[1]} channels but w expects {w.shape[1]} x {groups} groups")
    if not (isinstance(up, int) and isinstance(down, int) and up >= 1 and down >= 1):
        raise ValueError(f"up and down must be positive integers, got up={up}, down={down}")


def conv2d_resample_reference(x: torch.Tensor, w: torch.Tensor, f: Optional[torch.Tensor] = None, up: int = 1,
                              down: int = 1, padding: IntOrPair = 0, groups: int = 1, flip_weight: bool = True,
                              flip_filter: bool = False) -> torch.Tensor:
    """Reference: upsample+filter at full resolution, convolve, filter+decimate. Arguments as conv2d_resample."""
    _check(x, w, groups, up, down)
    pad = _total_padding(f, up, down, padding)
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=pad, gain=up * up, flip_filter=flip_filter)
    x = _conv(x, w, flip_weight, groups=groups)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: Optional[torch.Tensor] = None, up: int = 1, down: int = 1,
                    padding: IntOrPair = 0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False, impl: str = "fast") -> torch.Tensor:
    """Convolve `x` [N, C, H, W] with `w` [O, C/groups, kh, kw], with FIR resampling.

    f:           resampling filter from setup_filter (needed when up > 1 or down > 1).
    up, down:    integer resampling factors.
    padding:     padding of the convolution in the output grid: int, [x, y] or [x0, x1, y0, y1].
    groups:      grouped convolution (the fused modulated convolution uses one group per sample).
    flip_weight: True = correlation (as F.conv2d), False = true convolution.
    flip_filter: passed to upfirdn2d.
    impl:        a name in IMPLS: 'fast' (strided / transposed convolutions at the lower resolution, FIR passes
                 through upfirdn2d_fast, whose double backward avoids PyTorch's per-group loop), 'triton' (as
                 'fast', FIR passes as Triton kernels: CUDA tensors) or 'reference'.
    """
    fn = pick_impl(IMPLS, "conv2d_resample", impl)
    return check_output(fn(x, w, f, up, down, padding, groups, flip_weight, flip_filter), x, "conv2d_resample")


def conv2d_resample_fast(x: torch.Tensor, w: torch.Tensor, f: Optional[torch.Tensor], up: int, down: int,
                         padding: IntOrPair, groups: int, flip_weight: bool, flip_filter: bool,
                         fir: Callable = upfirdn2d_fast) -> torch.Tensor:
    """Resampling folded into strided / transposed convolutions. Arguments as conv2d_resample; fir: the upfirdn2d
    implementation of the FIR passes (upfirdn2d_fast, or the Triton kernel)."""
    _check(x, w, groups, up, down)
    kh, kw = int(w.shape[2]), int(w.shape[3])
    px0, px1, py0, py1 = _total_padding(f, up, down, padding)

    if up == 1 and down == 1:
        if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
            return _conv(x, w, flip_weight, padding=[py0, px0], groups=groups)
        return conv2d_resample_reference(x, w, f, up, down, padding, groups, flip_weight, flip_filter)

    if up == 1:
        if kh == 1 and kw == 1:  # 1x1 conv commutes with the decimation: decimate first.
            x = fir(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
            return _conv(x, w, flip_weight, groups=groups)
        x = fir(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, flip_weight, stride=down, groups=groups)

    if kh == 1 and kw == 1 and down == 1:  # 1x1 conv before upsampling: fewer pixels to convolve.
        x = _conv(x, w, flip_weight, groups=groups)
        return fir(x, f, up=up, padding=[px0, px1, py0, py1], gain=up * up, flip_filter=flip_filter)

    # Upsampling: a transposed convolution is a true convolution of the zero-inserted input, so a
    # correlation kernel (flip_weight=True) must be flipped before it. It covers kw-1 of the left padding
    # and kw-up of the right one (the reference's trailing zeros); the filter pass takes the rest.
    out_c, in_per_group = int(w.shape[0]), int(w.shape[1])
    wt = w.reshape(groups, out_c // groups, in_per_group, kh, kw).transpose(1, 2)
    wt = wt.reshape(groups * in_per_group, out_c // groups, kh, kw)
    if flip_weight:
        wt = wt.flip([2, 3])
    px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
    crop_x, crop_y = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
    x = F.conv_transpose2d(x, wt, stride=up, padding=[crop_y, crop_x], groups=groups)
    x = fir(x, f, padding=[px0 + crop_x, px1 + crop_x, py0 + crop_y, py1 + crop_y], gain=up * up,
                       flip_filter=flip_filter)
    if down > 1:
        x = fir(x, f, down=down, flip_filter=flip_filter)
    return x


def conv2d_resample_triton(x: torch.Tensor, w: torch.Tensor, f: Optional[torch.Tensor], up: int, down: int,
                           padding: IntOrPair, groups: int, flip_weight: bool, flip_filter: bool) -> torch.Tensor:
    """'fast' with its FIR passes (the upsample after the transposed convolution, the filter before a strided one)
    as Triton kernels (ops/upfirdn2d_triton.py); the convolutions stay PyTorch's. Arguments as conv2d_resample."""
    return conv2d_resample_fast(x, w, f, up, down, padding, groups, flip_weight, flip_filter,
                                fir=upfirdn2d_impls["triton"])


IMPLS = {"reference": conv2d_resample_reference, "fast": conv2d_resample_fast, "triton": conv2d_resample_triton}
