"""StyleGAN2 synthesis network (Karras et al. 2020, figure 2d for layers, figure 7 for skip/resnet).

A block per resolution 4, 8, ..., img_resolution. Each block has two modulated 3x3 convolutions (the first
upsamples; the 4x4 block starts from a learned constant instead), per-pixel noise, and either a toRGB
output summed across resolutions ('skip'), a residual connection ('resnet'), or only a final toRGB ('orig').
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
from torch import nn

from ..ops.bias_act import activation_gain, bias_act
from ..ops.misc import assert_dtype, assert_shape
from ..ops.modulated_conv2d import fused_by_default, modulated_conv2d
from ..ops.upfirdn2d import setup_filter, upsample2d
from .layers import DEFAULT_BIAS_ACT_IMPL, Conv2dLayer, FullyConnectedLayer, check_resolution

NOISE_MODES = ("random", "const", "none")
ARCHITECTURES = ("orig", "skip", "resnet")


def block_dtype(use_fp16: bool, force_fp32: bool, device: torch.device) -> torch.dtype:
    """float16 only where asked for and on CUDA; CPUs run float32 (their float16 convolutions are slow and lossy)."""
    return torch.float16 if use_fp16 and not force_fp32 and device.type == "cuda" else torch.float32


class SynthesisLayer(nn.Module):
    """Modulated conv + noise + bias + activation (figure 2d of the StyleGAN2 paper).

    in_channels:     input channels.
    out_channels:    output channels.
    w_dim:           intermediate latent size.
    resolution:      output resolution (sets the size of the constant noise buffer).
    kernel_size:     convolution kernel width.
    up:              upsampling factor (2 for the first layer of a block).
    use_noise:       add per-pixel noise scaled by a learned strength.
    activation:      activation name.
    resample_filter: FIR taps for upsampling.
    conv_clamp:      clamp the output to +-this value; None disables.
    channels_last:   channels-last weight layout.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: Optional[float] = None,
                 channels_last: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.conv2d_resample_impl = "fast"  # ops.registry; set by runtime.path.apply_path
        self.bias_act_impl = DEFAULT_BIAS_ACT_IMPL  # ops.registry; set by runtime.path.apply_path
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.act_gain = activation_gain(activation)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
            memory_format=memory_format))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = True,
                gain: float = 1.0) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        in_res = self.resolution // self.up
        assert_shape(x, [None, self.in_channels, in_res, in_res], "x")
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength

        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv, conv2d_resample_impl=self.conv2d_resample_impl)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp,
                        impl=self.bias_act_impl)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}, "
                f"resolution={self.resolution}, up={self.up}, activation={self.activation}")


class ToRGBLayer(nn.Module):
    """1x1 modulated convolution to image channels, without demodulation.

    in_channels:   input channels.
    out_channels:  image channels.
    w_dim:         intermediate latent size.
    kernel_size:   kernel width (1).
    conv_clamp:    clamp the output; None disables.
    channels_last: channels-last weight layout.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: Optional[float] = None, channels_last: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.conv_clamp = conv_clamp
        self.bias_act_impl = DEFAULT_BIAS_ACT_IMPL  # ops.registry; set by runtime.path.apply_path
        self.conv2d_resample_impl = "fast"
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
            memory_format=memory_format))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv,
                             conv2d_resample_impl=self.conv2d_resample_impl)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp, impl=self.bias_act_impl)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}"


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network.

    in_channels:           input channels (0 for the first block, which starts from a learned constant).
    out_channels:          output channels.
    w_dim:                 intermediate latent size.
    resolution:            output resolution.
    img_channels:          image channels.
    is_last:               the highest-resolution block.
    architecture:          'orig', 'skip' or 'resnet'.
    resample_filter:       FIR taps for upsampling.
    conv_clamp:            clamp convolution outputs; None disables.
    use_fp16:              run in float16 on CUDA.
    fp16_channels_last:    channels-last layout when in float16.
    fused_modconv_default: default for fused_modconv: True, False or 'inference_only' (True in eval mode); on
                           the CPU a default True means per-sample scaling (faster there).
    layer_kwargs:          passed to SynthesisLayer.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: Optional[float] = None, use_fp16: bool = False, fp16_channels_last: bool = False,
                 fused_modconv_default: Union[bool, str] = True, **layer_kwargs):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.fused_modconv_default = fused_modconv_default
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.upfirdn2d_impl = "reference"  # the skip image's upsampling; ops.registry, set by runtime.path.apply_path
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp,
                                        channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x: Optional[torch.Tensor], img: Optional[torch.Tensor], ws: torch.Tensor,
                force_fp32: bool = False, fused_modconv: Optional[bool] = None, update_emas: bool = False,
                **layer_kwargs):
        assert_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim], "ws")
        w_iter = iter(ws.unbind(dim=1))
        dtype = block_dtype(self.use_fp16, force_fp32, ws.device)
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format
        explicit = fused_modconv is not None
        if not explicit:
            fused_modconv = self.fused_modconv_default
        if fused_modconv == "inference_only":
            fused_modconv = not self.training
        if fused_modconv is True and not explicit:
            fused_modconv = fused_by_default(ws.device)  # per-sample on the CPU

        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1]).to(memory_format=memory_format)
        else:
            assert_shape(x, [None, self.in_channels, self.resolution // 2, self.resolution // 2], "x")
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=math.sqrt(0.5), **layer_kwargs)
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        if img is not None:
            assert_shape(img, [None, self.img_channels, self.resolution // 2, self.resolution // 2], "img")
            img = upsample2d(img, self.resample_filter, impl=self.upfirdn2d_impl)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv).to(torch.float32)
            img = img.add_(y) if img is not None else y
        assert_dtype(x, dtype, "x")
        if img is not None:
            assert_dtype(img, torch.float32, "img")
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, img_resolution, img_resolution].

    w_dim:          intermediate latent size.
    img_resolution: output resolution (a power of two >= 4).
    img_channels:   image channels.
    channel_base:   channels at resolution r are min(channel_base // r, channel_max).
    channel_max:    channel cap.
    num_fp16_res:   number of highest resolutions run in float16 on CUDA.
    block_kwargs:   passed to SynthesisBlock (architecture, conv_clamp, ...).
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 4, **block_kwargs):
        super().__init__()
        log2 = check_resolution(img_resolution)
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        if channels[img_resolution] < 1:
            raise ValueError(f"channel_base={channel_base} gives no channels at {img_resolution}x{img_resolution}; "
                             f"use channel_base >= {img_resolution}")
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, use_fp16=res >= fp16_resolution,
                                   **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, **block_kwargs) -> torch.Tensor:
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            # A block's toRGB shares its w with the next block's first convolution.
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            x, img = block(x, img, block_ws, **block_kwargs)
            w_idx += block.num_conv
        return img

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}"
