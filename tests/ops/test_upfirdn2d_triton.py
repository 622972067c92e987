"""upfirdn2d's Triton kernel ('triton') against the reference: values, gradients and double gradients of every
resampling the networks run (the synthesis upsample after the transposed convolution, the skip image's upsample,
the discriminator's downsample, the filter before a strided convolution), 1-D separable and 2-D filters, float16,
layouts and strides; conv2d_resample with its FIR passes in the kernel; and whole skip networks on the TRITON path.
Without a GPU the kernels run in Triton's interpreter (tests/triton_helpers.py)."""
import pytest
import torch

from stylegan.ops.conv2d_resample import conv2d_resample
from stylegan.ops.upfirdn2d import IMPLS, downsample2d, setup_filter, upfirdn2d, upsample2d
from triton_helpers import KERNEL_DEVICE

pytestmark = pytest.mark.triton
upfirdn2d_triton = IMPLS["triton"]

FILTERS = {
    "binomial": lambda: setup_filter([1, 3, 3, 1]),  # every StyleGAN2 layer's (2-D, 4x4)
    "asymmetric": lambda: setup_filter([1, 2, 3, 4]),
    "separable4": lambda: setup_filter([1, 3, 3, 1], separable=True),
    "separable8": lambda: setup_filter([1, 2, 3, 4, 5, 6, 7, 8]),  # 1-D by default from 8 taps
    "rectangular": lambda: torch.tensor([[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]]),
}
# (up, down, padding, flip_filter, gain)
SETTINGS = {
    "transposed_conv_follow_up": (1, 1, [1, 1, 1, 1], False, 4.0),  # conv2d_resample, up=2 with a 3x3 kernel
    "skip_image_upsample": (2, 1, [2, 1, 2, 1], False, 4.0),  # upsample2d, the synthesis skip images
    "discriminator_downsample": (1, 2, [1, 1, 1, 1], False, 1.0),  # downsample2d, D's skip images, 1x1 resnet skip
    "before_strided_conv": (1, 1, [2, 2, 2, 2], False, 1.0),  # conv2d_resample, down=2 with a 3x3 kernel
    "up_and_down": (2, 2, [1, 2, 0, 1], True, 2.0),
    "cropping": (1, 1, [-1, 0, 1, -2], False, 1.0),
    "per_axis": ((2, 1), (1, 2), [3, 1, 0, 2], False, 1.5),
    "up_4": (4, 1, [3, 2, 1, 4], True, 16.0),
}


def _value_and_grads(fn, x, *args):
    """y, the input gradient of a nonlinear function of y, and the gradients of its squared norm by x and by the
    weights (R1: a gradient differentiated again)."""
    y = fn(x, *args)
    w = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(2)).to(y.device)
    w.requires_grad_(True)
    (gx,) = torch.autograd.grad((y.tanh() * w).sum(), x, create_graph=True)
    return (y, gx, *torch.autograd.grad(gx.square().sum(), [x, w]))


@pytest.mark.parametrize("filter_name", sorted(FILTERS))
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_values_gradients_and_double_gradients_match_the_reference(filter_name, setting):
    up, down, padding, flip, gain = SETTINGS[setting]
    f = FILTERS[filter_name]().double().to(KERNEL_DEVICE)
    x = torch.randn(2, 3, 9, 11, dtype=torch.float64, device=KERNEL_DEVICE, requires_grad=True)
    ours = _value_and_grads(upfirdn2d_triton, x, f, up, down, padding, flip, gain)
    reference = _value_and_grads(upfirdn2d, x, f, up, down, padding, flip, gain)
    assert ours[0].shape == reference[0].shape
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_gradcheck_and_gradgradcheck():
    """Numerical derivatives (gradcheck's fast mode: random projections, few kernel calls in the interpreter)."""
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, device=KERNEL_DEVICE, requires_grad=True)
    f = setup_filter([1, 2, 3, 4]).double().to(KERNEL_DEVICE)
    for name in ("skip_image_upsample", "discriminator_downsample", "per_axis"):
        up, down, padding, flip, gain = SETTINGS[name]
        fn = lambda t: upfirdn2d_triton(t, f, up, down, padding, flip, gain)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x,), fast_mode=True), name
        assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True), name


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_accumulates_in_float32(dtype):
    """float16 inputs (NVIDIA's mixed precision) and bf16: float32 sums of the exact products, one rounding; the
    reference filters with taps rounded to the input's dtype."""
    torch.manual_seed(0)
    f = setup_filter([1, 3, 3, 1]).to(KERNEL_DEVICE)
    x = torch.randn(2, 4, 9, 11, device=KERNEL_DEVICE).to(dtype)
    ulp = 2 ** -10 if dtype == torch.float16 else 2 ** -7  # relative spacing of the dtype's numbers
    for up, down, padding, _, gain in (SETTINGS["skip_image_upsample"], SETTINGS["discriminator_downsample"]):
        y = upfirdn2d_triton(x, f, up, down, padding, False, gain)
        exact = upfirdn2d(x.float(), f, up, down, padding, False, gain)
        assert y.dtype == dtype
        torch.testing.assert_close(y.float(), exact, rtol=ulp, atol=1e-6)
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(upsample2d(x, f, impl="triton").square().sum(), x)
    (g_exact,) = torch.autograd.grad(upsample2d(x.float(), f).square().sum(), x)
    assert g.dtype == dtype  # y rounded, then the gradient 2 y rounded: a few ulps
    torch.testing.assert_close(g.float(), g_exact.float(), rtol=4 * ulp, atol=4 * ulp)


