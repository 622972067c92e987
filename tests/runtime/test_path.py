"""Execution paths (runtime.path, runtime.compile) against the reference, forward and gradients (whole G and D).

The networks compute in float32 (the mapping and synthesis cast their inputs, as the official ones do), so the
comparisons allow float32 rounding: atol scaled to each gradient's magnitude.
"""
import copy

import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.networks.discriminator import Discriminator
from stylegan.networks.stylegan2 import Generator
from stylegan.runtime.compile import compile_module
from stylegan.runtime.path import FAST, apply_path, set_channels_last


def tiny_pair(architecture):
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                  channel_base=128, channel_max=8, num_fp16_res=0, architecture=architecture)
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=128, channel_max=8, num_fp16_res=0,
                      architecture=architecture)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)  # make the noise inputs matter
    return G, D


def close(a, b, msg):
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * max(b.abs().max().item(), 1e-3), msg=msg)


def grads(G, D, z, fused, with_r1=False):
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    img = G(z, None, noise_mode="const", fused_modconv=fused)
    loss = D(img, None).sum()
    if with_r1:
        real = img.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(D(real, None).sum(), real, create_graph=True)
        loss = loss + g.square().sum()
    loss.backward()
    return img.detach(), {n: p.grad.clone() for n, p in list(G.named_parameters()) + list(D.named_parameters())
                          if p.grad is not None}


@pytest.mark.parametrize("architecture", ["skip", "resnet", "orig"])
def test_fast_resampling_matches_reference(architecture):
    G, D = tiny_pair(architecture)
    z = torch.randn(3, 8)
    img_fast, g_fast = grads(G, D, z, fused=False, with_r1=True)
    G_ref, D_ref = (apply_path(copy.deepcopy(m), FAST.replace(ops={"conv2d_resample": "reference"})) for m in (G, D))
    img_ref, g_ref = grads(G_ref, D_ref, z, fused=False, with_r1=True)
    close(img_fast, img_ref, "image")
    assert g_fast.keys() == g_ref.keys() and len(g_fast) > 20
    for name in g_fast:
        close(g_fast[name], g_ref[name], name)


@pytest.mark.parametrize("architecture", ["skip", "resnet"])
def test_fused_bias_act_matches_reference_in_images_and_gradients(architecture):
    G, D = tiny_pair(architecture)
    z = torch.randn(3, 8)
    assert {m.bias_act_impl for m in G.modules() if hasattr(m, "bias_act_impl")} == {"fast"}  # the default
    img_fused, g_fused = grads(G, D, z, fused=False, with_r1=True)
    G_ref, D_ref = (apply_path(copy.deepcopy(m), FAST.replace(ops={"bias_act": "reference"})) for m in (G, D))
    img_ref, g_ref = grads(G_ref, D_ref, z, fused=False, with_r1=True)
    close(img_fused, img_ref, "image")
    assert g_fused.keys() == g_ref.keys()
    for name in g_ref:
        close(g_fused[name], g_ref[name], name)


def test_per_sample_modulation_matches_fused_in_gradients():
    G, D = tiny_pair("skip")
    z = torch.randn(3, 8)
    img_a, g_a = grads(G, D, z, fused=True)
    img_b, g_b = grads(G, D, z, fused=False)
    close(img_a, img_b, "image")
    for name in g_a:
        close(g_a[name], g_b[name], name)


def test_bf16_autocast_stays_close_to_float32():
    G, _ = tiny_pair("skip")
    z = torch.randn(4, 8)
    with torch.no_grad():
        ref = G(z, None, noise_mode="const")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = G(z, None, noise_mode="const").float()
    mse = (ref - low).square().mean().item()
    assert 0 < mse and 10 * torch.log10(torch.tensor(4 / mse)).item() > 30  # PSNR in dB, images in [-1, 1]


def test_channels_last_blocks_match():
    # fp16_channels_last stores the top blocks channels-last (float16 itself only on CUDA); same images.
    kwargs = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                  channel_base=128, channel_max=8, num_fp16_res=3)
    torch.manual_seed(0)
    G = Generator(**kwargs).eval()
    G_cl = Generator(**kwargs, fp16_channels_last=True).eval()
    G_cl.load_state_dict(G.state_dict())
    assert G_cl.synthesis.b16.channels_last and not G_cl.synthesis.b4.channels_last
    z = torch.randn(2, 8)
    close(G_cl(z, None, noise_mode="const"), G(z, None, noise_mode="const"), "image")


