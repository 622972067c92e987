"""The StyleGAN (v1) generator: mapping network, AdaIN synthesis network and progressive fade-in.

Karras et al. 2019, "A Style-Based Generator Architecture for Generative Adversarial Networks", figure 1b:
a learned 4x4 constant, then per resolution two 3x3 convolutions (the first after nearest-neighbour
upsampling, followed by a [1, 2, 1] blur, section 2 / appendix C), each followed by the "layer epilogue" of
NVIDIA's TensorFlow release (`training/networks_stylegan.py`): per-pixel noise with a learned per-channel
strength (section 2), bias, leaky ReLU, instance normalisation and the style modulation of AdaIN (eq. 1).
Every resolution has its own toRGB; the level of detail `lod` cross-fades between the two finest active
resolutions as in ProGAN (Karras et al. 2018, section 3 and figure 2).

Conventions shared with our StyleGAN2 (`stylegan2.py`): `G(z, c, truncation_psi, truncation_cutoff,
noise_mode)`, `G.mapping`, `G.synthesis`, images NCHW in [-1, 1]. Two v1 particulars:

- `lod` is a float buffer of the synthesis network (0 = full resolution, the default, as in the official
  `lod` variable). `forward(..., lod=x)` overrides it without touching the buffer (and, on a GPU, avoids
  the device sync of reading the buffer; training loops should pass it). The output is always
  nearest-neighbour upscaled to `img_resolution` (as the official networks do) unless
  `full_resolution=False`, which returns it at the current resolution `img_resolution / 2**floor(lod)`.
- `truncation_cutoff=None` means the generator's default cutoff, 8 layers in v1 (the official `G_style`
  default), not "all layers"; pass `truncation_cutoff=G.num_ws` to truncate every layer.

Weight conventions against the official TF variables (the name table is `io/tf_stylegan1.py`): synthesis
convolutions reproduce TF exactly (He gain sqrt(2) applied to the convolution output, then noise, bias and a
gain-free leaky ReLU). Layers reused from `layers.py` (mapping dense layers, discriminator convolutions and
dense layers) apply the sqrt(2) gain after the activation instead, so their official biases map as
b_ours = b_tf / sqrt(2) (lrelu(sqrt(2) u + b) = sqrt(2) lrelu(u + b / sqrt(2))). Conv0_up kernels are true
convolutions here (as the official fused path at >= 128 px); the official non-fused path below 128 px
correlates, so those kernels must be flipped spatially when loading.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.bias_act import bias_act
from ..ops.misc import assert_shape, normalize_2nd_moment
from ..ops.upfirdn2d import filter2d, setup_filter
from .layers import DEFAULT_BIAS_ACT_IMPL, Conv2dLayer, FullyConnectedLayer, check_resolution
from .generator import StyleGenerator
from .mapping import MappingNetwork
from .synthesis import NOISE_MODES

HE_GAIN = math.sqrt(2)  # official `gain` for (leaky) ReLU layers, folded into the weight scale
V1_ACTIVATIONS = ("lrelu", "relu")  # the official `nonlinearity` choices


def v1_channels(resolution: int, fmap_base: int = 8192, fmap_decay: float = 1.0, fmap_max: int = 512) -> int:
    """Feature maps at `resolution`: the official nf(stage) = min(fmap_base / 2**(stage * decay), fmap_max)."""
    stage = int(math.log2(resolution)) - 1
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def check_lod(lod: float, max_lod: int) -> float:
    """Validate a level of detail: 0 = full resolution, max_lod = 4x4."""
    lod = float(lod)
    if not 0 <= lod <= max_lod:
        raise ValueError(f"lod must lie in [0, {max_lod}] for this network, got {lod}")
    return lod


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each feature map of `x` [N, C, H, W] to zero mean and unit variance (AdaIN, eq. 1)."""
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * (x.square().mean(dim=[2, 3], keepdim=True) + eps).rsqrt()


