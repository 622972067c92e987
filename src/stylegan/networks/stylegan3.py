"""The alias-free StyleGAN3 generator (Karras et al. 2021, "Alias-Free Generative Adversarial Networks").

G(z, c) = synthesis(mapping(z, c)). The mapping network is StyleGAN2's (2 layers by default); the synthesis
network replaces StyleGAN2's learned constant, noise and up-sampling convolutions by (section 3, figure 4):
- `SynthesisInput`: Fourier features whose frequencies are rotated and translated per sample by an affine of
  w, and by the user-settable `transform` buffer (the inverse transform of the output image);
- `SynthesisLayer3`: modulated convolution (no noise) with an input gain from a running mean of the input
  magnitude (`magnitude_ema`), then `filtered_lrelu` at a temporarily raised sampling rate;
- the last `num_critical` layers critically sampled, the last one cropping the margin; ToRGB (a layer without
  demodulation); the image scaled by `output_scale`.

Configs T (translation equivariant: 3x3 convolutions, separable filters) and R (rotation equivariant: 1x1
convolutions, radial down filters, doubled channels) differ only in kwargs. Parameter and buffer names, kwargs
and layer names (`L{idx}_{size}_{channels}`) are NVIDIA's, so official state dicts load by name.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..ops.filtered_lrelu import filtered_lrelu
from ..ops.misc import assert_shape
from ..ops.modulated_conv2d import fused_by_default, modulated_conv2d
from .alias_free_filters import layer_geometry, lowpass_filter
from .layers import FullyConnectedLayer
from .generator import StyleGenerator
from .mapping import MappingNetwork
from .synthesis import NOISE_MODES, block_dtype


def make_transform(translate: Sequence[float] = (0, 0), angle: float = 0) -> torch.Tensor:
    """3x3 float64 matrix rotating the output by `angle` degrees, then translating it by `translate` (in image
    widths), as gen_images.py builds it; the synthesis input takes its inverse (see `set_transform`)."""
    s, c = math.sin(angle / 360 * math.pi * 2), math.cos(angle / 360 * math.pi * 2)
    return torch.tensor([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]], dtype=torch.float64)


class SynthesisInput(nn.Module):
    """Fourier features [N, C, size, size] at the first layer's sampling rate (section 3.1, appendix F).

    w_dim:         intermediate latent size.
    channels:      number of features (= random frequencies).
    size:          output size in samples (the image plus margins).
    sampling_rate: samples per unit image width.
    bandwidth:     frequencies are drawn from the disc of this radius; larger ones are faded out.
    """

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = int(size)
        self.sampling_rate = float(sampling_rate)
        self.bandwidth = float(bandwidth)
        # Frequencies uniform in the disc of radius `bandwidth`: Gaussian directions, radii remapped.
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        # The affine starts as the identity transform: weight 0, (r_c, r_s, t_x, t_y) = (1, 0, 0, 0).
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3, 3))  # user-set inverse transform of the output image
        self.register_buffer("freqs", freqs)    # [C, 2]
        self.register_buffer("phases", phases)  # [C]

    def sample_transforms(self, w: torch.Tensor) -> torch.Tensor:
        """Per-sample [N, 3, 3]: rotation, then translation from the affine of w, then the user transform."""
        t = self.affine(w)  # [N, 4] = (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)  # a pure rotation; the translation shares the scale
        n = w.shape[0]
        m_r = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])
        m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        m_t = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        return m_r @ m_t @ self.transform.unsqueeze(0)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        assert_shape(w, [None, self.w_dim], "w")
        transforms = self.sample_transforms(w)  # [N, 3, 3]
        freqs = self.freqs.unsqueeze(0)  # [1, C, 2]: row vectors, so x' = f @ T
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = freqs @ transforms[:, :2, :2]  # [N, C, 2]
        # Fade out frequencies that the user transform pushed beyond the bandwidth (zooming in).
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        # Sample positions of the pixel centres, in units of image width: [1, size, size, 2] (x, y).
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grid = nn.functional.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)

        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2)) * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()  # learned channel mixing, no bias
        x = x.permute(0, 3, 1, 2)  # [N, C, H, W]
        assert_shape(x, [w.shape[0], self.channels, self.size, self.size], "x")
        return x

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={self.size}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


class SynthesisLayer3(nn.Module):
    """Modulated conv -> filtered leaky ReLU (figure 4b); with `is_torgb`, the linear ToRGB output layer.

    w_dim:                 intermediate latent size.
    is_torgb:              the final ToRGB layer (1x1, no demodulation, linear, no resampling).
    is_critically_sampled: cutoff = sampling_rate / 2; never uses the radial filter.
    use_fp16:              run in float16 on CUDA.
    in_channels:           input channels.
    out_channels:          output channels.
    in_size:               input size in samples.
    out_size:              output size in samples.
    in_sampling_rate:      input sampling rate.
    out_sampling_rate:     output sampling rate.
    in_cutoff:             cutoff of the up filter (f_c of the input).
    out_cutoff:            cutoff of the down filter.
    in_half_width:         half transition band of the up filter.
    out_half_width:        half transition band of the down filter.
    conv_kernel:           convolution width (3 for T, 1 for R; ToRGB is always 1).
    filter_size:           filter taps per unit of the up/down factor.
    lrelu_upsampling:      how much the sampling rate is raised around the nonlinearity.
    use_radial_filters:    radially symmetric down filter (StyleGAN3-R), except when critically sampled.
    conv_clamp:            clamp the output to +-this value; None disables.
    magnitude_ema_beta:    decay of the running mean square of the input (updated when update_emas=True).
    """

    def __init__(self, w_dim: int, is_torgb: bool, is_critically_sampled: bool, use_fp16: bool,
                 in_channels: int, out_channels: int, in_size: int, out_size: int,
                 in_sampling_rate: int, out_sampling_rate: int, in_cutoff: float, out_cutoff: float,
                 in_half_width: float, out_half_width: float, conv_kernel: int = 3, filter_size: int = 6,
                 lrelu_upsampling: int = 2, use_radial_filters: bool = False, conv_clamp: Optional[float] = 256,
                 magnitude_ema_beta: float = 0.999):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = int(in_size)
        self.out_size = int(out_size)
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta
        self.filtered_lrelu_impl = "fast"  # ops.registry; set by runtime.path.apply_path
        self.conv2d_resample_impl = "fast"

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # Up filter at the raised rate with the input's cutoff; down filter with the output's (appendix C.2).
        self.up_factor = self._factor(self.tmp_sampling_rate, in_sampling_rate)
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", lowpass_filter(self.up_taps, in_cutoff, in_half_width * 2,
                                                         self.tmp_sampling_rate))
        self.down_factor = self._factor(self.tmp_sampling_rate, out_sampling_rate)
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("down_filter", lowpass_filter(self.down_taps, out_cutoff, out_half_width * 2,
                                                           self.tmp_sampling_rate, radial=self.down_radial))

        # Padding so that sample centres line up (the symmetric interpretation, appendix C.3).
        pad_total = (self.out_size - 1) * self.down_factor + 1  # output size before decimation
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor  # conv output after upsampling
        pad_total += self.up_taps + self.down_taps - 2  # lost to the two filters
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [pad_lo, pad_hi, pad_lo, pad_hi]

    @staticmethod
    def _factor(high: float, low: float) -> int:
        factor = int(np.rint(high / low))
        if low * factor != high:
            raise ValueError(f"sampling rates {high} and {low} are not integer multiples")
        return factor

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False,
                update_emas: bool = False, fused_modconv: Optional[bool] = None) -> torch.Tensor:
        """x [N, in_channels, in_size, in_size], w [N, w_dim] -> [N, out_channels, out_size, out_size].

        fused_modconv: True = one grouped convolution with per-sample weights (NVIDIA's); False = activations scaled
                       per sample around one shared convolution (same result to rounding; keeps exported graphs
                       batch-free); None = ops.modulated_conv2d.fused_by_default: False on the CPU, where it is
                       up to 1.6x faster here, NVIDIA's True elsewhere.
        """
        if fused_modconv is None:
            fused_modconv = fused_by_default(x.device)
        if noise_mode not in NOISE_MODES:  # accepted for API compatibility; StyleGAN3 has no noise
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        assert_shape(x, [None, self.in_channels, self.in_size, self.in_size], "x")
        assert_shape(w, [x.shape[0], self.w_dim], "w")
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        styles = self.affine(w)
        weight = self.weight
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * self.conv_kernel ** 2))
        else:
            # Pre-normalise weights per output channel and styles over the batch; demodulation cancels both
            # (up to its epsilon), but it keeps float16 in range. The style scale couples the batch, as NVIDIA's.
            weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
            styles = styles * styles.square().mean().rsqrt()

        dtype = block_dtype(self.use_fp16, force_fp32, x.device)
        # NVIDIA folds the (scalar) input gain into the demodulated weights; scaling the input is the same linear
        # map and brings it to unit mean square first. "Full" convolution (padding k-1): the filters crop.
        x = x.to(dtype) * input_gain.to(dtype)
        x = modulated_conv2d(x, weight, styles, padding=self.conv_kernel - 1, demodulate=not self.is_torgb,
                             fused_modconv=fused_modconv, conv2d_resample_impl=self.conv2d_resample_impl)
        gain, slope = (1, 1) if self.is_torgb else (np.sqrt(2), 0.2)
        x = filtered_lrelu(x, self.up_filter, self.down_filter, self.bias.to(dtype), up=self.up_factor,
                           down=self.down_factor, padding=self.padding, gain=gain, slope=slope,
                           clamp=self.conv_clamp, impl=self.filtered_lrelu_impl)
        assert_shape(x, [None, self.out_channels, self.out_size, self.out_size], "x")
        return x

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, is_torgb={self.is_torgb}, is_critically_sampled={self.is_critically_sampled}, "
                f"in_sampling_rate={self.in_sampling_rate:g}, out_sampling_rate={self.out_sampling_rate:g}, "
                f"in_cutoff={self.in_cutoff:g}, out_cutoff={self.out_cutoff:g}, in_size={self.in_size}, "
                f"out_size={self.out_size}, in_channels={self.in_channels}, out_channels={self.out_channels}")


class SynthesisNetwork3(nn.Module):
    """ws [N, num_layers + 2, w_dim] -> image [N, img_channels, img_resolution, img_resolution].

    w_dim:              intermediate latent size.
    img_resolution:     output resolution.
    img_channels:       output channels.
    channel_base:       channels of layer i: rint(min(channel_base / 2 / cutoff_i, channel_max)).
    channel_max:        channel cap.
    num_layers:         layers, excluding the Fourier-feature input and ToRGB.
    num_critical:       critically sampled layers at the end.
    first_cutoff:       cutoff f_c of the first layer.
    first_stopband:     minimum stopband f_t of the first layer.
    last_stopband_rel:  minimum stopband of the last layer, relative to its cutoff.
    margin_size:        extra samples on each side of the image in the non-final layers.
    output_scale:       multiplies the image.
    num_fp16_res:       layers whose sampling rate * 2**num_fp16_res exceeds img_resolution run in float16 (CUDA).
    conv_kernel:        convolution width (3: T, 1: R).
    filter_size:        filter taps per unit of resampling factor.
    lrelu_upsampling:   sampling-rate increase around the nonlinearity.
    use_radial_filters: radial down filters in the non-critical layers (R).
    conv_clamp:         clamp every layer output to +-this value; None disables.
    magnitude_ema_beta: decay of the input magnitude averages.
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                 first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10,
                 output_scale: float = 0.25, num_fp16_res: int = 4, conv_kernel: int = 3, filter_size: int = 6,
                 lrelu_upsampling: int = 2, use_radial_filters: bool = False, conv_clamp: Optional[float] = 256,
                 magnitude_ema_beta: float = 0.999):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res
        geometry = layer_geometry(img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
                                  first_cutoff, first_stopband, last_stopband_rel, margin_size)
        first = geometry[0]
        self.input = SynthesisInput(w_dim=w_dim, channels=first.channels, size=first.size,
                                    sampling_rate=first.sampling_rate, bandwidth=first.cutoff)
        self.layer_names: List[str] = []
        for idx, cur in enumerate(geometry):
            prev = geometry[max(idx - 1, 0)]
            layer = SynthesisLayer3(
                w_dim=w_dim, is_torgb=idx == num_layers, is_critically_sampled=cur.critically_sampled,
                use_fp16=cur.sampling_rate * 2 ** num_fp16_res > img_resolution,
                in_channels=prev.channels, out_channels=cur.channels, in_size=prev.size, out_size=cur.size,
                in_sampling_rate=prev.sampling_rate, out_sampling_rate=cur.sampling_rate,
                in_cutoff=prev.cutoff, out_cutoff=cur.cutoff, in_half_width=prev.half_width,
                out_half_width=cur.half_width, conv_kernel=conv_kernel, filter_size=filter_size,
                lrelu_upsampling=lrelu_upsampling, use_radial_filters=use_radial_filters, conv_clamp=conv_clamp,
                magnitude_ema_beta=magnitude_ema_beta)
            name = f"L{idx}_{layer.out_size}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False,
                update_emas: bool = False, fused_modconv: Optional[bool] = None) -> torch.Tensor:
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = ws.to(torch.float32).unbind(dim=1)  # ws[0]: input, ws[i + 1]: layer i (ToRGB: the last)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, noise_mode=noise_mode, force_fp32=force_fp32, update_emas=update_emas,
                                    fused_modconv=fused_modconv)
        if self.output_scale != 1:
            x = x * self.output_scale
        assert_shape(x, [None, self.img_channels, self.img_resolution, self.img_resolution], "img")
        return x.to(torch.float32)

    def ws_resolutions(self) -> List[int]:
        """The resolution each w acts at, for the tools' coarse/middle/fine ranges (tools/layers.py).

        StyleGAN3 layers do not grow in size, they widen their band: w0 drives the Fourier features (bandwidth
        f_c of the first layer), w(i+1) layer i (output cutoff f_c,i), the last w ToRGB (f_c = img_resolution/2).
        A band up to f_c is what an image of 2 f_c pixels holds (Nyquist), so w counts as acting at 2 f_c,
        rounded to the nearest power of two in log scale and capped at img_resolution.
        """
        cutoffs = [self.input.bandwidth] + [getattr(self, name).out_cutoff for name in self.layer_names]
        return [min(2 ** int(math.floor(math.log2(2 * f) + 0.5)), self.img_resolution) for f in cutoffs]

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, num_layers={self.num_layers}, num_critical={self.num_critical}")


