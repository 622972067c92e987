"""bias_act's Triton kernels ('triton') against the reference and the 'fast' path they share their autograd with:
values, gradients, double gradients (R1 and path length differentiate twice), float16/bf16, layouts and odd sizes.
Without a GPU the kernels run in Triton's interpreter (tests/triton_helpers.py)."""
import math

import pytest
import torch

from stylegan.ops.bias_act import bias_act
from triton_helpers import KERNEL_DEVICE

pytestmark = pytest.mark.triton

CASES = [  # act, gain, clamp, dim, with bias: every way the layers call it, and the corners of the gradient rules
    ("lrelu", None, None, 1, True), ("lrelu", 1.3, 0.7, 1, True), ("relu", None, 0.5, 1, False),
    ("linear", None, None, 1, True), ("linear", 0.5, 0.3, 0, True), ("lrelu", 0.8, None, 2, False),
    ("linear", 1.0, 0.4, 1, True),
]


def _value_and_grads(impl, x, b, **kwargs):
    """y, the first gradients of sum(y * r) and the gradients of their squared norm (as R1 differentiates twice);
    None where autograd gives none."""
    inputs = (x,) if b is None else (x, b)
    y = bias_act(x, b, impl=impl, **kwargs)
    weight = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype).to(y.device)
    first = torch.autograd.grad((y * weight).sum(), inputs, create_graph=True)
    penalty = sum(g.square().sum() for g in first)
    second = torch.autograd.grad(penalty, inputs, allow_unused=True) if penalty.requires_grad else (None,) * 2
    return (y, *first, *second[:len(inputs)])


@pytest.mark.parametrize("act,gain,clamp,dim,with_bias", CASES)
def test_values_gradients_and_double_gradients_match(act, gain, clamp, dim, with_bias):
    """float64: the reference's values and gradients, and the 'fast' path's to the last bit, with the same gradients
    left out (None) in the double backward."""
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64, device=KERNEL_DEVICE, requires_grad=True)
    b = torch.randn(x.shape[dim], dtype=torch.float64, device=KERNEL_DEVICE, requires_grad=True) if with_bias \
        else None
    kwargs = dict(dim=dim, act=act, gain=gain, clamp=clamp)
    triton, fast, reference = (_value_and_grads(impl, x, b, **kwargs) for impl in ("triton", "fast", "reference"))
    assert [t is None for t in triton] == [t is None for t in fast]
    for ours, theirs, ref in zip(triton, fast, reference):
        if ours is None:
            continue
        torch.testing.assert_close(ours, theirs, rtol=1e-7, atol=1e-7)  # scalars pass as float32 to the kernel
        if ref is not None:
            torch.testing.assert_close(ours, ref, rtol=1e-7, atol=1e-7)


def test_gradcheck_and_gradgradcheck():
    x = torch.randn(2, 3, 2, 3, dtype=torch.float64, device=KERNEL_DEVICE, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, device=KERNEL_DEVICE, requires_grad=True)
    fn = lambda x, b: bias_act(x, b, act="lrelu", gain=1.3, clamp=1.0, impl="triton")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