def adain(x: torch.Tensor, style: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """AdaIN(x, y) = y_s (x - mu(x)) / sigma(x) + y_b (eq. 1), with y_s = 1 + s as in the TF release.

    x:         features [N, C, H, W].
    style:     [N, 2C]: the scales s (first C) and biases y_b (last C).
    normalize: instance-normalise x first (False: the official use_instance_norm=False, style only).
    """
    n, c = x.shape[:2]
    assert_shape(style, [n, 2 * c], "style")
    scale, bias = style.reshape(n, 2, c, 1, 1).unbind(dim=1)
    return (instance_norm(x) if normalize else x) * (scale + 1) + bias


class SynthesisLayer1(nn.Module):
    """Input (the learned constant or a 3x3 conv) + noise + bias + lrelu + instance norm + AdaIN style.

    in_channels:  input channels; 0 makes this the first layer, reading the learned 4x4 constant.
    out_channels: output channels.
    w_dim:        intermediate latent size.
    resolution:   output resolution.
    up:           2 upsamples (nearest neighbour) before the convolution and blurs after it; 1 does not.
    use_noise:    add per-pixel noise with learned per-channel strengths (section 2, figure 1b "B").
    blur_filter:  taps of the blur after upsampling ([1, 2, 1] officially); None disables it.
    activation:   'lrelu' (official) or 'relu', applied without gain (the gain is in the conv weight).
    use_pixel_norm:    pixel-normalise after the activation (official use_pixel_norm, off by default).
    use_instance_norm: instance-normalise before the style (official default; off = style on raw features).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1,
                 use_noise: bool = True, blur_filter: Optional[Sequence[float]] = (1, 2, 1),
                 activation: str = "lrelu", use_pixel_norm: bool = False, use_instance_norm: bool = True):
        super().__init__()
        if up not in (1, 2) or (in_channels == 0 and up != 1):
            raise ValueError(f"up must be 1 or 2 (1 for the constant input layer), got {up}")
        if activation not in V1_ACTIVATIONS:
            raise ValueError(f"activation must be one of {V1_ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.use_pixel_norm = use_pixel_norm
        self.use_instance_norm = use_instance_norm
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        if in_channels == 0:
            self.const = nn.Parameter(torch.ones([out_channels, resolution, resolution]))  # official init: ones
        else:
            # A [1, 1] box filter makes the zero-insertion upsampler of conv2d_resample a nearest-neighbour one.
            self.conv = Conv2dLayer(in_channels, out_channels, kernel_size=3, bias=False, up=up,
                                    resample_filter=(1, 1))
        self.blur = up > 1 and blur_filter is not None
        if self.blur:
            self.register_buffer("blur_filter", setup_filter(list(blur_filter)))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([out_channels]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.bias_act_impl = DEFAULT_BIAS_ACT_IMPL  # ops.registry; set by runtime.path.apply_path
        self.style = FullyConnectedLayer(w_dim, 2 * out_channels)  # bias 0: styles start at (1 + 0, 0)

    def forward(self, x: Optional[torch.Tensor], w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        assert_shape(w, [None, self.w_dim], "w")
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat([w.shape[0], 1, 1, 1])
        else:
            in_res = self.resolution // self.up
            assert_shape(x, [w.shape[0], self.in_channels, in_res, in_res], "x")
            x = self.conv(x, gain=HE_GAIN)  # linear, no bias: the official He-scaled conv2d
            if self.blur:
                x = filter2d(x, self.blur_filter)
        assert_shape(x, [w.shape[0], self.out_channels, self.resolution, self.resolution], "x")

        if self.use_noise and noise_mode != "none":
            if noise_mode == "random":
                noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device, dtype=x.dtype)
            else:
                noise = self.noise_const.to(x.dtype)
            x = x + noise * self.noise_strength.to(x.dtype).reshape(1, -1, 1, 1)
        x = bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=1, impl=self.bias_act_impl)
        if self.use_pixel_norm:
            x = normalize_2nd_moment(x)
        return adain(x, self.style(w), normalize=self.use_instance_norm)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, resolution={self.resolution}, "
                f"up={self.up}, use_noise={self.use_noise}, activation={self.activation}")


class SynthesisBlock1(nn.Module):
    """One resolution: two SynthesisLayer1 (constant + conv at 4x4, upsampling conv + conv above) and a toRGB.

    in_channels:  input channels (0 for the 4x4 block, which starts from the learned constant).
    out_channels: feature maps at this resolution.
    w_dim:        intermediate latent size.
    resolution:   this block's resolution.
    img_channels: image channels of the toRGB output.
    layer_kwargs: passed to SynthesisLayer1 (use_noise, blur_filter, activation, use_pixel_norm,
                  use_instance_norm).
    """

    num_ws = 2  # one w per layer; toRGB is not styled in v1

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 **layer_kwargs):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.layer0 = SynthesisLayer1(in_channels, out_channels, w_dim, resolution,
                                      up=1 if in_channels == 0 else 2, **layer_kwargs)
        self.layer1 = SynthesisLayer1(out_channels, out_channels, w_dim, resolution, **layer_kwargs)
        self.torgb = Conv2dLayer(out_channels, img_channels, kernel_size=1)  # linear, gain 1 (official ToRGB)

    def forward(self, x: Optional[torch.Tensor], ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        x = self.layer0(x, ws[:, 0], noise_mode=noise_mode)
        return self.layer1(x, ws[:, 1], noise_mode=noise_mode)  # [N, out_channels, res, res]

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, in_channels={self.in_channels}, out_channels={self.out_channels}"


class SynthesisNetwork1(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, img_resolution, img_resolution] with lod fade-in.

    w_dim:          intermediate latent size.
    img_resolution: output resolution (a power of two >= 4).
    img_channels:   image channels.
    fmap_base:      feature maps are min(fmap_base / 2**(stage * fmap_decay), fmap_max), stage = log2(res) - 1.
    fmap_decay:     see fmap_base.
    fmap_max:       feature-map cap.
    layer_kwargs:   passed to SynthesisLayer1 (use_noise, blur_filter, activation, use_pixel_norm,
                    use_instance_norm).
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, fmap_base: int = 8192,
                 fmap_decay: float = 1.0, fmap_max: int = 512, **layer_kwargs):
        super().__init__()
        log2 = check_resolution(img_resolution)
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.max_lod = log2 - 2
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        channels = {res: v1_channels(res, fmap_base, fmap_decay, fmap_max) for res in self.block_resolutions}
        for res in self.block_resolutions:
            block = SynthesisBlock1(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                                    img_channels=img_channels, **layer_kwargs)
            setattr(self, f"b{res}", block)
        self.num_ws = SynthesisBlock1.num_ws * len(self.block_resolutions)
        self.register_buffer("lod", torch.zeros([]))  # the official non-trainable `lod` variable

    def set_lod(self, lod: float) -> None:
        """Set the level of detail used when forward() is called without `lod`."""
        self.lod.fill_(check_lod(lod, self.max_lod))

    def num_active_ws(self, lod: float) -> int:
        """Number of leading ws that influence the output at `lod` (the rest feed inactive layers)."""
        return self.num_ws - SynthesisBlock1.num_ws * int(math.floor(check_lod(lod, self.max_lod)))

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", lod: Optional[float] = None,
                full_resolution: bool = True, update_emas: bool = False) -> torch.Tensor:
        del update_emas  # accepted for the StyleGAN2 calling convention; synthesis keeps no running averages
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        lod = check_lod(self.lod if lod is None else lod, self.max_lod)
        level = int(math.floor(lod))
        alpha = lod - level  # weight of the coarser image, ProGAN's 1 - alpha
        cur_res = self.img_resolution >> level
        ws = ws.to(torch.float32)

        x = prev = None
        for idx, res in enumerate(r for r in self.block_resolutions if r <= cur_res):
            prev = x
            x = getattr(self, f"b{res}")(x, ws[:, 2 * idx: 2 * idx + 2], noise_mode=noise_mode)
        img = getattr(self, f"b{cur_res}").torgb(x)
        if alpha > 0:  # fading in cur_res: blend with the nearest-upsampled image of the resolution below
            coarse = getattr(self, f"b{cur_res // 2}").torgb(prev)
            img = torch.lerp(img, F.interpolate(coarse, scale_factor=2, mode="nearest"), alpha)
        if full_resolution and level > 0:
            img = F.interpolate(img, scale_factor=2 ** level, mode="nearest")
        return img

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}"


class MappingNetwork1(MappingNetwork):
    """MappingNetwork whose truncation cutoff defaults to v1's (the official G_style truncates 8 layers).

    default_cutoff: cutoff used when a call passes truncation_cutoff=None (None = all layers).
    kwargs:         passed to MappingNetwork.
    """

    def __init__(self, default_cutoff: Optional[int] = 8, **kwargs):
        super().__init__(**kwargs)
        self.default_cutoff = default_cutoff

    def forward(self, z: Optional[torch.Tensor], c: Optional[torch.Tensor], truncation_psi: float = 1,
                truncation_cutoff: Optional[int] = None, update_emas: bool = False) -> torch.Tensor:
        if truncation_cutoff is None:
            truncation_cutoff = self.default_cutoff
        return super().forward(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                               update_emas=update_emas)


class Generator1(StyleGenerator):
    """StyleGAN (v1) G(z, c) -> image in [-1, 1], NCHW.

    z_dim:             latent size.
    c_dim:             label size (0 = unconditional); labels are embedded as the official `LabelConcat`.
    w_dim:             intermediate latent size.
    img_resolution:    output resolution.
    img_channels:      output channels.
    mapping_kwargs:    passed to MappingNetwork (defaults: 8 layers, lr_multiplier 0.01, w_avg_beta 0.995,
                       label_concat True: a bias-free [c_dim -> z_dim] embedding concatenated to z before the
                       normalisation, as NVIDIA's G_mapping).
    truncation_cutoff: layers truncated when a call passes truncation_cutoff=None (official default 8).
    synthesis_kwargs:  passed to SynthesisNetwork1 (fmap_base, fmap_decay, fmap_max, use_noise, blur_filter,
                       activation, use_pixel_norm, use_instance_norm).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: Optional[dict] = None, truncation_cutoff: Optional[int] = 8, **synthesis_kwargs):
        super().__init__(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=mapping_kwargs,
                         truncation_cutoff=truncation_cutoff, **synthesis_kwargs)
        self.synthesis = SynthesisNetwork1(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                           **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.truncation_cutoff = truncation_cutoff
        mapping_kwargs = {"num_layers": 8, "lr_multiplier": 0.01, "w_avg_beta": 0.995, "label_concat": True,
                          **(mapping_kwargs or {})}
        self.mapping = MappingNetwork1(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                       default_cutoff=truncation_cutoff, **mapping_kwargs)

    def set_lod(self, lod: float) -> None:
        """Set the synthesis network's level of detail (0 = full resolution)."""
        self.synthesis.set_lod(lod)

    def ws_resolutions(self) -> List[int]:
        """The resolution each w acts at: two AdaIN layers per resolution."""
        return [4 * 2 ** (i // 2) for i in range(self.num_ws)]



def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def official_layer_param_counts(G: Generator1) -> Dict[str, int]:
    """Trainable parameters per layer, keyed by the layer names of the official `Gs.print_layers()`.

    The official table counts trainable TF variables only: `dlatent_avg` (our mapping.w_avg), `lod` (our
    synthesis.lod) and `noise0..N` (our noise_const buffers) are non-trainable and do not appear, and our
    resampling-filter buffers have no TF variable. Each official synthesis layer holds its conv weight (or
    the constant), the per-channel noise strengths, the bias and the style dense layer. A label embedding
    is the official `LabelConcat` weight [c_dim, z_dim] (bias-free, as ours).
    """
    counts: Dict[str, int] = {}
    if G.c_dim > 0:
        counts["G_mapping/LabelConcat"] = _numel(G.mapping.embed)
    for idx in range(G.mapping.num_layers):
        counts[f"G_mapping/Dense{idx}"] = _numel(getattr(G.mapping, f"fc{idx}"))
    syn = G.synthesis
    for res in syn.block_resolutions:
        block = getattr(syn, f"b{res}")
        if res == 4:
            counts["G_synthesis/4x4/Const"] = _numel(block.layer0)
            counts["G_synthesis/4x4/Conv"] = _numel(block.layer1)
        else:
            counts[f"G_synthesis/{res}x{res}/Conv0_up"] = _numel(block.layer0)
            counts[f"G_synthesis/{res}x{res}/Conv1"] = _numel(block.layer1)
        lod = int(math.log2(syn.img_resolution // res))
        counts[f"G_synthesis/ToRGB_lod{lod}"] = _numel(block.torgb)
    return counts


def official_parameter_count(G: Generator1) -> int:
    """The "Total" of the official `Gs.print_layers()` (26,219,627 for the FFHQ 1024 generator)."""
    return sum(official_layer_param_counts(G).values())
