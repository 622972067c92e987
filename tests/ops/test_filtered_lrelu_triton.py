"""filtered_lrelu impl='triton' (ops/filtered_lrelu_triton.py) equals the reference, forward and backward.

On a GPU the kernels run compiled, else in Triton's interpreter on CPU tensors (tests/triton_helpers.py), at small
shapes: every layer kind of StyleGAN3-T and -R with their designed filters (up 2 and 4,
down 2, padding and cropping, the critically sampled layers, the radial 12x12 down filter of R, ToRGB), other
factors, flips, 2-D up filters, odd sizes and several tiles per axis; float32, float16 and bfloat16; strided and
channels-last inputs. A subprocess imports the kernels without the interpreter and compiles them for sm_90, which
checks what the interpreter cannot: that they lower to GPU code.
"""
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stylegan.networks.alias_free_filters import lowpass_filter
from stylegan.ops import filtered_lrelu_triton as flt
from stylegan.ops.filtered_lrelu import filtered_lrelu
from triton_helpers import KERNEL_DEVICE

pytestmark = pytest.mark.triton

# Filters designed as StyleGAN3's layers design them (alias_free_filters.lowpass_filter, cutoffs of a 256x256 G's
# middle layers): up filters at the raised rate for up 2 and up 4, the separable and the radial down filter.
FU_2 = lowpass_filter(12, cutoff=4.0, width=8.0, fs=64)
FU_4 = lowpass_filter(24, cutoff=4.0, width=8.0, fs=128)
FD_SEPARABLE = lowpass_filter(12, cutoff=4.76, width=2 * 11.24, fs=64)
FD_RADIAL = lowpass_filter(12, cutoff=4.76, width=2 * 11.24, fs=64, radial=True)
LAYER = dict(gain=math.sqrt(2), slope=0.2)
TORGB = dict(gain=1.0, slope=1.0)

# name: (input [H, W], fu, fd, up, down, padding [x0, x1, y0, y1], flip_filter, clamp, gain and slope)
# Sizes: at least two tiles per axis in both passes (test_cases_span_several_tiles).
CASES = {
    "T_up2": ([15, 14], FU_2, FD_SEPARABLE, 2, 2, [9, 8, 9, 8], False, 256.0, LAYER),
    "T_up4": ([21, 19], FU_4, FD_SEPARABLE, 4, 2, [-6, -9, -6, -9], False, 256.0, LAYER),
    "T_critical_clamped": ([34, 35], FU_2, FD_SEPARABLE, 2, 2, [-11, -12, -11, -12], False, 0.5, LAYER),
    "torgb": ([21, 18], None, None, 1, 1, [0, 0, 0, 0], False, 0.5, TORGB),
    "R_up2_radial": ([13, 15], FU_2, FD_RADIAL, 2, 2, [11, 10, 11, 10], False, 256.0, LAYER),
    "R_up4_radial": ([17, 19], FU_4, FD_RADIAL, 4, 2, [-2, -5, -2, -5], False, 256.0, LAYER),
    "R_critical": ([33, 34], FU_2, FD_SEPARABLE, 2, 2, [-9, -10, -9, -10], False, 256.0, LAYER),
    "up3_down2_flip": ([13, 11], "randn:5", "randn:4", 3, 2, [12, -2, 0, 3], True, None, LAYER),
    "up2_only": ([15, 14], "randn:7", None, 2, 1, [3, 1, 2, 5], True, None, LAYER),
    "down3_full_filter": ([31, 35], None, "randn:5x5", 1, 3, [1, 2, 0, 4], False, None, LAYER),
    "full_up_filter": ([12, 11], "randn:5x3", "randn:4", 2, 2, [2, 3, 1, 0], False, 1.0, LAYER),
}


def _filter(spec, generator):
    """A filter of the table on the kernels' device: a tensor, None, or 'randn:T' / 'randn:HxW' (random taps, not
    symmetric)."""
    if isinstance(spec, str):
        spec = torch.randn([int(s) for s in spec.split(":")[1].split("x")], generator=generator)
    return None if spec is None else spec.to(KERNEL_DEVICE)


def _case(name, dtype=torch.float32, seed=0):
    size, fu, fd, up, down, padding, flip, clamp, act = CASES[name]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn([2, 2, *size], generator=g).to(KERNEL_DEVICE, dtype)
    b = torch.randn([2], generator=g).to(KERNEL_DEVICE, dtype)
    kwargs = dict(up=up, down=down, padding=padding, flip_filter=flip, clamp=clamp, **act)
    return x, b, _filter(fu, g), _filter(fd, g), kwargs