def test_channels_last_matches_nchw_in_images_and_gradients():
    G, D = tiny_pair("resnet")
    z = torch.randn(3, 8)
    img_ref, g_ref = grads(G, D, z, fused=False, with_r1=True)
    G_cl, D_cl = (set_channels_last(copy.deepcopy(m), True) for m in (G, D))
    conv_weights = [p for p in list(G_cl.parameters()) + list(D_cl.parameters()) if p.ndim == 4]
    assert conv_weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in conv_weights)
    assert not any(p.is_contiguous() for p in conv_weights if p.shape[2] > 1 and p.shape[1] > 1)  # really NHWC
    img_cl, g_cl = grads(G_cl, D_cl, z, fused=False, with_r1=True)
    close(img_cl, img_ref, "image")
    assert g_cl.keys() == g_ref.keys()
    for name in g_ref:
        close(g_cl[name], g_ref[name], name)
    set_channels_last(G_cl, False)
    assert all(p.is_contiguous() for p in G_cl.parameters())


def test_channels_last_refuses_networks_without_blocks_that_support_it():
    from stylegan.networks.stylegan1 import Generator1
    G1 = Generator1(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, fmap_base=64, fmap_max=8)
    with pytest.raises(UserInputError, match="channels-last"):
        set_channels_last(G1, True)


def test_compiled_networks_match_eager_in_images_and_gradients():
    """TorchInductor (generated C++ on the CPU), G and D compiled as the training loop's main passes use them:
    the same images, logits and parameter gradients as the eager modules."""
    G, D = tiny_pair("skip")
    z = torch.randn(2, 8)
    img_ref, g_ref = grads(G, D, z, fused=False)
    G_fast, D_fast = compile_module(G), compile_module(D)
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    img = G_fast(z, None, noise_mode="const", fused_modconv=False)
    D_fast(img, None).sum().backward()
    close(img.detach(), img_ref, "image")
    assert all(p.grad is not None for p in list(G.parameters()) + list(D.parameters()))
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
        close(p.grad, g_ref[name], name)
    with pytest.raises(ValueError, match="compile mode"):
        compile_module(G, mode="fastest")


def test_float16_blocks_with_clamping(monkeypatch):
    """NVIDIA's mixed precision (the top resolutions in float16, activations clamped to +-conv_clamp) on the CPU,
    where block_dtype normally keeps float32: images and gradients as in float32 within float16 rounding, the
    top blocks really compute in float16, and the clamp holds."""
    import stylegan.networks.discriminator as discriminator
    import stylegan.networks.synthesis as synthesis
    from stylegan.networks.synthesis import SynthesisLayer

    def anywhere(use_fp16, force_fp32, device):
        return torch.float16 if use_fp16 and not force_fp32 else torch.float32
    monkeypatch.setattr(synthesis, "block_dtype", anywhere)
    monkeypatch.setattr(discriminator, "block_dtype", anywhere)

    def pair(num_fp16_res, conv_clamp):
        torch.manual_seed(0)
        kw = dict(img_resolution=16, img_channels=3, channel_base=128, channel_max=8, num_fp16_res=num_fp16_res,
                  conv_clamp=conv_clamp)
        return (Generator(z_dim=8, c_dim=0, w_dim=8, mapping_kwargs=dict(num_layers=2), **kw),
                Discriminator(c_dim=0, **kw))

    G32, D32 = pair(0, 256)
    G16, D16 = pair(2, 256)
    z = torch.randn(4, 8)
    img32, g32 = grads(G32, D32, z, fused=False)
    dtypes = []
    hook = G16.synthesis.b16.register_forward_hook(lambda m, i, out: dtypes.append(out[0].dtype))
    img16, g16 = grads(G16, D16, z, fused=False)
    hook.remove()
    assert dtypes == [torch.float16] and img16.dtype == torch.float32
    mse = (img16 - img32).square().mean().item()
    assert 0 < mse < 4e-5  # PSNR > 50 dB
    assert g16.keys() == g32.keys()
    for name in g32:  # each gradient points the same way (scalars such as noise strengths sum many cancelling terms)
        a, b = g16[name].flatten(), g32[name].flatten()
        if b.numel() >= 8:
            assert (a - b).norm() < 0.03 * b.norm(), name

    G_clamped, _ = pair(2, 0.1)
    outputs = []
    for layer in G_clamped.synthesis.modules():
        if isinstance(layer, SynthesisLayer):
            layer.register_forward_hook(lambda m, i, out: outputs.append(out))
    with torch.no_grad():
        G_clamped(z, None, noise_mode="const")
    assert outputs and all(out.abs().max() <= 0.1 for out in outputs)
    assert max(out.abs().max() for out in outputs) > 0.09  # the clamp was reached


