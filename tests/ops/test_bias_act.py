import math

import pytest
import torch
import torch.nn.functional as F

from stylegan.ops.bias_act import ACTIVATIONS, activation_gain, bias_act


def test_lrelu_gain_and_clamp():
    x = torch.tensor([[-2.0, -0.5, 0.5, 3.0]]).reshape(1, 4, 1, 1)
    b = torch.tensor([0.0, 0.25, -0.25, 1.0])
    out = bias_act(x, b, act="lrelu", clamp=4.0).flatten()
    expected = torch.tensor([-0.4, -0.05, 0.25, 4.0]) * math.sqrt(2)
    expected = expected.clamp(-4, 4)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_default_gain_keeps_second_moment_sensible(act):
    torch.manual_seed(0)
    x = torch.randn(200_000, dtype=torch.float64)
    y = bias_act(x, act=act)
    assert torch.isfinite(y).all()
    if act in ("relu", "lrelu"):  # He initialisation: unit second moment preserved
        assert abs(y.square().mean().item() - (1.0 if act == "relu" else 1.04)) < 0.02
    assert activation_gain(act) == ACTIVATIONS[act].gain


def test_bias_along_other_dim():
    x = torch.zeros(2, 3)
    b = torch.tensor([1.0, 2.0])
    out = bias_act(x, b, dim=0)
    torch.testing.assert_close(out, torch.tensor([[1.0] * 3, [2.0] * 3]))


def test_errors():
    with pytest.raises(ValueError, match="unknown activation"):
        bias_act(torch.zeros(1, 2), act="gelu-ish")
    with pytest.raises(ValueError, match="does not match"):
        bias_act(torch.zeros(1, 2), torch.zeros(3))


def test_double_backward():
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    fn = lambda x, b: bias_act(x, b, act="lrelu", gain=1.3, clamp=1.0)
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


FUSED_CASES = [  # act, gain, clamp, dim, with bias
    ("lrelu", None, None, 1, True), ("lrelu", 1.3, 0.7, 1, True), ("relu", None, 0.5, 1, False),
    ("linear", None, None, 1, True), ("linear", 0.5, 0.3, 0, True), ("lrelu", 0.8, None, 2, False),
]


@pytest.mark.parametrize("act,gain,clamp,dim,with_bias", FUSED_CASES)
def test_fused_matches_reference_in_values_and_gradients(act, gain, clamp, dim, with_bias):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    b = torch.randn(x.shape[dim], dtype=torch.float64, requires_grad=True) if with_bias else None
    inputs = (x, b) if with_bias else (x,)
    outs = {}
    for impl in ("reference", "fast"):
        y = bias_act(x, b, dim=dim, act=act, gain=gain, clamp=clamp, impl=impl)
        weight = torch.randn_like(y, generator=torch.Generator().manual_seed(1))
        first = torch.autograd.grad((y * weight).sum(), inputs, create_graph=True)
        penalty = sum(g.square().sum() for g in first)  # differentiated twice, as R1 does
        second = torch.autograd.grad(penalty, inputs, allow_unused=True) if penalty.requires_grad else [None] * 2
        second = tuple(torch.zeros_like(t) if g is None else g for g, t in zip(second, inputs))
        outs[impl] = (y,) + first + second
    for ref, fused in zip(outs["reference"], outs["fast"]):
        torch.testing.assert_close(fused, ref)
    fn = lambda *args: bias_act(*args, dim=dim, act=act, gain=gain, clamp=clamp, impl="fast")  # noqa: E731
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


def test_fused_keeps_one_tensor_for_backward():
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    b = torch.randn(8, requires_grad=True)
    saved = {}
    for impl in ("reference", "fast"):
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
            bias_act(x, b, act="lrelu", clamp=256, impl=impl)
        saved[impl] = sum(n for n in sizes if n == x.numel())
    assert saved["fast"] == x.numel() and saved["reference"] >= 2 * x.numel()


def test_fused_leaves_its_input_alone_and_falls_back_for_other_activations():
    x = torch.randn(2, 3)
    before = x.clone()
    bias_act(x, act="lrelu", impl="fast")
    assert torch.equal(x, before)
    torch.testing.assert_close(bias_act(x, act="tanh", clamp=0.5, impl="fast"), bias_act(x, act="tanh", clamp=0.5))
    assert bias_act(x, impl="fast") is x  # nothing to do
    with pytest.raises(ValueError, match="impl"):
        bias_act(x, impl="cuda")


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("clamp", [None, 0.4])
def test_lrelu_inplace_any_slope_values_and_in_place(slope, clamp):
    """clamp(gain * leaky_relu(x, slope)) for StyleGAN3's slopes without gradients: PyTorch's ops' values, written
    over x where asked (else over a copy); asking it for gradients is an error, never a silent other path."""
    from stylegan.ops.bias_act import lrelu_inplace

    g = torch.Generator().manual_seed(int(slope * 10) + (clamp is not None))
    x = torch.randn([3, 4, 5, 6], dtype=torch.float64, generator=g)

    def reference(t):
        y = F.leaky_relu(t, slope) * 1.7
        return y if clamp is None else y.clamp(-clamp, clamp)
    with torch.no_grad():
        own = x.clone()
        out = lrelu_inplace(own, slope, 1.7, clamp)
        kept = x.clone()
        copied = lrelu_inplace(kept, slope, 1.7, clamp, inplace=False)
    assert out is own and torch.equal(kept, x) and torch.equal(out, copied)
    torch.testing.assert_close(out, reference(x))
    with pytest.raises(RuntimeError, match="computes no gradients"):
        lrelu_inplace(x.clone().requires_grad_(True), slope, 1.7, clamp)
    with pytest.raises(ValueError, match="slope >= 0 and gain > 0"):
        lrelu_inplace(x, -0.1, 1.0)
