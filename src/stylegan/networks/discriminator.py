"""The StyleGAN2 discriminator (Karras et al. 2020, figure 7: orig, skip and resnet), with label projection.

Blocks run from img_resolution down to 8; the epilogue at 4x4 adds minibatch stddev, a 3x3 conv, a dense
layer and the output. A conditional D maps the label through its own MLP to `cmap` and takes the scaled
dot product with the output features (projection discriminator, Miyato & Koyama 2018); with
`label_select` it picks the labelled class's output instead (TF StyleGAN2's D_stylegan2).
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence

import math
import torch
from torch import nn

from ..ops.misc import assert_dtype, assert_shape
from ..ops.upfirdn2d import downsample2d, setup_filter
from .layers import (
    Conv2dLayer,
    FullyConnectedLayer,
    MinibatchStdLayer,
    check_resolution,
)
from .mapping import MappingNetwork
from .synthesis import ARCHITECTURES, block_dtype


class DiscriminatorBlock(nn.Module):
    """One resolution of the discriminator.

    in_channels:        input channels (0 for the first block, which reads the image through fromRGB).
    tmp_channels:       channels inside the block.
    out_channels:       output channels (at half the resolution).
    resolution:         input resolution.
    img_channels:       image channels.
    first_layer_idx:    index of this block's first layer, for freezing.
    architecture:       'orig', 'skip' or 'resnet'.
    activation:         activation name.
    resample_filter:    FIR taps for downsampling.
    conv_clamp:         clamp convolution outputs; None disables.
    use_fp16:           run in float16 on CUDA.
    fp16_channels_last: channels-last layout when in float16.
    freeze_layers:      layers with index below this are frozen (transfer learning, Mo et al. 2020).
    """

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int,
                 first_layer_idx: int, architecture: str = "resnet", activation: str = "lrelu",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: Optional[float] = None,
                 use_fp16: bool = False, fp16_channels_last: bool = False, freeze_layers: int = 0):
        super().__init__()
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"in_channels must be 0 or tmp_channels ({tmp_channels}), got {in_channels}")
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.upfirdn2d_impl = "reference"  # the skip image's downsampling; ops.registry, set by runtime.path.apply_path

        self.num_layers = 0

        def trainable() -> bool:
            layer_idx = first_layer_idx + self.num_layers
            self.num_layers += 1
            return layer_idx >= freeze_layers

        common = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, trainable=trainable(),
                                 resample_filter=resample_filter, **common)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=trainable(), resample_filter=resample_filter,
                                    channels_last=self.channels_last)

    def forward(self, x: Optional[torch.Tensor], img: Optional[torch.Tensor], force_fp32: bool = False):
        device = (x if x is not None else img).device
        dtype = block_dtype(self.use_fp16, force_fp32, device)
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format
        if x is not None:
            assert_shape(x, [None, self.in_channels, self.resolution, self.resolution], "x")
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0 or self.architecture == "skip":
            assert_shape(img, [None, self.img_channels, self.resolution, self.resolution], "img")
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            skip = self.architecture == "skip"
            img = downsample2d(img, self.resample_filter, impl=self.upfirdn2d_impl) if skip else None

        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(x)
            x = self.conv1(x)
        assert_dtype(x, dtype, "x")
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 head: [fromRGB], minibatch stddev, conv, dense, output (and label projection).

    in_channels:        input channels.
    cmap_dim:           label-projection size (0 = unconditional, one logit).
    resolution:         4.
    img_channels:       image channels.
    architecture:       'orig', 'skip' or 'resnet'.
    mbstd_group_size:   minibatch-stddev group size (None = whole batch).
    mbstd_num_channels: minibatch-stddev feature maps (0 disables).
    activation:         activation name.
    conv_clamp:         clamp convolution outputs; None disables.
    fc_channels:        width of the dense layer (default in_channels; TF's nf(0) can differ from nf(1)).
    clamp_fromrgb:      clamp the skip architecture's 4x4 fromRGB too, as TF stylegan2-ada's D_main does (the
                        PyTorch release does not).
    cmap_scale:         multiply the projection score by 1/sqrt(cmap_dim) (False: TF StyleGAN2's plain
                        label selection sum(out * c)).
    """

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: Optional[int] = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: Optional[float] = None, fc_channels: Optional[int] = None,
                 clamp_fromrgb: bool = False, cmap_scale: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        self.cmap_scale = cmap_scale
        fc_channels = in_channels if fc_channels is None else fc_channels
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation,
                                       conv_clamp=conv_clamp if clamp_fromrgb else None)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, fc_channels, activation=activation)
        self.out = FullyConnectedLayer(fc_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: Optional[torch.Tensor], cmap: Optional[torch.Tensor],
                force_fp32: bool = False) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, self.resolution, self.resolution], "x")
        x = x.to(torch.float32)
        if self.architecture == "skip":
            assert_shape(img, [None, self.img_channels, self.resolution, self.resolution], "img")
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            assert_shape(cmap, [None, self.cmap_dim], "cmap")
            x = (x * cmap).sum(dim=1, keepdim=True)
            if self.cmap_scale:
                x = x * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """D(img, c) -> logits [N, 1].

    c_dim:           label size (0 = unconditional).
    img_resolution:  input resolution.
    img_channels:    input channels.
    architecture:    'orig', 'skip' or 'resnet'.
    channel_base:    channels at resolution r are min(channel_base // r, channel_max).
    channel_max:     channel cap.
    num_fp16_res:    number of highest resolutions run in float16 on CUDA.
    conv_clamp:      clamp convolution outputs; None disables.
    cmap_dim:        label-projection size (default: channels at 4x4).
    block_kwargs:    passed to DiscriminatorBlock (freeze_layers, ...).
    mapping_kwargs:  passed to the label MappingNetwork.
    epilogue_kwargs: passed to DiscriminatorEpilogue (mbstd_group_size, mbstd_num_channels, fc_channels,
                     clamp_fromrgb).
    label_select:    condition as TF StyleGAN2's D_stylegan2 (and v1): one output per class, the score is
                     sum(out * c), no label mapping; False: projection through the label MappingNetwork.
    """

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, architecture: str = "resnet",
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 4,
                 conv_clamp: Optional[float] = 256, cmap_dim: Optional[int] = None, block_kwargs: Optional[dict] = None,
                 mapping_kwargs: Optional[dict] = None, epilogue_kwargs: Optional[dict] = None,
                 label_select: bool = False):
        super().__init__()
        self.init_kwargs = copy.deepcopy(dict(
            c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels, architecture=architecture,
            channel_base=channel_base, channel_max=channel_max, num_fp16_res=num_fp16_res, conv_clamp=conv_clamp,
            cmap_dim=cmap_dim, block_kwargs=block_kwargs or {}, mapping_kwargs=mapping_kwargs or {},
            epilogue_kwargs=epilogue_kwargs or {}, label_select=label_select))
        log2 = check_resolution(img_resolution)
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        if channels[img_resolution] < 1:
            raise ValueError(f"channel_base={channel_base} gives no channels at {img_resolution}x{img_resolution}; "
                             f"use channel_base >= {img_resolution}")
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if label_select:
            cmap_dim = c_dim
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim
        self.label_select = label_select

        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res], channels[res // 2],
                                       resolution=res, first_layer_idx=layer_idx, use_fp16=res >= fp16_resolution,
                                       **(block_kwargs or {}), **common)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0 and not label_select:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **(epilogue_kwargs or {}),
                                        cmap_scale=not label_select, **common)

    def forward(self, img: torch.Tensor, c: Optional[torch.Tensor] = None, update_emas: bool = False,
                **block_kwargs) -> torch.Tensor:
        assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], "img")
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, **block_kwargs)
        cmap = None
        if self.c_dim > 0:
            if self.label_select:
                assert_shape(c, [None, self.c_dim], "c")
                cmap = c.to(torch.float32)
            else:
                cmap = self.mapping(None, c)
        return self.b4(x, img, cmap)
