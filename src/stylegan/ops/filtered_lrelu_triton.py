"""StyleGAN3's filtered leaky ReLU as one Triton kernel, forward and backward ('triton' in filtered_lrelu.IMPLS).

The op (ops/filtered_lrelu.py) is bias, upsampling by `up` (zero insertion, padding, FIR filter `fu`), leaky ReLU
with gain and clamp, FIR filter `fd` and decimation by `down`. Its reference writes the upsampled tensor (up**2
times the input) to memory, and reads it back, several times. Here each program computes one tile of the output of
one image plane from the input tile and its halo, and the upsampled tile never leaves the program.

Along one axis every linear step of the op is a banded matrix built from the filter taps: the upsampling maps
input samples k to intermediate samples i with the weight fu'[k*up + pad0 - i] (fu' the taps in correlation order,
times the gain `up`; the zeros of the zero insertion are never multiplied: polyphase), the downsampling maps i to
outputs o with fd'[i - o*down]. On a 2-D tile the separable filters are one matrix per axis:

    U = Mu_y @ X @ Mu_x^T,   A = clamp(gain * lrelu(U)),   Y = Md_y @ A @ Md_x^T

four tl.dot calls on tiles in registers. A 2-D filter (the radial down filter of StyleGAN3-R) is a sum of such
separable terms: its columns paired with their mirror images, as symmetric and antisymmetric halves (`_terms`);
each term whose taps are all zero is skipped at run time, so a mirror-symmetric filter such as R's (exactly
symmetric in float32) costs half of its columns, without the host ever reading the filter values (no device sync).

Backward (first order): dA = Md_y^T @ dY @ Md_x, dU = dA * A'(U), dX = Mu_y^T @ dU @ Mu_x, db = sum of dX. Each
program computes a tile of dX and recomputes U over it from the input (saved for backward) instead of saving the
activation's sign/clamp mask in the forward (NVIDIA's kernel packs it in 2 bits per intermediate sample): nothing
the size of the upsampled tensor is kept between the passes (a uint8 mask would be 2x-8x the fp16 input it
replaces), forward and backward tiles need not line up, and recomputing is the first half of the forward's
arithmetic. Where the recomputed U rounds differently at exactly 0 or +-clamp/gain, the gradient picks the other
side of the kink, as valid as the first.

No double backward: StyleGAN3 trains G with first-order gradients only (R1 differentiates D twice, and D has no
filtered_lrelu; path length is off, pl_weight 0, in NVIDIA's StyleGAN3 configs). Differentiating this op's
gradients again raises a RuntimeError that says so; impl='fast' is differentiable to any order.

Arithmetic: float32 and bfloat16 inputs multiply in IEEE float32 (no TF32), float16 inputs with the taps and the
intermediate tiles in float16 (as the reference rounds them) and float32 accumulation. Tiles: each program
covers an output tile (forward) or an input tile (backward) whose blocks are powers of two of at least 16 (tl.dot);
`_tiles` picks the tile that wastes least arithmetic on padding. Filters are constants here (no gradient).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from .filtered_lrelu import _check, output_size
from .triton_support import check_device, import_triton
from .upfirdn2d import IntOrPair, filter_size

triton, tl = import_triton("filtered_lrelu")

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# The type tl.dot multiplies in. bfloat16 in float32: Triton's interpreter (3.9) multiplies bfloat16 operands
# wrongly, so a bfloat16 tensor-core path could not be tested without a GPU.
_DOT_DTYPES = {torch.float32: tl.float32, torch.float16: tl.float16, torch.bfloat16: tl.float32}
_MID_BLOCKS = (32, 64, 128)  # intermediate (upsampled) tile sizes tried per axis


# ----------------------------------------------------------------------------------------------------------------
# Kernels


@triton.jit
def _ceil_div(n, d, shift):
    """ceil(n / d) for n >= -shift * d, dividing only non-negative numbers (Triton's integer division of a negative
    number truncates, Python's floors)."""
    return (n + shift * d + d - 1) // d - shift


@triton.jit
def _program(tiles_x, STEP_Y: tl.constexpr, STEP_X: tl.constexpr):
    """(channel, image, first row, first column) of this program's tile; grid (tiles, C, N)."""
    tile = tl.program_id(0)
    return tl.program_id(1), tl.program_id(2), (tile // tiles_x) * STEP_Y, (tile % tiles_x) * STEP_X


@triton.jit
def _plane(n, c, stride_n, stride_c):
    """Offset of plane (n, c), in 64 bits (a batch of large layers exceeds 2**31 elements)."""
    return n.to(tl.int64) * stride_n + c.to(tl.int64) * stride_c


@triton.jit
def _mm(a, b, DOT: tl.constexpr):
    """a @ b accumulated in float32: IEEE float32 products for float32, else the operands in DOT."""
    if DOT == tl.float32:
        return tl.dot(a, b, input_precision="ieee")
    return tl.dot(a.to(DOT), b.to(DOT))


@triton.jit
def _resample(v, fy_ptr, fx_ptr, live_ptr, idx_y, idx_x, R: tl.constexpr, TY: tl.constexpr, TX: tl.constexpr,
              M: tl.constexpr, N: tl.constexpr, DOT: tl.constexpr):
    """sum over the filter's terms r of My_r @ v @ Mx_r, with My_r = fy_r[idx_y] and Mx_r = fx_r[idx_x] (zero
    where the tap index leaves the filter): the banded resampling matrices built from their tap indices."""
    out = tl.zeros([M, N], dtype=tl.float32)
    for r in tl.static_range(R):
        if tl.load(live_ptr + r) != 0:
            my = tl.load(fy_ptr + r * TY + idx_y, mask=(idx_y >= 0) & (idx_y < TY), other=0.0)
            mx = tl.load(fx_ptr + r * TX + idx_x, mask=(idx_x >= 0) & (idx_x < TX), other=0.0)
            out += _mm(_mm(my, v, DOT), mx, DOT)
    return out


@triton.jit
def _upsampled(x_ptr, b_ptr, base, c, H, W, sxh, sxw, ky0, kx0, iy0, ix0, py0, px0,
               fuy, fux, ulive, UP: tl.constexpr, TUY: tl.constexpr, TUX: tl.constexpr, RU: tl.constexpr,
               BA_Y: tl.constexpr, BA_X: tl.constexpr, BI_Y: tl.constexpr, BI_X: tl.constexpr,
               HAS_BIAS: tl.constexpr, DOT: tl.constexpr):
    """U on the intermediate rows iy0.. and columns ix0.. from the input tile starting at (ky0, kx0), bias added
    where the input exists (the padding stays zero)."""
    ky = ky0 + tl.arange(0, BI_Y)
    kx = kx0 + tl.arange(0, BI_X)
    inside = ((ky >= 0) & (ky < H))[:, None] & ((kx >= 0) & (kx < W))[None, :]
    v = tl.load(x_ptr + base + ky[:, None] * sxh + kx[None, :] * sxw, mask=inside, other=0.0).to(tl.float32)
    if HAS_BIAS:
        v = tl.where(inside, v + tl.load(b_ptr + c).to(tl.float32), 0.0)
    a_y = iy0 + tl.arange(0, BA_Y)
    a_x = ix0 + tl.arange(0, BA_X)
    idx_y = ky[None, :] * UP + py0 - a_y[:, None]  # [BA_Y, BI_Y]
    idx_x = kx[:, None] * UP + px0 - a_x[None, :]  # [BI_X, BA_X]
    return _resample(v, fuy, fux, ulive, idx_y, idx_x, RU, TUY, TUX, BA_Y, BA_X, DOT)


@triton.jit
def _lrelu(u, gain, slope):
    return tl.where(u > 0, u, u * slope) * gain


@triton.jit
def _forward_kernel(x_ptr, b_ptr, y_ptr, fuy, fux, ulive, fdy, fdx, dlive,
                    C, H, W, OH, OW, sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                    py0, px0, shift, tiles_x, gain, slope, clamp,
                    UP: tl.constexpr, DOWN: tl.constexpr, TUY: tl.constexpr, TUX: tl.constexpr,
                    TDY: tl.constexpr, TDX: tl.constexpr, RU: tl.constexpr, RD: tl.constexpr,
                    STEP_Y: tl.constexpr, STEP_X: tl.constexpr, BO_Y: tl.constexpr, BO_X: tl.constexpr,
                    BA_Y: tl.constexpr, BA_X: tl.constexpr, BI_Y: tl.constexpr, BI_X: tl.constexpr,
                    HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr, DOT: tl.constexpr):
    """One output tile (STEP_Y x STEP_X samples) of one plane."""
    c, n, oy0, ox0 = _program(tiles_x, STEP_Y, STEP_X)
    iy0 = oy0 * DOWN  # first intermediate sample under the tile's down filter
    ix0 = ox0 * DOWN
    ky0 = _ceil_div(iy0 - py0, UP, shift)  # first input sample under the up filter of iy0
    kx0 = _ceil_div(ix0 - px0, UP, shift)
    u = _upsampled(x_ptr, b_ptr, _plane(n, c, sxn, sxc), c, H, W, sxh, sxw, ky0, kx0, iy0, ix0, py0, px0,
                   fuy, fux, ulive, UP, TUY, TUX, RU, BA_Y, BA_X, BI_Y, BI_X, HAS_BIAS, DOT)
    a = _lrelu(u, gain, slope)
    if HAS_CLAMP:
        a = tl.minimum(tl.maximum(a, -clamp), clamp)
    o_y = tl.arange(0, BO_Y)
    o_x = tl.arange(0, BO_X)
    i_y = tl.arange(0, BA_Y)
    i_x = tl.arange(0, BA_X)
    idx_y = i_y[None, :] - o_y[:, None] * DOWN  # [BO_Y, BA_Y]
    idx_x = i_x[:, None] - o_x[None, :] * DOWN  # [BA_X, BO_X]
    y = _resample(a, fdy, fdx, dlive, idx_y, idx_x, RD, TDY, TDX, BO_Y, BO_X, DOT)
    oy = oy0 + o_y
    ox = ox0 + o_x
    keep = ((o_y < STEP_Y) & (oy < OH))[:, None] & ((o_x < STEP_X) & (ox < OW))[None, :]
    out = y_ptr + _plane(n, c, syn, syc) + oy[:, None] * syh + ox[None, :] * syw
    tl.store(out, y.to(y_ptr.dtype.element_ty), mask=keep)


@triton.jit
def _backward_kernel(x_ptr, b_ptr, dy_ptr, dx_ptr, fuy, fux, ulive, fdy, fdx, dlive,
                     C, H, W, OH, OW, sxn, sxc, sxh, sxw, sdn, sdc, sdh, sdw, sgn, sgc, sgh, sgw,
                     py0, px0, shift, tiles_x, gain, slope, clamp,
                     UP: tl.constexpr, DOWN: tl.constexpr, TUY: tl.constexpr, TUX: tl.constexpr,
                     TDY: tl.constexpr, TDX: tl.constexpr, RU: tl.constexpr, RD: tl.constexpr,
                     STEP_Y: tl.constexpr, STEP_X: tl.constexpr, BK_Y: tl.constexpr, BK_X: tl.constexpr,
                     BA_Y: tl.constexpr, BA_X: tl.constexpr, BO_Y: tl.constexpr, BO_X: tl.constexpr,
                     BI_Y: tl.constexpr, BI_X: tl.constexpr,
                     HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr, DOT: tl.constexpr):
    """One input-gradient tile (STEP_Y x STEP_X samples of dX) of one plane."""
    c, n, ky0, kx0 = _program(tiles_x, STEP_Y, STEP_X)
    iy0 = ky0 * UP + py0 - (TUY - 1)  # first intermediate sample the tile's inputs reach
    ix0 = kx0 * UP + px0 - (TUX - 1)
    oy0 = _ceil_div(iy0 - (TDY - 1), DOWN, shift)  # first output whose down filter reaches iy0
    ox0 = _ceil_div(ix0 - (TDX - 1), DOWN, shift)

    # The forward's U over the tile's intermediate rows, recomputed from the input and its halo.
    u = _upsampled(x_ptr, b_ptr, _plane(n, c, sxn, sxc), c, H, W, sxh, sxw, ky0 - (TUY - 1) // UP,
                   kx0 - (TUX - 1) // UP, iy0, ix0, py0, px0, fuy, fux, ulive, UP, TUY, TUX, RU, BA_Y, BA_X,
                   BI_Y, BI_X, HAS_BIAS, DOT)

    # dA = Md_y^T @ dY @ Md_x over the same rows.
    oy = oy0 + tl.arange(0, BO_Y)
    ox = ox0 + tl.arange(0, BO_X)
    inside = ((oy >= 0) & (oy < OH))[:, None] & ((ox >= 0) & (ox < OW))[None, :]
    g = tl.load(dy_ptr + _plane(n, c, sdn, sdc) + oy[:, None] * sdh + ox[None, :] * sdw, mask=inside,
                other=0.0).to(tl.float32)
    a_y = iy0 + tl.arange(0, BA_Y)
    a_x = ix0 + tl.arange(0, BA_X)
    da = _resample(g, fdy, fdx, dlive, a_y[:, None] - oy[None, :] * DOWN, a_x[None, :] - ox[:, None] * DOWN,
                   RD, TDY, TDX, BA_Y, BA_X, DOT)

    # dU = dA * A'(U): gain, times slope on the negative side, zero where the clamp held (torch.clamp's rule:
    # the gradient passes at exactly +-clamp).
    du = da * tl.where(u > 0, gain, gain * slope)
    if HAS_CLAMP:
        a = _lrelu(u, gain, slope)
        du = tl.where((a >= -clamp) & (a <= clamp), du, 0.0)

    # dX = Mu_y^T @ dU @ Mu_x on the tile.
    ky = ky0 + tl.arange(0, BK_Y)
    kx = kx0 + tl.arange(0, BK_X)
    dx = _resample(du, fuy, fux, ulive, ky[:, None] * UP + py0 - a_y[None, :], kx[None, :] * UP + px0 - a_x[:, None],
                   RU, TUY, TUX, BK_Y, BK_X, DOT)
    keep = ((tl.arange(0, BK_Y) < STEP_Y) & (ky < H))[:, None] & ((tl.arange(0, BK_X) < STEP_X) & (kx < W))[None, :]
    out = dx_ptr + _plane(n, c, sgn, sgc) + ky[:, None] * sgh + kx[None, :] * sgw
    tl.store(out, dx.to(dx_ptr.dtype.element_ty), mask=keep)


# ----------------------------------------------------------------------------------------------------------------
# Host side: filters as separable terms, tiles, launches


@dataclass(frozen=True)
class _Terms:
    """A filter as R separable terms in correlation order, gain included: f[y, x] = sum_r fy[r, y] * fx[r, x]."""

    fy: torch.Tensor    # [R, taps_y] float32
    fx: torch.Tensor    # [R, taps_x] float32
    live: torch.Tensor  # [R] int32: 0 where the term's taps are all zero (skipped by the kernels)

    @property
    def count(self) -> int:
        return self.fy.shape[0]


def _mirror_basis(taps: int, device: torch.device) -> torch.Tensor:
    """[taps, taps] rows e_j + e_m and e_j - e_m for each column j and its mirror m = taps - 1 - j (the middle
    column of an odd filter alone, last): any filter's rows are the sums of their symmetric and antisymmetric
    halves. Built where it is used (no copy from the host)."""
    basis = torch.zeros([taps, taps], dtype=torch.float64, device=device)
    j = torch.arange(taps // 2, device=device)
    basis[2 * j, j] = basis[2 * j, taps - 1 - j] = basis[2 * j + 1, j] = 1.0
    basis[2 * j + 1, taps - 1 - j] = -1.0
    if taps % 2:
        basis[taps - 1, taps // 2] = 1.0
    return basis


def _terms(f: Optional[torch.Tensor], axis_gain: float, flip_filter: bool, device: torch.device) -> _Terms:
    """`f` (None, 1-D separable or 2-D) as separable terms; axis_gain multiplies each axis (up**2 in all for the up
    filter, as upfirdn2d's gain)."""
    f = torch.ones([1], device=device) if f is None else f
    f = f.to(device=device, dtype=torch.float64)
    if not flip_filter:  # the kernels correlate; a true convolution reverses the taps
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 1:
        f = (f * axis_gain)[None]
        return _Terms(f.float(), f.float(), torch.ones([1], dtype=torch.int32, device=device))
    basis = _mirror_basis(f.shape[1], device)
    fy = (basis / basis.abs().sum(dim=1, keepdim=True)) @ (f * axis_gain ** 2).T  # [R, taps_y]: the halves
    return _Terms(fy.float(), basis.float(), (fy != 0).any(dim=1).to(torch.int32))


@dataclass(frozen=True)
class _Tiles:
    """The tiling of one axis for one pass: `step` samples computed per program; blocks (powers of two >= 16)
    for the computed samples (`own`), the intermediate samples (`mid`), and the other tensor read (`other`: the
    input in the forward, dY in the backward); `halo`: the input block the backward recomputes U from."""

    step: int
    own: int
    mid: int
    other: int
    halo: int = 0


def _block(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


def _axis_tiles(mid: int, up: int, down: int, taps_u: int, taps_d: int, backward: bool) -> Optional[_Tiles]:
    halo = _block((mid + taps_u - 2) // up + 1)  # inputs under the up filter of `mid` intermediate samples
    if not backward:
        step = (mid - taps_d) // down + 1  # outputs whose down filter stays inside the block
        return _Tiles(step, _block(step), mid, halo) if step >= 1 else None
    step = (mid - taps_u) // up + 1  # inputs whose up filter stays inside the block
    return _Tiles(step, _block(step), mid, _block((mid + taps_d - 2) // down + 1), halo) if step >= 1 else None


def _tiles(up: int, down: int, taps: Tuple[int, int, int, int], terms: Tuple[int, int],
           backward: bool) -> Tuple[_Tiles, _Tiles]:
    """(y, x) tilings with the fewest multiply-adds per computed sample (tl.dot's work, padding included).

    taps: (up y, up x, down y, down x) filter lengths; terms: separable terms of (fu, fd)."""
    tu_y, tu_x, td_y, td_x = taps
    ru, rd = terms
    best, best_cost = None, math.inf
    for mid in sorted(set(_MID_BLOCKS) | {_block(2 * max(taps))}):
        y = _axis_tiles(mid, up, down, tu_y, td_y, backward)
        x = _axis_tiles(mid, up, down, tu_x, td_x, backward)
        if y is None or x is None:
            continue
        if not backward:
            macs = ru * (y.mid * y.other * (x.other + x.mid)) + rd * (y.own * y.mid * (x.mid + x.own))
        else:
            macs = (ru * y.mid * y.halo * (x.halo + x.mid) + rd * y.mid * y.other * (x.other + x.mid)
                    + ru * y.own * y.mid * (x.mid + x.own))
        cost = macs / (y.step * x.step)
        if cost < best_cost:
            best, best_cost = (y, x), cost
    return best


@dataclass(frozen=True)
class _Plan:
    """Everything a launch needs besides the tensors."""

    up: int
    down: int
    padding: Tuple[int, int]  # (y0, x0): the rest follows from the output size
    out_size: Tuple[int, int]
    gain: float
    slope: float
    clamp: Optional[float]
    fu: _Terms
    fd: _Terms

    @property
    def taps(self) -> Tuple[int, int, int, int]:
        return self.fu.fy.shape[1], self.fu.fx.shape[1], self.fd.fy.shape[1], self.fd.fx.shape[1]

    @property
    def shift(self) -> int:  # makes every numerator _ceil_div sees non-negative
        return max(abs(p) for p in self.padding) + sum(self.taps) + 2

    def launch(self, x: torch.Tensor, b: Optional[torch.Tensor], backward: bool) -> Tuple[Tuple[_Tiles, _Tiles], dict]:
        """The (y, x) tiles of a pass and its kernel's compile-time constants (num_warps included)."""
        ty, tx = _tiles(self.up, self.down, self.taps, (self.fu.count, self.fd.count), backward)
        if backward:
            blocks = dict(BK_Y=ty.own, BK_X=tx.own, BO_Y=ty.other, BO_X=tx.other, BI_Y=ty.halo, BI_X=tx.halo)
        else:
            blocks = dict(BO_Y=ty.own, BO_X=tx.own, BI_Y=ty.other, BI_X=tx.other)
        return (ty, tx), dict(UP=self.up, DOWN=self.down, TUY=self.taps[0], TUX=self.taps[1], TDY=self.taps[2],
                              TDX=self.taps[3], RU=self.fu.count, RD=self.fd.count, STEP_Y=ty.step, STEP_X=tx.step,
                              BA_Y=ty.mid, BA_X=tx.mid, HAS_BIAS=b is not None, HAS_CLAMP=self.clamp is not None,
                              DOT=_DOT_DTYPES[x.dtype], **blocks,
                              num_warps=8 if max(ty.mid, tx.mid) >= 64 else 4)  # sm_90: 64x64 tiles spill at 4

    def scalars(self) -> tuple:
        return (self.padding[0], self.padding[1], self.shift)


def _plan(x: torch.Tensor, fu, fd, up: int, down: int, padding: List[int], gain: float, slope: float,
          clamp: Optional[float], flip_filter: bool) -> _Plan:
    px0, px1, py0, py1 = padding
    fu_w, fu_h = filter_size(fu)
    fd_w, fd_h = filter_size(fd)
    out = (output_size(x.shape[2], up, down, py0, py1, fu_h, fd_h),
           output_size(x.shape[3], up, down, px0, px1, fu_w, fd_w))
    if min(out) < 1:
        raise ValueError(f"filtered_lrelu: input {list(x.shape[2:])} with padding {[px0, px1, py0, py1]} and "
                         f"filters {fu_h}x{fu_w}, {fd_h}x{fd_w} leaves no output; pad more")
    return _Plan(up, down, (py0, px0), out, float(gain), float(slope), None if clamp is None else float(clamp),
                 _terms(fu, up, flip_filter, x.device), _terms(fd, 1, flip_filter, x.device))


def _grid(tiles: Tuple[_Tiles, _Tiles], size: Tuple[int, int], n: int, c: int) -> Tuple[Tuple[int, int, int], int]:
    tiles_x = triton.cdiv(size[1], tiles[1].step)
    return (triton.cdiv(size[0], tiles[0].step) * tiles_x, c, n), tiles_x


def _forward(x: torch.Tensor, b: Optional[torch.Tensor], p: _Plan) -> torch.Tensor:
    n, c, h, w = x.shape
    y = torch.empty([n, c, *p.out_size], dtype=x.dtype, device=x.device)
    tiles, constants = p.launch(x, b, backward=False)
    grid, tiles_x = _grid(tiles, p.out_size, n, c)
    if y.numel() == 0:
        return y
    _forward_kernel[grid](x, x if b is None else b, y, p.fu.fy, p.fu.fx, p.fu.live, p.fd.fy, p.fd.fx, p.fd.live,
                          c, h, w, *p.out_size, *x.stride(), *y.stride(), *p.scalars(), tiles_x,
                          p.gain, p.slope, p.clamp or 0.0, **constants)
    return y


def _backward(x: torch.Tensor, b: Optional[torch.Tensor], dy: torch.Tensor, p: _Plan) -> torch.Tensor:
    n, c, h, w = x.shape
    dx = torch.empty_like(x, memory_format=torch.contiguous_format)
    tiles, constants = p.launch(x, b, backward=True)
    grid, tiles_x = _grid(tiles, (h, w), n, c)
    if dx.numel() == 0:
        return dx
    _backward_kernel[grid](x, x if b is None else b, dy, dx, p.fu.fy, p.fu.fx, p.fu.live, p.fd.fy, p.fd.fx,
                           p.fd.live, c, h, w, *p.out_size, *x.stride(), *dy.stride(), *dx.stride(), *p.scalars(),
                           tiles_x, p.gain, p.slope, p.clamp or 0.0, **constants)
    return dx


class _FilteredLReluTriton(torch.autograd.Function):
    """The op with its Triton backward; x and b saved, the upsampled tensor recomputed per tile."""

    @staticmethod
    def forward(ctx, x, b, plan: _Plan):
        ctx.save_for_backward(x, b)
        ctx.plan = plan
        return _forward(x, b, plan)

    @staticmethod
    def backward(ctx, dy):
        x, b = ctx.saved_tensors
        dx = _backward(x, b, dy, ctx.plan)
        db = dx.sum(dim=[0, 2, 3], dtype=torch.float32).to(b.dtype) if ctx.needs_input_grad[1] else None
        if torch.is_grad_enabled():  # create_graph=True: these gradients must not be differentiated again
            dx, db = _FirstOrderOnly.apply(dx, db, x, b, dy)
        return (dx if ctx.needs_input_grad[0] else None), db, None


class _FirstOrderOnly(torch.autograd.Function):
    """Passes the gradients through; differentiating them raises (this kernel has no double backward)."""

    @staticmethod
    def forward(ctx, dx, db, *inputs):
        return dx.view_as(dx), (None if db is None else db.view_as(db))

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("filtered_lrelu impl='triton' computes first-order gradients only (StyleGAN3 trains G "
                           "without path length regularisation); use impl='fast' where a loss differentiates "
                           "its gradients again")


def filtered_lrelu_triton(x: torch.Tensor, fu: Optional[torch.Tensor] = None, fd: Optional[torch.Tensor] = None,
                          b: Optional[torch.Tensor] = None, up: int = 1, down: int = 1, padding: IntOrPair = 0,
                          gain: float = math.sqrt(2), slope: float = 0.2, clamp: Optional[float] = None,
                          flip_filter: bool = False) -> torch.Tensor:
    """The op in one Triton kernel per pass (CUDA tensors; CPU tensors in Triton's interpreter): float32,
    float16 or bfloat16 input, first-order gradients for x and b. Arguments as filtered_lrelu."""
    padding = _check(x, fu, fd, b, up, down, padding, gain, slope, clamp)
    check_device("filtered_lrelu", _forward_kernel, x)
    if x.dtype not in DTYPES:
        raise ValueError(f"filtered_lrelu impl='triton' takes float32, float16 or bfloat16 input, got {x.dtype}; "
                         f"use impl='fast'")
    grad = torch.is_grad_enabled()
    if grad and any(f is not None and f.requires_grad for f in (fu, fd)):
        raise ValueError("filtered_lrelu impl='triton' computes no gradients for the filters fu and fd; pass "
                         "them without requires_grad, or use impl='fast'")
    plan = _plan(x, fu, fd, up, down, padding, gain, slope, clamp, flip_filter)
    if grad and (x.requires_grad or (b is not None and b.requires_grad)):
        return _FilteredLReluTriton.apply(x, b, plan)
    return _forward(x, b, plan)
