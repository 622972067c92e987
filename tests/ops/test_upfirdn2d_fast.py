"""upfirdn2d_fast (its own adjoint as backward) against the reference upfirdn2d: values, gradients, double grads."""
import pytest
import torch

from stylegan.ops.upfirdn2d import setup_filter, upfirdn2d
from stylegan.ops.upfirdn2d_fast import upfirdn2d_fast

FILTERS = {
    "binomial": lambda: setup_filter([1, 3, 3, 1]),
    "asymmetric": lambda: setup_filter([1, 2, 3, 4]),
    "separable8": lambda: setup_filter([1, 2, 3, 4, 5, 6, 7, 8], separable=True),
    "rectangular": lambda: torch.tensor([[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]]),
}
# (up, down, padding, flip_filter, gain): every way conv2d_resample uses it, plus odd ones (negative padding,
# different factors per axis).
SETTINGS = [
    (1, 1, [1, 2, 1, 2], False, 1.0),
    (2, 1, [2, 1, 2, 1], False, 4.0),
    (1, 2, [1, 1, 1, 1], True, 1.0),
    (2, 2, [1, 2, 0, 1], True, 2.0),
    (1, 1, [-1, 0, 1, -2], False, 1.0),
    ((2, 1), (1, 2), [3, 1, 0, 2], False, 1.5),
]


@pytest.mark.parametrize("name", sorted(FILTERS))
@pytest.mark.parametrize("setting", range(len(SETTINGS)))
def test_values_and_gradients_match_the_reference(name, setting):
    up, down, padding, flip, gain = SETTINGS[setting]
    f = FILTERS[name]().double()
    x = torch.randn(2, 3, 11, 13, dtype=torch.float64, requires_grad=True)
    a = upfirdn2d(x, f, up, down, padding, flip, gain)
    b = upfirdn2d_fast(x, f, up, down, padding, flip, gain)
    assert a.shape == b.shape
    torch.testing.assert_close(a, b)
    w = torch.randn_like(a, requires_grad=True)
    grads = []
    for y in (a, b):  # R1-like: the squared input gradient of a nonlinear function, differentiated again
        (gx,) = torch.autograd.grad((y.tanh() * w).sum(), x, create_graph=True)
        grads.append((gx, *torch.autograd.grad(gx.square().sum(), [x, w])))
    for ga, gb in zip(*grads):
        torch.testing.assert_close(ga, gb)

def test_gradcheck_and_gradgradcheck():
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 2, 3, 4]).double()
    for up, down, padding, flip, gain in (SETTINGS[1], SETTINGS[3], SETTINGS[5]):
        fn = lambda t: upfirdn2d_fast(t, f, up, down, padding, flip, gain)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))


def test_avoids_the_grouped_convolution_double_backward():
    # PyTorch differentiates a depthwise convolution twice with one convolution per channel; the adjoint op does not.
    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(4, 16, 8, 8, requires_grad=True)
    counts = {}
    for fn in (upfirdn2d, upfirdn2d_fast):
        y = fn(x, f, down=2, padding=1)
        (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        with torch.profiler.profile() as prof:
            g.square().sum().backward()
        counts[fn.__name__] = sum(e.count for e in prof.key_averages() if e.key == "aten::convolution")
    assert counts["upfirdn2d_fast"] <= 4 < 16 <= counts["upfirdn2d"]


def test_no_grad_and_bad_rank():
    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(1, 2, 8, 8)
    for kwargs in (dict(up=2, padding=[2, 1, 2, 1]), dict(down=2, padding=1), dict(down=2, padding=[2, 1, 1, 2])):
        for memory_format in (torch.contiguous_format, torch.channels_last):  # the channels-last path's layout
            torch.testing.assert_close(upfirdn2d_fast(x.contiguous(memory_format=memory_format), f, **kwargs),
                                       upfirdn2d(x, f, **kwargs))
    with pytest.raises(ValueError, match="N, C, H, W"):
        upfirdn2d_fast(torch.zeros(3, 4, 4), f)
