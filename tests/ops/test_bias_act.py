import math

import pytest
import torch

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
