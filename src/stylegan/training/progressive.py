"""Progressive growing (Karras et al. 2018, ProGAN section 3), as used to train StyleGAN (v1).

The level of detail `lod` runs from log2(img_resolution / initial_resolution) down to 0: each phase shows
`lod_training_kimg` thousand images at a fixed lod, then fades the next resolution in over
`lod_transition_kimg`, lowering lod linearly by 1. Everything here is a pure function of the image counter
(kimg = images shown / 1000), as NVIDIA's `training_schedule()` in `training/training_loop.py` of the TF
release, so a resumed run continues exactly.

Also here: `lod_images` (the official `process_reals` fade of real images, so reals look like G's output
at the same lod). The lod-aware style mixing is `losses.mix_styles(..., num_active=...)`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Dict, Tuple

import torch
import torch.nn.functional as F

# The official tick intervals per resolution (TF release, training_schedule()).
OFFICIAL_TICK_KIMG = MappingProxyType({4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 30, 1024: 20})

# Official FFHQ/CelebA-HQ minibatches from the TF release's train.py, keyed by GPU count:
# (minibatch_base, minibatch_dict), the minibatch being the total over all GPUs.
OFFICIAL_MINIBATCH = MappingProxyType({
    1: (4, MappingProxyType({4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4})),
    2: (8, MappingProxyType({4: 256, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8})),
    4: (16, MappingProxyType({4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16})),
    8: (32, MappingProxyType({4: 512, 8: 256, 16: 128, 32: 64, 64: 32})),
})
OFFICIAL_FFHQ_LRATE = MappingProxyType({128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003})


def _int_keys(d: Dict) -> Dict[int, float]:
    return {int(k): v for k, v in d.items()}


@dataclass(frozen=True)
class LodSchedule:
    """The level-of-detail, minibatch and learning-rate schedule of progressive growing.

    img_resolution:        final resolution (lod 0).
    initial_resolution:    resolution of the first phase (8 in the official FFHQ config).
    lod_training_kimg:     thousands of images per stable phase.
    lod_transition_kimg:   thousands of images per fade-in.
    minibatch_base:        total minibatch for resolutions not in minibatch_dict.
    minibatch_dict:        total minibatch per resolution.
    max_minibatch_per_gpu: per-GPU minibatch cap per resolution.
    num_gpus:              the minibatch is rounded down to a multiple of this.
    G_lrate_base:          generator learning rate for resolutions not in G_lrate_dict.
    G_lrate_dict:          generator learning rate per resolution.
    D_lrate_base:          discriminator learning rate for resolutions not in D_lrate_dict.
    D_lrate_dict:          discriminator learning rate per resolution.
    lrate_rampup_kimg:     linear learning-rate warm-up from 0 over this many kimg (0 disables).
    tick_kimg_base:        progress-report interval for resolutions not in tick_kimg_dict.
    tick_kimg_dict:        progress-report interval per resolution.
    """

    img_resolution: int
    initial_resolution: int = 4
    lod_training_kimg: float = 600
    lod_transition_kimg: float = 600
    minibatch_base: int = 16
    minibatch_dict: Dict[int, int] = field(default_factory=dict)
    max_minibatch_per_gpu: Dict[int, int] = field(default_factory=dict)
    num_gpus: int = 1
    G_lrate_base: float = 0.001
    G_lrate_dict: Dict[int, float] = field(default_factory=dict)
    D_lrate_base: float = 0.001
    D_lrate_dict: Dict[int, float] = field(default_factory=dict)
    lrate_rampup_kimg: float = 0
    tick_kimg_base: float = 160
    tick_kimg_dict: Dict[int, float] = field(default_factory=lambda: dict(OFFICIAL_TICK_KIMG))

    def __post_init__(self):
        for name in ("img_resolution", "initial_resolution"):
            res = getattr(self, name)
            if res < 4 or res & (res - 1):
                raise ValueError(f"{name} must be a power of two >= 4, got {res}")
        if self.initial_resolution > self.img_resolution:
            raise ValueError(f"initial_resolution {self.initial_resolution} exceeds "
                             f"img_resolution {self.img_resolution}")
        if self.lod_training_kimg < 0 or self.lod_transition_kimg < 0:
            raise ValueError("lod_training_kimg and lod_transition_kimg must be >= 0")

    @property
    def max_lod(self) -> int:
        """The lod at kimg 0: log2(img_resolution / initial_resolution)."""
        return int(math.log2(self.img_resolution)) - int(math.log2(self.initial_resolution))

    def lod_at(self, kimg: float) -> float:
        """Level of detail after `kimg` thousand images (ProGAN section 3; official training_schedule)."""
        phase_kimg_total = self.lod_training_kimg + self.lod_transition_kimg
        phase_idx = int(math.floor(kimg / phase_kimg_total)) if phase_kimg_total > 0 else 0
        phase_kimg = kimg - phase_idx * phase_kimg_total
        lod = float(self.max_lod - phase_idx)
        if self.lod_transition_kimg > 0:
            lod -= max(phase_kimg - self.lod_training_kimg, 0.0) / self.lod_transition_kimg
        return max(lod, 0.0)

    def resolution_at(self, kimg: float) -> int:
        """The finest active resolution (during a fade-in, the one being faded in)."""
        return self.img_resolution >> int(math.floor(self.lod_at(kimg)))

    def is_fading_at(self, kimg: float) -> bool:
        """True during a fade-in (fractional lod)."""
        lod = self.lod_at(kimg)
        return lod != math.floor(lod)

    def batch_size_at(self, kimg: float) -> int:
        """Total minibatch (over all GPUs) at `kimg`."""
        res = self.resolution_at(kimg)
        batch = self.minibatch_dict.get(res, self.minibatch_base)
        batch -= batch % self.num_gpus
        if res in self.max_minibatch_per_gpu:
            batch = min(batch, self.max_minibatch_per_gpu[res] * self.num_gpus)
        return batch

    def lr_at(self, kimg: float) -> Tuple[float, float]:
        """(G learning rate, D learning rate) at `kimg`, with the optional linear warm-up."""
        res = self.resolution_at(kimg)
        g_lr = self.G_lrate_dict.get(res, self.G_lrate_base)
        d_lr = self.D_lrate_dict.get(res, self.D_lrate_base)
        if self.lrate_rampup_kimg > 0:
            rampup = min(kimg / self.lrate_rampup_kimg, 1.0)
            g_lr, d_lr = g_lr * rampup, d_lr * rampup
        return g_lr, d_lr

    def tick_kimg_at(self, kimg: float) -> float:
        """Progress-report interval at `kimg`."""
        return self.tick_kimg_dict.get(self.resolution_at(kimg), self.tick_kimg_base)

    def to_dict(self) -> dict:
        """A JSON-able dict (dict keys stay ints here; from_dict also accepts JSON's string keys)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LodSchedule":
        """Inverse of to_dict, also after a JSON round trip (which turns int keys into strings)."""
        d = dict(d)
        for name in ("minibatch_dict", "max_minibatch_per_gpu", "G_lrate_dict", "D_lrate_dict", "tick_kimg_dict"):
            if name in d:
                d[name] = _int_keys(d[name])
        return cls(**d)


def official_ffhq_schedule(img_resolution: int = 1024, num_gpus: int = 1) -> LodSchedule:
    """The official StyleGAN FFHQ schedule (TF release train.py): start at 8x8, 600 + 600 kimg per phase."""
    if num_gpus not in OFFICIAL_MINIBATCH:
        raise ValueError(f"the official config lists minibatches for {sorted(OFFICIAL_MINIBATCH)} GPUs, got {num_gpus}")
    base, per_res = OFFICIAL_MINIBATCH[num_gpus]
    return LodSchedule(img_resolution=img_resolution, initial_resolution=8, lod_training_kimg=600,
                       lod_transition_kimg=600, minibatch_base=base, minibatch_dict=dict(per_res), num_gpus=num_gpus,
                       G_lrate_dict=dict(OFFICIAL_FFHQ_LRATE), D_lrate_dict=dict(OFFICIAL_FFHQ_LRATE))


def optimizer_reset_needed(prev_lod: float, lod: float) -> bool:
    """The official loop resets Adam's state whenever floor(lod) or ceil(lod) changes (a new phase starts)."""
    return math.floor(prev_lod) != math.floor(lod) or math.ceil(prev_lod) != math.ceil(lod)


def lod_images(img: torch.Tensor, lod: float, full_resolution: bool = True) -> torch.Tensor:
    """Real images as seen at level of detail `lod` (the official `process_reals` fade).

    Box-downsample by 2**floor(lod); during a fade-in blend with the image box-downsampled once more and
    nearest-upsampled, weight frac(lod) (ProGAN section 3, figure 2); then nearest-upsample back to the
    input resolution unless `full_resolution` is False. This matches what the v1 G outputs at the same lod.

    img:             images [N, C, H, W], H and W divisible by 2**ceil(lod).
    lod:             level of detail (>= 0).
    full_resolution: return [N, C, H, W]; False returns [N, C, H / 2**floor(lod), W / 2**floor(lod)].
    """
    if lod < 0:
        raise ValueError(f"lod must be >= 0, got {lod}")
    level = int(math.floor(lod))
    alpha = lod - level
    if img.ndim != 4 or img.shape[2] % (2 ** math.ceil(lod)) or img.shape[3] % (2 ** math.ceil(lod)):
        raise ValueError(f"images [N, C, H, W] with sides divisible by {2 ** math.ceil(lod)} needed, "
                         f"got {list(img.shape)}")
    x = F.avg_pool2d(img, 2 ** level) if level > 0 else img
    if alpha > 0:
        coarse = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(x, coarse, alpha)
    if full_resolution and level > 0:
        x = F.interpolate(x, scale_factor=2 ** level, mode="nearest")
    return x
