"""Filtered leaky ReLU: the alias-free nonlinearity of StyleGAN3 (Karras et al. 2021, section 3.2, figure 4).

A pointwise nonlinearity creates frequencies above Nyquist; StyleGAN3 therefore applies it at a temporarily
higher sampling rate:

    y = downsample_fd( clamp( gain * lrelu( upsample_fu( x + b ) ) ) )

1. add the per-channel bias;
2. upsample by `up`: insert zeros, pad (negative = crop), FIR-filter with `fu` at gain up**2;
3. leaky ReLU with negative slope `slope`, times `gain`, clamped to +-`clamp`;
4. FIR-filter with `fd` and keep every `down`-th sample.

Filters are 1-D (separable, one pass per axis) or 2-D (the radial down filter of StyleGAN3-R); None is the
identity. Padding is `[x0, x1, y0, y1]` applied after zero insertion, as in upfirdn2d.

Four implementations with the same signature (`IMPLS`):
- `reference`: exactly the formulation above, on top of upfirdn2d (every zero inserted by the upsampling is
  filtered, every output of the down filter is computed and then discarded);
- `fast`: the upsampling as a depthwise transposed convolution with stride `up` (polyphase: the zeros are never
  multiplied) and the downsampling as a depthwise convolution with stride `down` (the discarded samples are never
  computed). Plain autograd ops, so backward and double backward come for free; tested against the reference.
- `fast_inplace`: `fast` for inference: the activation is applied in place on the largest tensor of the layer
  (the upsampled one, this op's own) instead of three out-of-place ops. No gradients: asking for them raises.
- `triton` (CUDA tensors; ops/filtered_lrelu_triton.py): the whole op as one kernel per pass, the upsampled tensor
  never written to memory; first-order gradients only (StyleGAN3 differentiates G once: no path length).
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn.functional as F

from .bias_act import lrelu_inplace
from .misc import check_output, pick_impl
from .triton_support import lazy_impl
from .upfirdn2d import IntOrPair, filter_size, parse_padding, upfirdn2d

def output_size(in_size: int, up: int, down: int, pad0: int, pad1: int, fu_taps: int, fd_taps: int) -> int:
    """Output length along one axis: upsampled, padded, shortened by both filters, decimated (rounded up)."""
    return (in_size * up + pad0 + pad1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down


def _check(x: torch.Tensor, fu, fd, b, up: int, down: int, padding: IntOrPair, gain: float, slope: float,
           clamp: Optional[float]) -> List[int]:
    if x.ndim != 4:
        raise ValueError(f"filtered_lrelu expects x [N, C, H, W], got shape {list(x.shape)}")
    for name, f in (("fu", fu), ("fd", fd)):
        if f is not None and f.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D (separable) or 2-D, got shape {list(f.shape)}")
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[1]):
        raise ValueError(f"bias of shape {list(b.shape)} does not match {x.shape[1]} channels")
    if not (isinstance(up, int) and isinstance(down, int) and up >= 1 and down >= 1):
        raise ValueError(f"up and down must be positive integers, got up={up}, down={down}")
    if not gain > 0 or not slope >= 0 or (clamp is not None and not clamp >= 0):
        raise ValueError(f"need gain > 0, slope >= 0, clamp >= 0 or None; got {gain}, {slope}, {clamp}")
    return parse_padding(padding)


def _activation(x: torch.Tensor, gain: float, slope: float, clamp: Optional[float]) -> torch.Tensor:
    """clamp(gain * lrelu(x, slope)); slope 1 (ToRGB) is linear."""
    if slope != 1:
        x = F.leaky_relu(x, slope)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def filtered_lrelu_reference(x: torch.Tensor, fu: Optional[torch.Tensor] = None, fd: Optional[torch.Tensor] = None,
                             b: Optional[torch.Tensor] = None, up: int = 1, down: int = 1, padding: IntOrPair = 0,
                             gain: float = math.sqrt(2), slope: float = 0.2, clamp: Optional[float] = None,
                             flip_filter: bool = False) -> torch.Tensor:
    """The reference: bias, upfirdn2d upsampling, activation, upfirdn2d downsampling. Arguments as filtered_lrelu."""
    px0, px1, py0, py1 = _check(x, fu, fd, b, up, down, padding, gain, slope, clamp)
    fu_w, fu_h = filter_size(fu)
    fd_w, fd_h = filter_size(fd)
    n, c, h, w = x.shape
    out_h = output_size(h, up, down, py0, py1, fu_h, fd_h)
    out_w = output_size(w, up, down, px0, px1, fu_w, fd_w)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    x = upfirdn2d(x, fu, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)
    x = _activation(x, gain, slope, clamp)
    x = upfirdn2d(x, fd, down=down, flip_filter=flip_filter)
    assert x.shape == (n, c, out_h, out_w), (list(x.shape), [n, c, out_h, out_w])
    return x


def _depthwise(f: torch.Tensor, channels: int, axis: int, dtype: torch.dtype) -> torch.Tensor:
    """A 1-D filter as a depthwise conv weight along `axis` (3 = width, 2 = height): [C, 1, 1, K] or [C, 1, K, 1]."""
    f = f.to(dtype)
    shape = [1, 1, 1, f.shape[0]] if axis == 3 else [1, 1, f.shape[0], 1]
    return f.reshape(shape).expand(channels, 1, *shape[2:])


def _crop_or_pad(x: torch.Tensor, axis: int, start: int, length: int) -> torch.Tensor:
    """x[..., start:start+length, ...] along `axis` (2 or 3), zero-extended where the range leaves x."""
    before, after = -start, start + length - x.shape[axis]
    pad = [before, after, 0, 0] if axis == 3 else [0, 0, before, after]
    return F.pad(x, pad) if any(pad) else x


def _upsample_axis(x: torch.Tensor, f: Optional[torch.Tensor], up: int, pad0: int, pad1: int, axis: int,
                   gain: float, flip_filter: bool) -> torch.Tensor:
    """Zero-insert by `up`, pad [pad0, pad1], convolve with 1-D `f` along one axis, without touching the zeros.

    The transposed convolution with stride `up` is the full convolution of the zero-inserted signal with f;
    the valid part after padding starts at index (taps - 1 - pad0) of it.
    """
    n_in = x.shape[axis]
    taps = 1 if f is None else f.shape[0]
    length = n_in * up + pad0 + pad1 - (taps - 1)
    if f is not None:
        f = f * gain
        if flip_filter:  # correlation = convolution with the reversed taps
            f = f.flip(0)
        stride = (1, up) if axis == 3 else (up, 1)
        x = F.conv_transpose2d(x, _depthwise(f, x.shape[1], axis, x.dtype), stride=stride, groups=x.shape[1])
    elif up > 1:
        x = _zero_insert(x, up, axis)
    return _crop_or_pad(x, axis, taps - 1 - pad0, length)


def _zero_insert(x: torch.Tensor, up: int, axis: int) -> torch.Tensor:
    n, c, h, w = x.shape
    if axis == 3:
        return F.pad(x.reshape(n, c, h, w, 1), [0, up - 1]).reshape(n, c, h, w * up)
    return F.pad(x.reshape(n, c, h, 1, w), [0, 0, 0, up - 1]).reshape(n, c, h * up, w)


def _upsample(x: torch.Tensor, f: Optional[torch.Tensor], up: int, padding: List[int], flip_filter: bool) -> torch.Tensor:
    px0, px1, py0, py1 = padding
    if f is not None and f.ndim == 2:  # a 2-D up filter (never built by StyleGAN3, allowed by the op): reference
        return upfirdn2d(x, f, up=up, padding=padding, gain=up ** 2, flip_filter=flip_filter)
    x = _upsample_axis(x, f, up, px0, px1, 3, up, flip_filter)  # gain up per axis: up**2 in all
    return _upsample_axis(x, f, up, py0, py1, 2, up, flip_filter)


def _downsample(x: torch.Tensor, f: Optional[torch.Tensor], down: int, flip_filter: bool) -> torch.Tensor:
    """Valid FIR filter, then every `down`-th sample, as one strided depthwise convolution (per axis if 1-D)."""
    if f is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    c = x.shape[1]
    if not flip_filter:  # conv2d correlates; a true convolution reverses the taps
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        return F.conv2d(x, f.to(x.dtype)[None, None].expand(c, 1, *f.shape), stride=down, groups=c)
    x = F.conv2d(x, _depthwise(f, c, 3, x.dtype), stride=(1, down), groups=c)
    return F.conv2d(x, _depthwise(f, c, 2, x.dtype), stride=(down, 1), groups=c)


def _filtered_lrelu_fast(x: torch.Tensor, fu, fd, b, up: int, down: int, padding: IntOrPair, gain: float,
                         slope: float, clamp: Optional[float], flip_filter: bool, inplace: bool) -> torch.Tensor:
    pad = _check(x, fu, fd, b, up, down, padding, gain, slope, clamp)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    x = _upsample(x, fu, up, pad, flip_filter)
    if inplace:
        # The upsampled tensor is this op's own unless the caller's input passed through unchanged (no bias,
        # filter, upsampling or padding): only then is it copied.
        x = lrelu_inplace(x, slope, gain, clamp, inplace=b is not None or fu is not None or up > 1 or any(pad))
    else:
        x = _activation(x, gain, slope, clamp)
    return _downsample(x, fd, down, flip_filter)


def filtered_lrelu_fast(x: torch.Tensor, fu: Optional[torch.Tensor] = None, fd: Optional[torch.Tensor] = None,
                        b: Optional[torch.Tensor] = None, up: int = 1, down: int = 1, padding: IntOrPair = 0,
                        gain: float = math.sqrt(2), slope: float = 0.2, clamp: Optional[float] = None,
                        flip_filter: bool = False) -> torch.Tensor:
    """Polyphase up/downsampling (strided transposed / strided convolutions), the activation as PyTorch's ops
    differentiated by autograd. Arguments as filtered_lrelu."""
    return _filtered_lrelu_fast(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, inplace=False)


def filtered_lrelu_fast_inplace(x: torch.Tensor, fu: Optional[torch.Tensor] = None, fd: Optional[torch.Tensor] = None,
                                b: Optional[torch.Tensor] = None, up: int = 1, down: int = 1,
                                padding: IntOrPair = 0, gain: float = math.sqrt(2), slope: float = 0.2,
                                clamp: Optional[float] = None, flip_filter: bool = False) -> torch.Tensor:
    """As filtered_lrelu_fast, the activation in place on the upsampled tensor; no gradients."""
    return _filtered_lrelu_fast(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, inplace=True)


# 'triton': one fused kernel per pass (ops/filtered_lrelu_triton.py; CUDA), imported at its first call
IMPLS = {"reference": filtered_lrelu_reference, "fast": filtered_lrelu_fast,
         "fast_inplace": filtered_lrelu_fast_inplace,
         "triton": lazy_impl("filtered_lrelu_triton", "filtered_lrelu_triton")}


def filtered_lrelu(x: torch.Tensor, fu: Optional[torch.Tensor] = None, fd: Optional[torch.Tensor] = None,
                   b: Optional[torch.Tensor] = None, up: int = 1, down: int = 1, padding: IntOrPair = 0,
                   gain: float = math.sqrt(2), slope: float = 0.2, clamp: Optional[float] = None,
                   flip_filter: bool = False, impl: str = "fast") -> torch.Tensor:
    """Bias, upsampling, leaky ReLU with gain and clamp, downsampling: [N, C, H, W] -> [N, C, H', W'].

    x:           input [N, C, H, W].
    fu:          upsampling filter, 1-D [taps] (separable) or 2-D, or None (identity).
    fd:          downsampling filter, 1-D or 2-D (radial), or None.
    b:           per-channel bias [C] or None.
    up:          integer upsampling factor.
    down:        integer downsampling factor.
    padding:     padding after zero insertion (negative crops): int, [x, y] or [x0, x1, y0, y1].
    gain:        scale after the leaky ReLU (sqrt(2) keeps unit variance; 1 for ToRGB).
    slope:       negative-side slope of the leaky ReLU (1 = linear).
    clamp:       clamp the activations to +-clamp, or None.
    flip_filter: False = true convolution with the filters, True = correlation.
    impl:        a name in IMPLS (see the module docstring).
    """
    fn = pick_impl(IMPLS, "filtered_lrelu", impl)
    y = fn(x, fu, fd, b, up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp,
           flip_filter=flip_filter)
    return check_output(y, x, "filtered_lrelu")
