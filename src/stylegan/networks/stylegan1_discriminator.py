"""The StyleGAN (v1) discriminator: ProGAN's D with blur before downsampling and lod fade-in.

Karras et al. 2019, appendix C, and NVIDIA's TF release (`training/networks_stylegan.py`, `D_basic`): a fromRGB
(1x1 conv) per resolution; per block a 3x3 conv, then [1, 2, 1] blur, 3x3 conv and 2x2 average-pool
downsampling; at 4x4 minibatch stddev (group 4, ProGAN section 3), a 3x3 conv and two dense layers. During a
fade-in (fractional `lod`) the first block's output is blended with the fromRGB of the box-downsampled image,
as in ProGAN (Karras et al. 2018, figure 2).

Class conditioning follows the TF release's label-output selection ("LabelSwitch"): the last dense layer has
one output per class and the score is their dot product with the (one-hot) label c. This differs from the
StyleGAN2 projection discriminator, which maps c through an MLP.

`D(img, c)` accepts images at `img_resolution` (as the official D, with lower levels of detail upscaled by
nearest neighbour) or at any power-of-two resolution between the current one, `img_resolution /
2**floor(lod)`, and `img_resolution`; box downsampling makes both give the same score. Bias conventions
against the official variables are described in `stylegan1.py`.
"""
from __future__ import annotations

import copy
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.misc import assert_shape
from ..ops.upfirdn2d import filter2d, setup_filter
from .layers import (
    Conv2dLayer,
    FullyConnectedLayer,
    MinibatchStdLayer,
    check_resolution,
)
from .stylegan1 import check_lod, v1_channels


class DiscriminatorBlock1(nn.Module):
    """fromRGB (used when this is the finest active resolution), conv, blur, conv + 2x average-pool downsampling.

    in_channels:  feature maps at this resolution.
    out_channels: feature maps at half the resolution.
    resolution:   input resolution.
    img_channels: image channels of fromRGB.
    blur_filter:  taps of the blur before downsampling ([1, 2, 1] officially); None disables it.
    activation:   'lrelu' (official) or 'relu'.
    """

    def __init__(self, in_channels: int, out_channels: int, resolution: int, img_channels: int,
                 blur_filter: Optional[Sequence[float]] = (1, 2, 1), activation: str = "lrelu"):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.conv0 = Conv2dLayer(in_channels, in_channels, kernel_size=3, activation=activation)
        self.blur = blur_filter is not None
        if self.blur:
            self.register_buffer("blur_filter", setup_filter(list(blur_filter)))
        # A [1, 1] box filter turns the FIR decimation of conv2d_resample into 2x2 average pooling.
        self.conv1 = Conv2dLayer(in_channels, out_channels, kernel_size=3, activation=activation, down=2,
                                 resample_filter=(1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, self.resolution, self.resolution], "x")
        x = self.conv0(x)
        if self.blur:
            x = filter2d(x, self.blur_filter)
        return self.conv1(x)  # [N, out_channels, res / 2, res / 2]

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, in_channels={self.in_channels}, out_channels={self.out_channels}"


class DiscriminatorEpilogue1(nn.Module):
    """The 4x4 head: fromRGB, minibatch stddev, 3x3 conv, dense, output dense (with label selection).

    in_channels:        feature maps at 4x4.
    fc_channels:        width of the hidden dense layer (official nf(0)).
    c_dim:              label size (0 = one unconditional score).
    img_channels:       image channels of fromRGB.
    mbstd_group_size:   minibatch-stddev group size (None = whole batch).
    mbstd_num_channels: minibatch-stddev feature maps (0 disables).
    activation:         'lrelu' (official) or 'relu'.
    """

    def __init__(self, in_channels: int, fc_channels: int, c_dim: int, img_channels: int,
                 mbstd_group_size: Optional[int] = 4, mbstd_num_channels: int = 1, activation: str = "lrelu"):
        super().__init__()
        self.in_channels = in_channels
        self.c_dim = c_dim
        self.img_channels = img_channels
        self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation)
        self.fc = FullyConnectedLayer(in_channels * 16, fc_channels, activation=activation)
        self.out = FullyConnectedLayer(fc_channels, max(c_dim, 1))

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor]) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, 4, 4], "x")
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if self.c_dim > 0:  # official LabelSwitch: pick the output of the labelled class
            assert_shape(c, [x.shape[0], self.c_dim], "c")
            x = (x * c.to(x.dtype)).sum(dim=1, keepdim=True)
        return x  # [N, 1]