def _run(impl, x, b, fu, fd, kwargs, dy_seed=7):
    """(y, dL/dx, dL/db) for L = sum(y * dy), dy random."""
    x, b = x.clone().requires_grad_(True), b.clone().requires_grad_(True)
    y = filtered_lrelu(x, fu, fd, b, impl=impl, **kwargs)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(dy_seed)).to(y.device, y.dtype)
    return (y.detach(), *torch.autograd.grad((y * dy).sum(), [x, b]))


def _assert_close(ours, ref, rel):
    """Equal to `rel` times the reference's largest magnitude (float32 rounding of different summation orders)."""
    torch.testing.assert_close(ours.float(), ref.float(), rtol=0, atol=rel * ref.abs().max().item())


def test_cases_span_several_tiles():
    """Each case of the table puts tile boundaries inside its output (forward) and its input (backward)."""
    for name in CASES:
        x, b, fu, fd, kwargs = _case(name)
        pad = kwargs["padding"]
        plan = flt._plan(x, fu, fd, kwargs["up"], kwargs["down"], pad, 1.0, 0.2, None, kwargs["flip_filter"])
        for backward, size in ((False, plan.out_size), (True, x.shape[2:])):
            tiles, _ = plan.launch(x, b, backward)
            assert all(n > t.step for n, t in zip(size, tiles)), (name, backward, size, tiles)


@pytest.mark.parametrize("name", list(CASES))
def test_float32_values_and_gradients_match_the_reference(name):
    x, b, fu, fd, kwargs = _case(name)
    ref, ours = _run("reference", x, b, fu, fd, kwargs), _run("triton", x, b, fu, fd, kwargs)
    assert ours[0].shape == ref[0].shape and ours[0].dtype == torch.float32
    for got, want in zip(ours, ref):
        _assert_close(got, want, 2e-6)


@pytest.mark.parametrize("name,dtype", [("T_up4", torch.float16), ("R_up2_radial", torch.float16),
                                        ("T_up2", torch.bfloat16)])
def test_low_precision_is_as_close_as_the_references_own(name, dtype):
    """float16 / bfloat16 in, the same type out; the error against float32 arithmetic on the same (rounded) inputs
    is within that of the reference run in the low-precision type, values and gradients."""
    x, b, fu, fd, kwargs = _case(name, dtype)
    exact = _run("reference", x.float(), b.float(), fu, fd, kwargs)
    low_ref = _run("reference", x, b, fu, fd, kwargs)
    ours = _run("triton", x, b, fu, fd, kwargs)
    assert all(t.dtype == dtype for t in ours)
    for got, ref_low, want in zip(ours, low_ref, exact):
        err, ref_err = (got.float() - want).abs().max(), (ref_low.float() - want).abs().max()
        assert err <= 1.5 * ref_err + 1e-3 * want.abs().max(), (err, ref_err)


def test_strided_and_channels_last_inputs_and_a_broadcast_gradient():
    """A strided view and a channels-last tensor read in place; y.sum()'s gradient (stride 0) read as it comes;
    no bias, and the inference path (no autograd) gives the same values."""
    _, _, fu, fd, kwargs = _case("R_up2_radial")
    g = torch.Generator().manual_seed(1)
    strided = torch.randn([2, 2, 27, 31], generator=g).to(KERNEL_DEVICE)[:, :, ::2, 1::2]
    channels_last = torch.randn([2, 2, 14, 15], generator=g).to(KERNEL_DEVICE, memory_format=torch.channels_last)
    for x in (strided, channels_last):
        grads = []
        for impl in ("reference", "triton"):
            xi = x.detach().requires_grad_(True)  # the same strides
            y = filtered_lrelu(xi, fu, fd, None, impl=impl, **kwargs)
            grads.append((y.detach(), torch.autograd.grad(y.sum(), xi)[0]))
        with torch.no_grad():
            _assert_close(filtered_lrelu(x, fu, fd, None, impl="triton", **kwargs), grads[0][0], 2e-6)
        for got, want in zip(grads[1], grads[0]):
            _assert_close(got, want, 2e-6)


def test_bias_gradient_alone_and_first_order_gradients_under_create_graph():
    """Only b requires grad: its gradient, and none for x. With create_graph=True the first-order gradients are
    the same; differentiating them again raises, naming the implementation that can."""
    x, b, fu, fd, kwargs = _case("T_up2")
    want = _run("reference", x, b, fu, fd, kwargs)[2]
    bi = b.clone().requires_grad_(True)
    y = filtered_lrelu(x, fu, fd, bi, impl="triton", **kwargs)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(7)).to(KERNEL_DEVICE)
    _assert_close(torch.autograd.grad((y * dy).sum(), bi)[0], want, 2e-6)

    xi = x.clone().requires_grad_(True)
    y = filtered_lrelu(xi, fu, fd, bi, impl="triton", **kwargs)
    gx, gb = torch.autograd.grad((y * dy).sum(), [xi, bi], create_graph=True)
    _assert_close(gb, want, 2e-6)
    assert gx.requires_grad
    with pytest.raises(RuntimeError, match="first-order gradients only.*impl='fast'"):
        gx.square().sum().backward()