class Generator3(StyleGenerator):
    """G(z, c) -> image, NCHW, with NVIDIA's StyleGAN3 constructor keywords.

    z_dim:             latent size.
    c_dim:             label size (0 = unconditional).
    w_dim:             intermediate latent size.
    img_resolution:    output resolution.
    img_channels:      output channels.
    mapping_kwargs:    passed to MappingNetwork (StyleGAN3 default: num_layers=2).
    synthesis_kwargs:  passed to SynthesisNetwork3 (channel_base, channel_max, num_layers, num_critical,
                       first_cutoff, first_stopband, last_stopband_rel, margin_size, output_scale, num_fp16_res,
                       conv_kernel, filter_size, lrelu_upsampling, use_radial_filters, conv_clamp,
                       magnitude_ema_beta).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: Optional[dict] = None, **synthesis_kwargs):
        super().__init__(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=mapping_kwargs,
                         **synthesis_kwargs)
        self.synthesis = SynthesisNetwork3(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                           **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **{"num_layers": 2, **(mapping_kwargs or {})})


    def ws_resolutions(self) -> List[int]:
        """The resolution each of the num_ws latents acts at (see SynthesisNetwork3.ws_resolutions)."""
        return self.synthesis.ws_resolutions()

    def set_transform(self, translate: Sequence[float] = (0, 0), angle: float = 0) -> None:
        """Translate (in image widths) and rotate (degrees) the output, as gen_images.py's --translate/--rotate."""
        with torch.no_grad():
            self.synthesis.input.transform.copy_(torch.linalg.inv(make_transform(translate, angle)))