class Discriminator1(nn.Module):
    """StyleGAN (v1) D(img, c) -> scores [N, 1].

    c_dim:              label size (0 = unconditional).
    img_resolution:     input resolution (a power of two >= 4).
    img_channels:       input channels.
    fmap_base:          feature maps are min(fmap_base / 2**(stage * fmap_decay), fmap_max), stage = log2(res) - 1.
    fmap_decay:         see fmap_base.
    fmap_max:           feature-map cap.
    blur_filter:        taps of the blur before each downsampling; None disables it.
    mbstd_group_size:   minibatch-stddev group size (official 4).
    mbstd_num_channels: minibatch-stddev feature maps (official 1).
    activation:         'lrelu' (official) or 'relu'.
    """

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, fmap_base: int = 8192,
                 fmap_decay: float = 1.0, fmap_max: int = 512, blur_filter: Optional[Sequence[float]] = (1, 2, 1),
                 mbstd_group_size: Optional[int] = 4, mbstd_num_channels: int = 1, activation: str = "lrelu"):
        super().__init__()
        self.init_kwargs = copy.deepcopy(dict(
            c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels, fmap_base=fmap_base,
            fmap_decay=fmap_decay, fmap_max=fmap_max, blur_filter=list(blur_filter) if blur_filter else None,
            mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels, activation=activation))
        log2 = check_resolution(img_resolution)
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.max_lod = log2 - 2
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]

        def nf(res: int) -> int:
            return v1_channels(res, fmap_base, fmap_decay, fmap_max)

        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock1(nf(res), nf(res // 2), resolution=res,
                                                         img_channels=img_channels, blur_filter=blur_filter,
                                                         activation=activation))
        self.b4 = DiscriminatorEpilogue1(nf(4), nf(2), c_dim=c_dim, img_channels=img_channels,
                                         mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels,
                                         activation=activation)
        self.register_buffer("lod", torch.zeros([]))  # the official non-trainable `lod` variable

    def set_lod(self, lod: float) -> None:
        """Set the level of detail used when forward() is called without `lod`."""
        self.lod.fill_(check_lod(lod, self.max_lod))

    def forward(self, img: torch.Tensor, c: Optional[torch.Tensor] = None, lod: Optional[float] = None,
                update_emas: bool = False) -> torch.Tensor:
        del update_emas  # accepted for the StyleGAN2 calling convention
        lod = check_lod(self.lod if lod is None else lod, self.max_lod)
        level = int(math.floor(lod))
        alpha = lod - level  # weight of the coarser path, ProGAN's 1 - alpha
        cur_res = self.img_resolution >> level
        assert_shape(img, [None, self.img_channels, None, None], "img")
        in_res = img.shape[-1]
        if img.shape[-2] != in_res or in_res not in self.block_resolutions + [4] or in_res < cur_res:
            raise ValueError(f"img must be square with a power-of-two resolution in [{cur_res}, "
                             f"{self.img_resolution}] at lod {lod}, got shape {list(img.shape)}")
        img = img.to(torch.float32)
        if in_res > cur_res:
            img = F.avg_pool2d(img, in_res // cur_res)  # undoes nearest upscaling exactly

        if cur_res == 4:
            return self.b4(self.b4.fromrgb(img), c)
        block = getattr(self, f"b{cur_res}")
        x = block(block.fromrgb(img))
        if alpha > 0:  # fading in cur_res: blend with the coarser path's fromRGB
            coarser = self.b4 if cur_res == 8 else getattr(self, f"b{cur_res // 2}")
            x = torch.lerp(x, coarser.fromrgb(F.avg_pool2d(img, 2)), alpha)
        for res in self.block_resolutions:
            if res < cur_res:
                x = getattr(self, f"b{res}")(x)
        return self.b4(x, c)

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}"
