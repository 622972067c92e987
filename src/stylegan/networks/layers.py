"""Equalized-learning-rate layers shared by StyleGAN v1 and v2 (Karras et al. 2018, section 4.1).

Weights are stored as unit Gaussians and scaled at run time by 1/sqrt(fan_in) (times `lr_multiplier`), so
Adam's per-parameter step sizes are the same for every layer. Parameter names match NVIDIA's
`networks_stylegan2.py` so official state dicts load by name.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from ..ops.bias_act import activation_gain, bias_act
from ..ops.conv2d_resample import conv2d_resample
from ..ops.misc import assert_shape
from ..ops.upfirdn2d import setup_filter

DEFAULT_BIAS_ACT_IMPL = "fast"


def check_resolution(img_resolution: int) -> int:
    """log2 of `img_resolution`, which must be a power of two >= 4."""
    log2 = int(math.log2(img_resolution)) if img_resolution > 0 else 0
    if img_resolution < 4 or img_resolution != 2 ** log2:
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
    return log2


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate.

    in_features:   input width.
    out_features:  output width.
    bias:          learn a bias.
    activation:    activation name (see ops.bias_act.ACTIVATIONS).
    lr_multiplier: learning-rate multiplier (0.01 in the mapping network).
    bias_init:     initial bias value (1 for style affines, so styles start at 1).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.bias_act_impl = DEFAULT_BIAS_ACT_IMPL  # ops.registry; set by runtime.path.apply_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, self.in_features], "x")
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation, impl=self.bias_act_impl)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Convolution with equalized learning rate, optional FIR up/downsampling, bias, activation and clamp.

    in_channels:     input channels.
    out_channels:    output channels.
    kernel_size:     square kernel width.
    bias:            learn a bias.
    activation:      activation name.
    up:              integer upsampling factor.
    down:            integer downsampling factor.
    resample_filter: FIR taps for resampling.
    conv_clamp:      clamp the output to +-this value (None disables); keeps float16 in range.
    channels_last:   store the weight in channels-last memory format.
    trainable:       False freezes the layer (weight and bias stop receiving gradients).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: Optional[float] = None,
                 channels_last: bool = False, trainable: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.trainable = trainable
        self.conv2d_resample_impl = "fast"  # ops.registry; set by runtime.path.apply_path
        self.bias_act_impl = DEFAULT_BIAS_ACT_IMPL  # ops.registry; set by runtime.path.apply_path
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = activation_gain(activation)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        self.weight = nn.Parameter(weight, requires_grad=trainable)
        self.bias = nn.Parameter(torch.zeros([out_channels]), requires_grad=trainable) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, None, None], "x")
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        # Official layers correlate except when upsampling, where they truly convolve.
        x = conv2d_resample(x, w.to(x.dtype), self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding, flip_weight=(self.up == 1), impl=self.conv2d_resample_impl)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp, impl=self.bias_act_impl)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, activation={self.activation}, "
                f"up={self.up}, down={self.down}")


class MinibatchStdLayer(nn.Module):
    """Minibatch standard deviation as extra feature maps (Karras et al. 2018, section 3).

    group_size:   samples per group (capped at the batch size; the batch must divide into groups).
    num_channels: number of channel groups, each giving one extra feature map.
    """

    def __init__(self, group_size: Optional[int], num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g != 0:
            raise ValueError(f"minibatch-stddev group size {g} does not divide the batch size {n}; "
                             f"use a batch size that is a multiple of {g} or change mbstd_group_size")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # [G, n/G, F, c, H, W]: group members are n/G apart
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # std over the group
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)  # [n/G, F, 1, 1]
        y = y.repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