def test_compiling_without_a_cpp_compiler_says_what_to_install(monkeypatch):
    import stylegan.runtime.compile as fast_paths
    from stylegan.runtime.compile import check_compile_support
    monkeypatch.setattr(fast_paths.shutil, "which", lambda name: None)
    with pytest.raises(UserInputError, match="apt-get install g\\+\\+"):
        check_compile_support(torch.device("cpu"))


def test_a_broken_compiler_toolchain_is_reported_in_one_line(monkeypatch):
    import stylegan.runtime.compile as fast_paths

    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("fatal error: Python.h: No such file or directory\ncompilation terminated.")
        return call
    monkeypatch.setattr(fast_paths.torch, "compile", broken)
    with pytest.raises(UserInputError, match="does not work on this machine .*Python.h.*leave compilation off"):
        fast_paths.check_compile_support(torch.device("cpu"))


@pytest.mark.parametrize("default", [True, "inference_only"])
def test_cpu_modulation_is_per_sample_by_default(modconv_choices, default):
    """On the CPU images are modulated per sample (one shared convolution) unless the caller asks otherwise,
    whatever the network's fused_modconv_default says, in eval mode too ('inference_only' used to mean grouped
    convolutions, 1.3-4x slower, for every tool rendering a preset-trained network)."""
    from stylegan.networks import synthesis

    seen = modconv_choices(synthesis)
    G, _ = tiny_pair("skip")
    for block in G.synthesis.modules():
        if hasattr(block, "fused_modconv_default"):
            block.fused_modconv_default = default
    for training in (False, True):
        G.train(training)
        for batch in (3, 1):
            seen.clear()
            with torch.no_grad():
                G(torch.randn(batch, 8), None, noise_mode="const")
            assert seen and set(seen) == {False}, (training, batch, seen)
    seen.clear()
    G.eval()(torch.randn(3, 8), None, noise_mode="const", fused_modconv=True)  # an explicit choice is kept
    assert set(seen) == {True}


def _three_generations():
    """(name, network, call) for a StyleGAN2 G and D, a StyleGAN3 G and a StyleGAN (v1) G: every op the networks
    select is called by one of them."""
    from stylegan.networks.stylegan1 import Generator1
    from stylegan.networks.stylegan3 import Generator3
    G2, D2 = tiny_pair("skip")
    G3 = Generator3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=1, channel_base=256, channel_max=8,
                    num_layers=4, mapping_kwargs=dict(num_layers=1))
    G1 = Generator1(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=1, fmap_base=32, fmap_max=8,
                    mapping_kwargs=dict(num_layers=1))
    z = torch.randn(2, 8)
    return [("G2", G2, lambda: G2(z, None)), ("D2", D2, lambda: D2(torch.randn(2, 3, 16, 16), None)),
            ("G3", G3, lambda: G3(z, None)), ("G1", G1, lambda: G1(z, None))]


@pytest.mark.parametrize("name", ["REFERENCE", "FAST", "INFERENCE"])
def test_each_path_runs_the_implementations_it_names(monkeypatch, name):
    """Every op call of every network runs the implementation the path names, and no other (the registry's entries
    are replaced by recorders: what ran is what the registry served)."""
    import stylegan.runtime.path as runtime_path
    from stylegan.ops.registry import OPS
    path = getattr(runtime_path, name)
    ran = []
    for op in runtime_path.NETWORK_OPS:
        for impl, fn in list(OPS[op].items()):
            def recorder(*args, _op=op, _impl=impl, _fn=fn, **kwargs):
                ran.append((_op, _impl))
                return _fn(*args, **kwargs)
            monkeypatch.setitem(OPS[op], impl, recorder)
    for label, module, call in _three_generations():
        apply_path(module.requires_grad_(False), path)
        assert runtime_path.op_impls(module) and all(impls == {path.ops[op]}
                                                     for op, impls in runtime_path.op_impls(module).items())
        ran.clear()
        with torch.no_grad():
            call()
        used = {op for op, _ in ran}
        assert used, label
        assert set(ran) == {(op, path.ops[op]) for op in used}, label
    assert {op for op, _ in ran} == {"bias_act", "conv2d_resample"}  # G1 last: no filtered_lrelu, no surprises


def test_paths_refuse_unknown_ops_and_implementations():
    from stylegan.runtime.path import ExecutionPath
    with pytest.raises(ValueError, match="no implementation 'cuda'"):
        FAST.replace(ops={"bias_act": "cuda"})
    with pytest.raises(ValueError, match="unknown op"):
        ExecutionPath(ops={"upfirdn3d": "fast"})
    with pytest.raises(ValueError, match="precision"):
        FAST.replace(precision="fp8")
