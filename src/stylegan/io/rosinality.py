"""rosinality/stylegan2-pytorch checkpoints (`.pt`), read and written.

Two layouts exist, both a dict saved with `torch.save`:
- `train.py`:          {'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args' (argparse.Namespace), 'ada_aug_p'};
- `convert_weight.py`: {'g_ema', 'latent_avg' [w_dim], ['g'], ['d']}.

They are read with `torch.load(weights_only=True, map_location="cpu")`; `argparse.Namespace` is allowed only
for a file that refers to it, and becomes a plain dict at once. The state dicts map to our StyleGAN2 networks
through the explicit name tables below, with the shape of every tensor checked both ways. The mapping is
reshapes only: nothing is flipped, transposed or rescaled (tests/fixtures/rosinality/ and docs/pretrained.md).

Channel counts are read from tensor shapes, never from rosinality's table or `args.channel_multiplier`:
real files may come from an edited `model.py`. We build our networks with the (channel_base, channel_max)
that reproduces every shape.

Rosinality's `Generator(size, style_dim, n_mlp, channel_multiplier)` runs float32 with no clamp, the
[1, 3, 3, 1] filter, a skip generator and a resnet discriminator. Writing refuses networks it cannot express.
A network with `conv_clamp` is written when dropping the clamp is measured to change nothing that matters
(io.clamp_effect: images of seeds, max |Δ| <= 1/255), or when the caller allows it.
A channel table that is not rosinality's stock one (512 up to 32x32, then 16384 * channel_multiplier / res)
needs the same edit in rosinality's `model.py` (its `channels` dict, in Generator and Discriminator).
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..errors import FormatError, UnsupportedNetworkError
from ..networks.discriminator import Discriminator
from ..networks.layers import Conv2dLayer, FullyConnectedLayer
from ..networks.stylegan2 import Generator
from ..networks.synthesis import SynthesisLayer, ToRGBLayer
from ..ops.upfirdn2d import setup_filter
from .atomic import atomic_path
from .clamp_effect import ClampEffect, conv_clamp_of, default_num_seeds, discriminator_effect, generator_effect
from .export import load_state_strict
from .torch_checkpoint import is_torch_checkpoint, read_torch_checkpoint  # noqa: F401 (io.load uses both from here)

MAPPING_LR_MULTIPLIER = 0.01  # rosinality's lr_mlp
BLUR_TAPS = (1, 3, 3, 1)  # rosinality's blur_kernel
MBSTD_GROUP_SIZE = 4  # rosinality's stddev_group
MBSTD_NUM_CHANNELS = 1  # rosinality's stddev_feat
MAX_RESOLUTION = 1024  # the largest key of rosinality's channel table
W_AVG_SAMPLES = 4096  # rosinality's scripts call g_ema.mean_latent(4096)
W_AVG_SEED = 0

# ---------------------------------------------------------------------------------------------------------------
# Layouts: how a rosinality tensor's shape relates to ours. Every one is a reshape of the same numbers.


def _same(shape: Sequence[int]) -> List[int]:
    return list(shape)


def _lead1(shape: Sequence[int]) -> List[int]:
    """Rosinality keeps a leading batch axis on modulated weights and the constant input."""
    return [1, *shape]


def _scalar(shape: Sequence[int]) -> List[int]:
    """Noise strength: [1] there, a scalar here."""
    return [1]


def _rgb_bias(shape: Sequence[int]) -> List[int]:
    """ToRGB bias: [1, C, 1, 1] there, [C] here."""
    return [1, *shape, 1, 1]


def _noise(shape: Sequence[int]) -> List[int]:
    """Stored noise: [1, 1, res, res] there, [res, res] here."""
    return [1, 1, *shape]


Layout = Callable[[Sequence[int]], List[int]]
# A name-table row: (rosinality key, our key, layout). Our key None marks a rosinality filter buffer
# (its value is given by `_blur_kernel(layout)`; ours are the modules' own resample_filter buffers).
Row = Tuple[str, Optional[str], Union[Layout, str]]
KERNEL_UP = "kernel_up"  # Blur/Upsample with factor 2: outer(taps)/sum * 4
KERNEL_DOWN = "kernel_down"  # Blur before a stride-2 conv: outer(taps)/sum


def _blur_kernel(kind: str) -> torch.Tensor:
    """The [4, 4] buffer rosinality stores for its [1, 3, 3, 1] blur (its make_kernel, times factor**2 when upsampling)."""
    return setup_filter(list(BLUR_TAPS)) * (4 if kind == KERNEL_UP else 1)


# ---------------------------------------------------------------------------------------------------------------
# Name tables.


def generator_table(size: int, n_mlp: int) -> List[Row]:
    """Rosinality Generator(size, ...) keys -> ours, in rosinality's state-dict order."""
    rows: List[Row] = []
    for i in range(n_mlp):  # style.0 is PixelNorm
        rows += [(f"style.{i + 1}.weight", f"mapping.fc{i}.weight", _same),
                 (f"style.{i + 1}.bias", f"mapping.fc{i}.bias", _same)]
    rows.append(("input.input", "synthesis.b4.const", _lead1))

    def styled_conv(ros: str, ours: str, up: bool) -> List[Row]:
        out: List[Row] = [(f"{ros}.conv.weight", f"{ours}.weight", _lead1)]
        if up:
            out.append((f"{ros}.conv.blur.kernel", None, KERNEL_UP))
        return out + [(f"{ros}.conv.modulation.weight", f"{ours}.affine.weight", _same),
                      (f"{ros}.conv.modulation.bias", f"{ours}.affine.bias", _same),
                      (f"{ros}.noise.weight", f"{ours}.noise_strength", _scalar),
                      (f"{ros}.activate.bias", f"{ours}.bias", _same)]

    def to_rgb(ros: str, ours: str, up: bool) -> List[Row]:
        out: List[Row] = [(f"{ros}.bias", f"{ours}.bias", _rgb_bias)]
        if up:
            out.append((f"{ros}.upsample.kernel", None, KERNEL_UP))
        return out + [(f"{ros}.conv.weight", f"{ours}.weight", _lead1),
                      (f"{ros}.conv.modulation.weight", f"{ours}.affine.weight", _same),
                      (f"{ros}.conv.modulation.bias", f"{ours}.affine.bias", _same)]

    block_res = [2 ** i for i in range(3, int(math.log2(size)) + 1)]
    rows += styled_conv("conv1", "synthesis.b4.conv1", up=False)
    rows += to_rgb("to_rgb1", "synthesis.b4.torgb", up=False)
    for k, res in enumerate(block_res):
        rows += styled_conv(f"convs.{2 * k}", f"synthesis.b{res}.conv0", up=True)
        rows += styled_conv(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1", up=False)
    for k, res in enumerate(block_res):
        rows += to_rgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb", up=True)
    rows.append(("noises.noise_0", "synthesis.b4.conv1.noise_const", _noise))
    for k, res in enumerate(block_res):
        rows += [(f"noises.noise_{2 * k + 1}", f"synthesis.b{res}.conv0.noise_const", _noise),
                 (f"noises.noise_{2 * k + 2}", f"synthesis.b{res}.conv1.noise_const", _noise)]
    return rows


def discriminator_table(size: int) -> List[Row]:
    """Rosinality Discriminator(size, ...) keys -> ours, in rosinality's state-dict order."""
    rows: List[Row] = [("convs.0.0.weight", f"b{size}.fromrgb.weight", _same),
                       ("convs.0.1.bias", f"b{size}.fromrgb.bias", _same)]
    for j in range(1, int(math.log2(size)) - 1):  # ResBlock j reads resolution size / 2**(j-1)
        b = f"b{size >> (j - 1)}"
        rows += [(f"convs.{j}.conv1.0.weight", f"{b}.conv0.weight", _same),
                 (f"convs.{j}.conv1.1.bias", f"{b}.conv0.bias", _same),
                 (f"convs.{j}.conv2.0.kernel", None, KERNEL_DOWN),
                 (f"convs.{j}.conv2.1.weight", f"{b}.conv1.weight", _same),
                 (f"convs.{j}.conv2.2.bias", f"{b}.conv1.bias", _same),
                 (f"convs.{j}.skip.0.kernel", None, KERNEL_DOWN),
                 (f"convs.{j}.skip.1.weight", f"{b}.skip.weight", _same)]
    rows += [("final_conv.0.weight", "b4.conv.weight", _same),  # the stddev channel is the last input in both
             ("final_conv.1.bias", "b4.conv.bias", _same),
             ("final_linear.0.weight", "b4.fc.weight", _same),  # both flatten NCHW
             ("final_linear.0.bias", "b4.fc.bias", _same),
             ("final_linear.1.weight", "b4.out.weight", _same),
             ("final_linear.1.bias", "b4.out.bias", _same)]
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Channels: per-resolution counts <-> (channel_base, channel_max).


def channel_config(channels: Dict[int, int], source: str) -> Tuple[int, int]:
    """The (channel_base, channel_max) for which min(channel_base // res, channel_max) == channels[res] for all res.

    channels: resolution -> channel count, read from tensor shapes (must include 4).
    source:   names the file and network in error messages.
    The smallest such channel_base is returned; FormatError if none exists.
    """
    channel_max = channels[4]
    lo, hi = 1, None
    for res, ch in sorted(channels.items()):
        if ch == channel_max:
            lo = max(lo, ch * res)
        else:  # channel_base // res == ch
            lo, hi = max(lo, ch * res), (ch * res + res - 1 if hi is None else min(hi, ch * res + res - 1))
    if hi is not None and lo > hi or any(ch > channel_max for ch in channels.values()):
        table = ", ".join(f"{r}: {c}" for r, c in sorted(channels.items()))
        raise FormatError(f"{source}: its channels per resolution ({table}) are not min(channel_base // res, "
                          f"channel_max) for any channel_base, channel_max; this package cannot build that network")
    return lo, channel_max


def stock_channel_multiplier(channels: Dict[int, int]) -> Optional[int]:
    """The channel_multiplier for which rosinality's unedited table gives `channels`, or None.

    Its table is 512 up to 32x32 and 16384 * channel_multiplier / res above. Where every resolution is <= 32
    any multiplier gives the same table; 2 (train.py's default) is returned then.
    """
    for cm in (2, 1, 3, 4, 5, 6, 7, 8):
        if all(ch == (512 if res <= 32 else 16384 * cm // res) for res, ch in channels.items()):
            return cm
    return None


def _generator_channels(state: Dict[str, torch.Tensor], size: int, source: str) -> Dict[int, int]:
    channels = {4: _dim(state, "input.input", 1, source)}
    for k in range(int(math.log2(size)) - 2):
        channels[2 ** (k + 3)] = _dim(state, f"convs.{2 * k}.conv.weight", 1, source)
    return channels


def _discriminator_channels(state: Dict[str, torch.Tensor], size: int, source: str) -> Dict[int, int]:
    channels = {size: _dim(state, "convs.0.0.weight", 0, source), 4: _dim(state, "final_conv.1.bias", 0, source)}
    for j in range(1, int(math.log2(size)) - 1):
        channels[size >> j] = _dim(state, f"convs.{j}.skip.1.weight", 0, source)
    return channels


def _dim(state: Dict[str, torch.Tensor], key: str, axis: int, source: str) -> int:
    if key not in state:
        raise FormatError(f"{source}: {key} is missing; not a rosinality StyleGAN2 state dict")
    if state[key].ndim <= axis:
        raise FormatError(f"{source}: {key} has shape {list(state[key].shape)}; expected at least {axis + 1} axes")
    return int(state[key].shape[axis])


def _count(state: Dict[str, torch.Tensor], pattern: str, start: int = 0) -> int:
    """How many consecutive i from `start` have pattern.format(i) in state."""
    n = 0
    while pattern.format(start + n) in state:
        n += 1
    return n


# ---------------------------------------------------------------------------------------------------------------
# Rosinality state dict -> our modules.


def _load_by_table(module: nn.Module, state: Dict[str, torch.Tensor], rows: List[Row], source: str,
                   extra_ours: Optional[Dict[str, torch.Tensor]] = None) -> nn.Module:
    """Fill `module` from rosinality's `state` through `rows`, checking every key and shape both ways."""
    known = {row[0] for row in rows}
    missing = [row[0] for row in rows if row[0] not in state]
    unexpected = [k for k in state if k not in known]
    if missing or unexpected:
        raise FormatError(f"{source}: weights do not match rosinality's StyleGAN2 layout: missing {missing[:5]}"
                          f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                          f"{' ...' if len(unexpected) > 5 else ''}")
    ours = module.state_dict()
    out = {k: v for k, v in ours.items() if k.endswith("resample_filter")}
    for ros_key, our_key, layout in rows:
        value = state[ros_key]
        if not isinstance(value, torch.Tensor):
            raise FormatError(f"{source}: {ros_key} is a {type(value).__name__}, not a tensor")
        if our_key is None:
            kernel = _blur_kernel(layout)
            if tuple(value.shape) != tuple(kernel.shape) or not torch.equal(value.float(), kernel):
                raise UnsupportedNetworkError(
                    f"{source}: {ros_key} is not the [1, 3, 3, 1] blur kernel this package implements; the network "
                    f"was built with another blur_kernel")
            continue
        expected = layout(ours[our_key].shape)
        if list(value.shape) != expected:
            raise FormatError(f"{source}: {ros_key} has shape {list(value.shape)}, the network its other tensors "
                              f"describe expects {expected}")
        out[our_key] = value.detach().reshape(ours[our_key].shape)
    out.update(extra_ours or {})
    load_state_strict(module, out, source)
    return module


def generator_from_state(state: Dict[str, torch.Tensor], source: str,
                         latent_avg: Optional[torch.Tensor] = None) -> Generator:
    """Our Generator from a rosinality Generator state dict; w_avg = latent_avg, or an estimate (see estimate_w_avg)."""
    n_mlp = _count(state, "style.{}.weight", 1)
    if n_mlp == 0:
        raise FormatError(f"{source}: no mapping layers (style.1.weight); not a rosinality Generator state dict")
    w_dim, z_dim = (int(s) for s in state["style.1.weight"].shape)
    if z_dim != w_dim:
        raise FormatError(f"{source}: style.1.weight has shape {[w_dim, z_dim]}; rosinality's mapping is square")
    size = 4 * 2 ** _count(state, "to_rgbs.{}.conv.weight")
    base, cmax = channel_config(_generator_channels(state, size, source), source)
    G = Generator(z_dim=w_dim, c_dim=0, w_dim=w_dim, img_resolution=size, img_channels=3,
                  mapping_kwargs=dict(num_layers=n_mlp, lr_multiplier=MAPPING_LR_MULTIPLIER),
                  channel_base=base, channel_max=cmax, num_fp16_res=0, conv_clamp=None, architecture="skip",
                  resample_filter=list(BLUR_TAPS))
    w_avg = {"mapping.w_avg": torch.zeros([w_dim])}
    if latent_avg is not None:
        if latent_avg.numel() != w_dim or latent_avg.ndim not in (1, 2):
            raise FormatError(f"{source}: latent_avg has shape {list(latent_avg.shape)}; expected [{w_dim}]")
        w_avg["mapping.w_avg"] = latent_avg.detach().reshape(w_dim)
    _load_by_table(G, state, generator_table(size, n_mlp), source, extra_ours=w_avg)
    if latent_avg is None:
        G.mapping.w_avg.copy_(estimate_w_avg(G))
    return G


def discriminator_from_state(state: Dict[str, torch.Tensor], source: str) -> Discriminator:
    """Our Discriminator from a rosinality Discriminator state dict."""
    num_blocks = _count(state, "convs.{}.conv1.0.weight", 1)
    if num_blocks == 0:
        raise FormatError(f"{source}: no residual blocks (convs.1.conv1.0.weight); not a rosinality "
                          f"Discriminator state dict")
    size = 4 * 2 ** num_blocks
    base, cmax = channel_config(_discriminator_channels(state, size, source), source)
    D = Discriminator(c_dim=0, img_resolution=size, img_channels=3, architecture="resnet", channel_base=base,
                      channel_max=cmax, num_fp16_res=0, conv_clamp=None,
                      block_kwargs=dict(resample_filter=list(BLUR_TAPS)),
                      epilogue_kwargs=dict(mbstd_group_size=MBSTD_GROUP_SIZE, mbstd_num_channels=MBSTD_NUM_CHANNELS))
    return _load_by_table(D, state, discriminator_table(size), source)


@torch.no_grad()
def estimate_w_avg(G: Generator, num_samples: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED,
                   chunk: int = 512) -> torch.Tensor:
    """Mean w over `num_samples` z ~ N(0, I) drawn on the CPU from torch.Generator().manual_seed(seed).

    Rosinality's train.py files store no w average; its scripts estimate one with g_ema.mean_latent(4096),
    from the global RNG. We draw from a seeded generator instead, so a file always loads to the same network.
    """
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([num_samples, G.z_dim], generator=gen)
    device = G.mapping.fc0.weight.device
    total = torch.zeros([G.w_dim], dtype=torch.float64, device=device)
    for part in z.split(chunk):
        total += G.mapping(part.to(device), None)[:, 0].double().sum(dim=0)
    return (total / num_samples).float()


# ---------------------------------------------------------------------------------------------------------------
# Reading the file (io.torch_checkpoint loads it safely).


def _is_swagan(ckpt: dict) -> bool:
    args = ckpt.get("args")
    if isinstance(args, dict) and args.get("arch") == "swagan":
        return True
    for role in ("g_ema", "g", "d"):
        state = ckpt.get(role)
        if isinstance(state, dict) and any(k.startswith(("iwt.", "dwt.", "from_rgbs.")) or ".iwt." in k
                                           for k in state):
            return True
    return False


def load_rosinality(path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu") -> dict:
    """Read a rosinality .pt file: {'G_ema' (from g_ema), 'G' (from g), 'D' (from d) where present, 'augment_p'
    (from ada_aug_p), 'rosinality_args' (train.py's args), 'w_avg_source'}. Modules are in eval mode."""
    ckpt = read_torch_checkpoint(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("g_ema"), dict):
        what = f"top-level keys {sorted(map(str, ckpt))[:8]}" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise FormatError(f"{path}: a PyTorch file, but not a rosinality/stylegan2-pytorch checkpoint (it holds "
                          f"{what}; expected g_ema from train.py or convert_weight.py)")
    if _is_swagan(ckpt):
        raise UnsupportedNetworkError(f"{path}: a rosinality SWAGAN checkpoint (arch 'swagan', wavelet layers); "
                                      f"this package implements StyleGAN2 only")
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise FormatError(f"{path}: latent_avg is a {type(latent_avg).__name__}, not a tensor")
    result: dict = {}
    result["G_ema"] = generator_from_state(ckpt["g_ema"], f"{path} [g_ema]", latent_avg)
    result["w_avg_source"] = ("latent_avg" if latent_avg is not None else
                              f"estimated: mean w of {W_AVG_SAMPLES} z from torch.Generator().manual_seed({W_AVG_SEED})")
    if isinstance(ckpt.get("g"), dict):
        # latent_avg belongs to g_ema (convert_weight.py takes it from Gs); g gets its own estimate.
        result["G"] = generator_from_state(ckpt["g"], f"{path} [g]")
    if isinstance(ckpt.get("d"), dict):
        result["D"] = discriminator_from_state(ckpt["d"], f"{path} [d]")
        if result["D"].img_resolution != result["G_ema"].img_resolution:
            raise FormatError(f"{path}: d is {result['D'].img_resolution}x{result['D'].img_resolution} but g_ema "
                              f"is {result['G_ema'].img_resolution}x{result['G_ema'].img_resolution}")
    for role in ("G_ema", "G", "D"):
        if role in result:
            result[role] = result[role].to(device).eval().requires_grad_(False)
    if isinstance(ckpt.get("ada_aug_p"), (int, float, torch.Tensor)):
        result["augment_p"] = float(ckpt["ada_aug_p"])
    if isinstance(ckpt.get("args"), dict):
        result["rosinality_args"] = {k: v for k, v in ckpt["args"].items()
                                     if v is None or isinstance(v, (str, int, float, bool))}
    return result


# ---------------------------------------------------------------------------------------------------------------
# Our modules -> rosinality state dicts.


def _refuse(what: str, why: str) -> None:
    raise UnsupportedNetworkError(f"cannot write a rosinality checkpoint: {what}; {why}")


def _check_filters(module: nn.Module, role: str) -> None:
    default = setup_filter(list(BLUR_TAPS))
    for name, buf in module.named_buffers():
        if name.endswith("resample_filter") and not (buf.shape == default.shape and
                                                      torch.equal(buf.detach().cpu(), default)):
            _refuse(f"{role} uses a resample filter other than [1, 3, 3, 1] ({name})",
                    "rosinality's blur_kernel is fixed to [1, 3, 3, 1] by train.py and generate.py")


def generator_channels(G: Generator) -> Dict[int, int]:
    """Resolution -> channels of our generator."""
    return {res: getattr(G.synthesis, f"b{res}").out_channels for res in G.synthesis.block_resolutions}


def check_generator(G: nn.Module) -> None:
    """Refuse (UnsupportedNetworkError, naming what and why) a generator rosinality's Generator cannot express
    (conv_clamp aside: see save_rosinality)."""
    if type(G) is not Generator:
        _refuse(f"G is a {type(G).__name__}", "rosinality's Generator is StyleGAN2's")
    if G.c_dim != 0:
        _refuse(f"G is conditional (c_dim={G.c_dim})", "rosinality's Generator takes no labels")
    if G.z_dim != G.w_dim:
        _refuse(f"G has z_dim={G.z_dim} != w_dim={G.w_dim}", "rosinality's style_dim is both")
    if G.img_channels != 3:
        _refuse(f"G outputs {G.img_channels} channels", "rosinality's ToRGB always writes 3")
    if G.img_resolution > MAX_RESOLUTION:
        _refuse(f"G is {G.img_resolution}x{G.img_resolution}", f"rosinality's channel table ends at {MAX_RESOLUTION}")
    mapping = G.mapping
    if not hasattr(mapping, "w_avg"):
        _refuse("G's mapping tracks no w_avg (w_avg_beta=None)", "rosinality checkpoints store it as latent_avg")
    for i in range(mapping.num_layers):
        fc: FullyConnectedLayer = getattr(mapping, f"fc{i}")
        if (fc.in_features, fc.out_features) != (G.w_dim, G.w_dim):
            _refuse(f"mapping layer {i} is {fc.in_features}->{fc.out_features}",
                    f"rosinality's mapping layers are all style_dim x style_dim ({G.w_dim})")
        if fc.activation != "lrelu" or fc.bias is None:
            _refuse(f"mapping layer {i} has activation {fc.activation!r}{'' if fc.bias is not None else ', no bias'}",
                    "rosinality's are EqualLinear with fused_lrelu")
        if fc.bias_gain != MAPPING_LR_MULTIPLIER:
            _refuse(f"the mapping's lr_multiplier is {fc.bias_gain}",
                    f"rosinality's Generator hard-codes lr_mlp={MAPPING_LR_MULTIPLIER} in train.py and generate.py")
    for res in G.synthesis.block_resolutions:
        block = getattr(G.synthesis, f"b{res}")
        if block.architecture != "skip":
            _refuse(f"G's architecture is {block.architecture!r}", "rosinality's Generator is the 'skip' one")
        for layer in block.children():
            if isinstance(layer, SynthesisLayer):
                if not layer.use_noise or layer.activation != "lrelu" or layer.weight.shape[-1] != 3:
                    _refuse(f"synthesis layer {res}x{res} differs from StyleGAN2's (noise {layer.use_noise}, "
                            f"activation {layer.activation!r}, kernel {layer.weight.shape[-1]})",
                            "rosinality's StyledConv is a 3x3 modulated conv with noise and fused lrelu")
            elif isinstance(layer, ToRGBLayer) and layer.weight.shape[-1] != 1:
                _refuse(f"toRGB at {res}x{res} has a {layer.weight.shape[-1]}x{layer.weight.shape[-1]} kernel",
                        "rosinality's ToRGB is 1x1")
    _check_filters(G, "G")


def discriminator_channels(D: Discriminator) -> Dict[int, int]:
    """Resolution -> channels of our discriminator (each block's own channels, and 4x4)."""
    channels = {res: getattr(D, f"b{res}").conv0.in_channels for res in D.block_resolutions}
    channels[4] = D.b4.in_channels
    return channels


def check_discriminator(D: nn.Module) -> None:
    """Refuse (UnsupportedNetworkError, naming what and why) a discriminator rosinality's cannot express
    (conv_clamp aside: see save_rosinality)."""
    if type(D) is not Discriminator:
        _refuse(f"D is a {type(D).__name__}", "rosinality's Discriminator is StyleGAN2's")
    if D.c_dim != 0:
        _refuse(f"D is conditional (c_dim={D.c_dim})", "rosinality's Discriminator takes no labels")
    if D.img_channels != 3:
        _refuse(f"D reads {D.img_channels} channels", "rosinality's Discriminator reads RGB")
    for res in D.block_resolutions:
        if getattr(D, f"b{res}").architecture != "resnet":
            _refuse(f"D's architecture is {getattr(D, f'b{res}').architecture!r}",
                    "rosinality's Discriminator is the 'resnet' one")
    if D.b4.architecture != "resnet":
        _refuse(f"D's epilogue architecture is {D.b4.architecture!r}", "rosinality's Discriminator is 'resnet'")
    mbstd = D.b4.mbstd
    if mbstd is None or (mbstd.group_size, mbstd.num_channels) != (MBSTD_GROUP_SIZE, MBSTD_NUM_CHANNELS):
        found = "none" if mbstd is None else f"group size {mbstd.group_size}, {mbstd.num_channels} channel(s)"
        _refuse(f"D's minibatch stddev is {found}", "rosinality's is group size 4 with 1 channel")
    for name, m in D.named_modules():
        if isinstance(m, (Conv2dLayer, FullyConnectedLayer)) and m.activation not in ("lrelu", "linear"):
            _refuse(f"D layer {name} uses activation {m.activation!r}", "rosinality's layers use fused lrelu")
    _check_filters(D, "D")


def _state_by_table(module: nn.Module, rows: List[Row]) -> "OrderedDict[str, torch.Tensor]":
    ours = module.state_dict()
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for ros_key, our_key, layout in rows:
        if our_key is None:
            out[ros_key] = _blur_kernel(layout)
        else:
            value = ours[our_key].detach().to("cpu", torch.float32)
            out[ros_key] = value.reshape(layout(value.shape)).clone(memory_format=torch.contiguous_format)
    return out


def generator_to_state(G: Generator) -> "OrderedDict[str, torch.Tensor]":
    """Rosinality's Generator state dict for our G: the keys, order and shapes its Generator(size, ...) has."""
    check_generator(G)
    return _state_by_table(G, generator_table(G.img_resolution, G.mapping.num_layers))


def discriminator_to_state(D: Discriminator) -> "OrderedDict[str, torch.Tensor]":
    """Rosinality's Discriminator state dict for our D."""
    check_discriminator(D)
    return _state_by_table(D, discriminator_table(D.img_resolution))


def save_rosinality(path: Union[str, os.PathLike], G_ema: Generator, D: Optional[Discriminator] = None,
                    G: Optional[Generator] = None, allow_conv_clamp: bool = False,
                    clamp_seeds: Optional[int] = None) -> dict:
    """Write a convert_weight.py-style checkpoint atomically: {'g_ema', 'latent_avg', ['g'], ['d']}.

    path:             destination .pt file.
    G_ema:            the generator to sample from (its mapping.w_avg becomes latent_avg).
    D:                discriminator to include as 'd'.
    G:                the non-EMA generator to include as 'g' (as convert_weight.py --gen does).
    allow_conv_clamp: write networks whose conv_clamp matters (rosinality's never clamp, so their outputs
                      then differ from ours by the measured max |Δ|).
    clamp_seeds:      seeds to measure the clamp's effect on (default: clamp_effect.default_num_seeds).
    Networks with conv_clamp are measured against their clamp-free read-back (clamp_effect); one whose
    difference is not negligible is refused unless allow_conv_clamp.
    Returns what rosinality's code needs to build the networks: {'size', 'style_dim', 'n_mlp', 'channels',
    'channel_multiplier'} (channel_multiplier None: the table is not rosinality's stock one; edit model.py),
    and 'clamp_effects': a ClampEffect per clamped network.
    """
    ckpt: dict = {"g_ema": generator_to_state(G_ema),  # checks each network first
                  "latent_avg": G_ema.mapping.w_avg.detach().to("cpu", torch.float32).clone()}
    if G is not None:
        ckpt["g"] = generator_to_state(G)
    if D is not None:
        ckpt["d"] = discriminator_to_state(D)
    channels = generator_channels(G_ema)
    for role, net, other in ([("G", G, generator_channels(G))] if G is not None else []) + \
            ([("D", D, discriminator_channels(D))] if D is not None else []):
        if net.img_resolution != G_ema.img_resolution or other != channels:
            _refuse(f"{role} ({net.img_resolution}x{net.img_resolution}, channels {other}) and G_ema "
                    f"({G_ema.img_resolution}x{G_ema.img_resolution}, channels {channels}) differ",
                    "rosinality builds every network of a checkpoint from one size and one channel table")
    if G is not None and (G.w_dim, G.mapping.num_layers) != (G_ema.w_dim, G_ema.mapping.num_layers):
        _refuse("G and G_ema have different mapping networks", "rosinality builds both from one style_dim, n_mlp")
    effects = clamp_effects(ckpt, G_ema, G, D, clamp_seeds)
    harmful = [str(e) for e in effects if not e.negligible]
    if harmful and not allow_conv_clamp:
        _refuse("; ".join(harmful), "rosinality's networks never clamp, so their outputs would differ from these "
                "by that much. Pass --allow-conv-clamp (allow_conv_clamp=True) to write them anyway")
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return {"size": G_ema.img_resolution, "style_dim": G_ema.w_dim, "n_mlp": G_ema.mapping.num_layers,
            "channels": channels, "channel_multiplier": stock_channel_multiplier(channels),
            "clamp_effects": effects}


def clamp_effects(ckpt: dict, G_ema: Generator, G: Optional[Generator], D: Optional[Discriminator],
                  num_seeds: Optional[int] = None) -> List[ClampEffect]:
    """Each network with conv_clamp against what rosinality computes: its clamp-free read-back from `ckpt`."""
    roles = [(role, net, key) for role, net, key in (("G_ema", G_ema, "g_ema"), ("G", G, "g"), ("D", D, "d"))
             if net is not None and conv_clamp_of(net) is not None]
    num_seeds = num_seeds if num_seeds is not None else default_num_seeds(G_ema)
    effects = []
    for role, net, key in roles:
        device = next(net.parameters()).device
        source = f"{role} without conv_clamp"
        if key == "d":
            free = discriminator_from_state(ckpt[key], source).to(device).eval()
            effects.append(discriminator_effect(role, net, free, G_ema, num_seeds))
        else:
            free = generator_from_state(ckpt[key], source, latent_avg=net.mapping.w_avg.cpu()).to(device).eval()
            effects.append(generator_effect(role, net, free, num_seeds))
    return effects