def test_float32_equals_the_fast_path_bit_for_bit():
    """One rounding per step in both, in the same order: a 512-channel layer's values and gradients agree exactly
    (more elements than one program's block: several programs, a partial last block)."""
    torch.manual_seed(0)
    x = (torch.randn(2, 512, 3, 5, device=KERNEL_DEVICE) * 300).requires_grad_(True)
    b = torch.randn(512, device=KERNEL_DEVICE, requires_grad=True)
    kwargs = dict(act="lrelu", gain=math.sqrt(2), clamp=256.0)
    for ours, theirs in zip(_value_and_grads("triton", x, b, **kwargs), _value_and_grads("fast", x, b, **kwargs)):
        assert (ours is None and theirs is None) or torch.equal(ours, theirs)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_rounds_once(dtype):
    """float16 (NVIDIA's mixed precision) and bf16: the float32 values rounded once (the 'fast' path rounds at every
    step; Triton's interpreter truncates to bf16 where the GPU rounds to nearest: one ulp there); the gradient reads
    the clamp as the 'fast' path does, 256 * sqrt(0.5) not being a float16 number."""
    torch.manual_seed(0)
    x32 = torch.randn(2, 4, 5, 7, device=KERNEL_DEVICE) * 200
    b32 = torch.randn(4, device=KERNEL_DEVICE)
    clamp = 256 * math.sqrt(0.5)
    x, b = x32.to(dtype).requires_grad_(True), b32.to(dtype).requires_grad_(True)
    y = bias_act(x, b, act="lrelu", clamp=clamp, impl="triton")
    exact = bias_act(x.detach().float(), b.detach().float(), act="lrelu", clamp=clamp, impl="reference")
    assert y.dtype == dtype
    if dtype == torch.bfloat16 and KERNEL_DEVICE.type == "cpu":
        torch.testing.assert_close(y.float(), exact, rtol=2 ** -7, atol=0)  # within one bf16 ulp
    else:
        assert torch.equal(y, exact.to(dtype))
    grads = {impl: torch.autograd.grad(bias_act(x, b, act="lrelu", clamp=clamp, impl=impl).sum(), [x, b])
             for impl in ("triton", "fast")}
    ulp = 2 ** -10 if dtype == torch.float16 else 2 ** -7  # relative spacing: one rounding apart at most
    torch.testing.assert_close(grads["triton"][0].float(), grads["fast"][0].float(), rtol=ulp, atol=0)
    torch.testing.assert_close(grads["triton"][1].float(), grads["fast"][1].float(), rtol=2e-2, atol=0)


def test_layouts_and_strides():
    """Channels-last and permuted inputs are read in place and give outputs in their layout; strided views (a
    slice, an expanded tensor) are copied once; a bias along dim 0 of a 2-D input (the mapping network's layers)."""
    torch.manual_seed(0)
    base = torch.randn(3, 6, 5, 7, device=KERNEL_DEVICE)
    b = torch.randn(6, device=KERNEL_DEVICE)
    views = {"channels_last": base.contiguous(memory_format=torch.channels_last),
             "permuted": base.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2),
             "sliced": torch.randn(3, 6, 5, 14, device=KERNEL_DEVICE)[..., ::2],
             "expanded": torch.randn(1, 6, 5, 7, device=KERNEL_DEVICE).expand(3, 6, 5, 7)}
    for name, x in views.items():
        y = bias_act(x, b, act="lrelu", clamp=1.5, impl="triton")
        torch.testing.assert_close(y, bias_act(x, b, act="lrelu", clamp=1.5, impl="reference"), msg=name)
        if name in ("channels_last", "permuted"):
            assert y.stride() == x.stride(), name
    x2, b2 = torch.randn(5, 3, device=KERNEL_DEVICE), torch.randn(5, device=KERNEL_DEVICE)
    torch.testing.assert_close(bias_act(x2, b2, dim=0, act="relu", impl="triton"),
                               bias_act(x2, b2, dim=0, act="relu", impl="reference"))


def test_gradient_in_another_layout_than_the_output():
    """The upstream gradient may come in another layout than y (NCHW into a channels-last layer): it is brought to
    y's layout before the kernel walks both in memory order."""
    x = torch.randn(2, 3, 4, 5, device=KERNEL_DEVICE).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    dy = torch.randn(2, 3, 4, 5, device=KERNEL_DEVICE)
    grads = [torch.autograd.grad(bias_act(x, None, act="lrelu", clamp=0.5, impl=impl), x, dy)[0]
             for impl in ("triton", "reference")]
    torch.testing.assert_close(*grads)


def test_other_activations_and_empty_tensors_take_the_reference():
    x = torch.randn(2, 3, 4, device=KERNEL_DEVICE)
    for act in ("tanh", "swish"):
        torch.testing.assert_close(bias_act(x, act=act, impl="triton"), bias_act(x, act=act, impl="reference"))
    empty = torch.zeros(0, 3, 4, device=KERNEL_DEVICE)
    assert bias_act(empty, torch.ones(3, device=KERNEL_DEVICE), act="lrelu", impl="triton").shape == (0, 3, 4)