def test_layouts_strides_and_several_programs():
    """Channels-last input keeps its layout; a strided view is read in place; an image large enough for several
    programs (and a partial last one) matches too."""
    f = setup_filter([1, 3, 3, 1]).to(KERNEL_DEVICE)
    x = torch.randn(2, 5, 13, 17, device=KERNEL_DEVICE)
    up, down, padding, flip, gain = SETTINGS["skip_image_upsample"]
    expected = upfirdn2d(x, f, up, down, padding, flip, gain)
    channels_last = upfirdn2d_triton(x.contiguous(memory_format=torch.channels_last), f, up, down, padding, flip, gain)
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(channels_last, expected)
    wide = torch.randn(2, 5, 13, 34, device=KERNEL_DEVICE)
    torch.testing.assert_close(upfirdn2d_triton(wide[..., ::2], f, up, down, padding, flip, gain),
                               upfirdn2d(wide[..., ::2], f, up, down, padding, flip, gain))
    assert expected.numel() > 2 * 4096  # more than two programs of the interpreter's (and the GPU's) block


def test_wrappers_take_the_implementation_by_name():
    f = setup_filter([1, 3, 3, 1]).to(KERNEL_DEVICE)
    x = torch.randn(1, 3, 8, 8, device=KERNEL_DEVICE)
    torch.testing.assert_close(upsample2d(x, f, impl="triton"), upsample2d(x, f))
    torch.testing.assert_close(downsample2d(x, f, impl="triton"), downsample2d(x, f))
    with pytest.raises(ValueError, match="no implementation 'cuda'; choose one of reference, fast, triton"):
        upsample2d(x, f, impl="cuda")


# (up, down, kernel, padding, groups, flip_weight): the layers' resampling convolutions, grouped (fused modulation)
CONVS = [(2, 1, 3, 1, 1, False), (1, 2, 3, 1, 1, True), (2, 1, 1, 0, 1, True), (1, 2, 1, 0, 1, True),
         (2, 1, 3, 1, 2, False), (1, 1, 3, 1, 1, True)]


@pytest.mark.parametrize("up,down,k,padding,groups,flip_weight", CONVS)
def test_conv2d_resample_with_triton_fir_passes(up, down, k, padding, groups, flip_weight):
    torch.manual_seed(0)
    f = setup_filter([1, 3, 3, 1]).double().to(KERNEL_DEVICE)
    x = torch.randn(2, 4, 6, 7, dtype=torch.float64, device=KERNEL_DEVICE, requires_grad=True)
    w = torch.randn(6, 4 // groups, k, k, dtype=torch.float64, device=KERNEL_DEVICE)
    outs = [_value_and_grads(lambda t: conv2d_resample(t, w, f, up, down, padding, groups, flip_weight, impl=impl), x)
            for impl in ("triton", "fast")]
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_skip_networks_on_the_triton_path_match_the_fast_path():
    """A skip generator and discriminator on runtime.path.TRITON (every layer's bias_act, resampling convolution and
    skip-image resampling in the kernels) give FAST's images, scores and R1 parameter gradients."""
    import copy

    from stylegan.networks.discriminator import Discriminator
    from stylegan.networks.stylegan2 import Generator
    from stylegan.runtime.path import FAST, TRITON, apply_path, op_impls
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                  channel_base=128, channel_max=8, num_fp16_res=0, architecture="skip", conv_clamp=256)
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=128, channel_max=8, num_fp16_res=0,
                      architecture="skip", conv_clamp=256)
    z = torch.randn(2, 8)
    results = {}
    for name, path in (("triton", TRITON), ("fast", FAST)):
        G_path, D_path = (apply_path(copy.deepcopy(m), path).to(KERNEL_DEVICE) for m in (G, D))
        assert op_impls(G_path)["upfirdn2d"] == {path.ops["upfirdn2d"]} and set(op_impls(D_path)) >= {"upfirdn2d"}
        img = G_path(z.to(KERNEL_DEVICE), None, noise_mode="const")
        reals = img.detach().requires_grad_(True)
        scores = D_path(reals, None)
        (r1_grad,) = torch.autograd.grad(scores.sum(), reals, create_graph=True)
        r1_grad.square().sum().backward()
        results[name] = [img, scores] + [p.grad for p in D_path.parameters()]
    assert TRITON.ops["upfirdn2d"] == "triton" and FAST.ops["upfirdn2d"] == "reference"
    for a, b in zip(results["triton"], results["fast"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