def test_filters_as_separable_terms():
    """R's radial filter is mirror-symmetric to the bit: half of its terms are zero (skipped); every filter is
    rebuilt exactly (the radial one) or to float32 rounding (random taps, flipped or not, with a gain)."""
    cpu = torch.device("cpu")
    radial = flt._terms(FD_RADIAL, 1.0, False, cpu)
    assert radial.count == 12 and radial.live.tolist() == [1, 0] * 6
    assert torch.equal(torch.einsum("ry,rx->yx", radial.fy, radial.fx), FD_RADIAL.flip([0, 1]))
    f = torch.randn([5, 3], generator=torch.Generator().manual_seed(2))
    for flip in (False, True):
        terms = flt._terms(f, 2.0, flip, cpu)
        want = (f if flip else f.flip([0, 1])) * 4.0
        assert terms.live.all() and terms.count == 3
        torch.testing.assert_close(torch.einsum("ry,rx->yx", terms.fy, terms.fx), want, rtol=0, atol=1e-6)
    separable = flt._terms(FU_2, 2.0, False, cpu)
    assert separable.count == 1 and torch.equal(separable.fy[0], FU_2.flip(0) * 2)


def test_bad_input_is_refused_in_one_line():
    x, b, fu, fd, kwargs = _case("T_up2")
    with pytest.raises(ValueError, match="float32, float16 or bfloat16.*impl='fast'"):
        filtered_lrelu(x.double(), fu, fd, b.double(), impl="triton", **kwargs)
    with pytest.raises(ValueError, match="no gradients for the filters"):
        filtered_lrelu(x, fu.clone().requires_grad_(True), fd, b, impl="triton", **kwargs)
    with pytest.raises(ValueError, match="leaves no output"):
        filtered_lrelu(x[:, :, :4, :4], fu, fd, b, impl="triton", **{**kwargs, "padding": [-9, -9, -9, -9]})


GPU_CHECK = r"""
import torch, triton
from triton.backends.compiler import GPUTarget
from stylegan.ops import filtered_lrelu_triton as flt
from stylegan.ops.triton_support import TritonUnavailable

try:  # compiled kernels, CPU tensors: refused in one line
    flt.filtered_lrelu_triton(torch.zeros([1, 1, 8, 8]))
except TritonUnavailable as error:
    print("refused:", error)

# Each kernel lowered to sm_90 machine code (ptxas ships with Triton; no GPU or driver needed): T's up-4 layer in
# float32 and R's radial layer in float16, forward and backward.
for dtype, up, fu, fd in ((torch.float32, 4, torch.ones(24), torch.ones(12)),
                          (torch.float16, 2, torch.ones(12), torch.ones(12, 12))):
    x = torch.zeros([1, 1, 20, 20], dtype=dtype)
    plan = flt._plan(x, fu, fd, up, 2, [0, 0, 0, 0], 1.0, 0.2, 256.0, False)
    ptr = "*fp16" if dtype == torch.float16 else "*fp32"
    for kernel, backward in ((flt._forward_kernel, False), (flt._backward_kernel, True)):
        _, consts = plan.launch(x, torch.zeros(1), backward)
        warps = consts.pop("num_warps")
        signature = {}
        for name in kernel.arg_names:
            if name in consts:
                signature[name] = "constexpr"
            elif name.endswith("_ptr"):
                signature[name] = ptr
            elif name in ("fuy", "fux", "fdy", "fdx"):
                signature[name] = "*fp32"
            elif name in ("ulive", "dlive"):
                signature[name] = "*i32"
            else:
                signature[name] = "fp32" if name in ("gain", "slope", "clamp") else "i32"
        source = triton.compiler.ASTSource(fn=kernel, signature=signature, constexprs=consts)
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps))
        print("compiled", kernel.__name__, dtype, len(compiled.asm["cubin"]) > 0)
"""


def test_kernels_compile_for_the_gpu_and_refuse_cpu_tensors_outside_the_interpreter(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # a fresh cache: the compilation really runs
    src = Path(__file__).resolve().parents[2] / "src"
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", GPU_CHECK], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("refused: filtered_lrelu: Triton kernels run on CUDA tensors"), lines
    assert lines[1:] == [f"compiled {k} {d} True" for d in ("torch.float32", "torch.float16")
                         for k in ("_forward_kernel", "_backward_kernel")]
