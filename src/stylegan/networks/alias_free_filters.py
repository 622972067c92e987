"""Filter design and layer geometry of the alias-free generator (StyleGAN3, Karras et al. 2021, section 3 and
appendix C).

Every synthesis layer i works at a sampling rate s_i with cutoff f_c,i and minimum stopband f_t,i; the cutoffs
and stopbands grow geometrically from the first layer to the last, and the last `num_critical` layers are
critically sampled (cutoff = s/2). `layer_geometry` computes that table (as float64 numpy, like the official
code, so sizes and filters come out identical); `lowpass_filter` designs the Kaiser-windowed low-pass filters
(separable sinc via scipy's `firwin`, or radially symmetric jinc for StyleGAN3-R, appendix C.3 / F) in float64
and rounds them to float32, so freshly built networks carry NVIDIA's exact `up_filter`/`down_filter` buffers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch


def lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> Optional[torch.Tensor]:
    """Kaiser-windowed low-pass filter taps (float32), or None for the identity (`numtaps` 1).

    numtaps: filter length (the radial filter is numtaps x numtaps).
    cutoff:  cutoff frequency f_c, in the units of `fs`.
    width:   transition band width (2 f_h); sets the Kaiser window's beta.
    fs:      sampling rate the filter runs at.
    radial:  2-D jinc filter (rotation-equivariant, StyleGAN3-R) instead of a separable 1-D sinc filter.
    """
    import scipy.signal
    import scipy.special

    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    if not radial:
        taps = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(taps, dtype=torch.float32)
    # jinc(r) = J1(2 pi f_c r) / (pi r), the 2-D ideal low-pass; windowed by the outer product of 1-D Kaisers.
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    taps = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    taps *= np.outer(window, window)
    taps /= np.sum(taps)
    return torch.as_tensor(taps, dtype=torch.float32)


@dataclass(frozen=True)
class LayerGeometry:
    """Sampling geometry of one synthesis stage (index 0 also describes the Fourier-feature input)."""

    size: int               # spatial size incl. margins (img_resolution for the last two layers)
    sampling_rate: int      # s_i
    cutoff: float           # f_c,i
    half_width: float       # f_h,i: half the transition band
    channels: int           # feature maps
    critically_sampled: bool


def layer_geometry(img_resolution: int, img_channels: int, channel_base: int, channel_max: int,
                   num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                   first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3,
                   margin_size: int = 10) -> List[LayerGeometry]:
    """The `num_layers + 1` stages (index num_layers = ToRGB); arguments as SynthesisNetwork3's."""
    if num_layers <= num_critical:
        raise ValueError(f"num_layers ({num_layers}) must exceed num_critical ({num_critical})")
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))  # rint: half to even, as NVIDIA
    channels[-1] = img_channels
    return [LayerGeometry(size=int(sizes[i]), sampling_rate=int(sampling_rates[i]), cutoff=float(cutoffs[i]),
                          half_width=float(half_widths[i]), channels=int(channels[i]),
                          critically_sampled=i >= num_layers - num_critical)
            for i in range(num_layers + 1)]
