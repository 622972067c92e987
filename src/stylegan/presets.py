"""Typed training configurations and the named presets of the StyleGAN2-ADA paper.

`resolve_preset(name, resolution, ...)` returns a `TrainingConfig`; the CLI overrides fields from its flags
(as NVIDIA's stylegan3 `train.py` does) and `--dry-run` prints the result. The published presets come from
stylegan2-ada-pytorch's `train.py` (Karras et al. 2020, appendix D); 'auto' derives its values from the
resolution and the number of GPUs; 'cpu' is ours: a small network that trains at useful speed on 2 cores.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, Optional

from .errors import UserInputError


@dataclass
class NetworkConfig:
    """Architecture of G and D; `generator_kwargs`/`discriminator_kwargs` give the official constructor kwargs."""

    arch: str = "stylegan2"            # 'stylegan2', 'stylegan1' or 'stylegan3' (G only; D is StyleGAN2's)
    z_dim: int = 512                   # latent size
    w_dim: int = 512                   # intermediate latent size
    map_depth: int = 8                 # mapping network layers
    channel_base: int = 32768          # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512             # channel cap
    num_fp16_res: int = 4              # highest resolutions in float16 (CUDA only)
    conv_clamp: Optional[float] = 256  # clamp of convolution outputs
    g_architecture: str = "skip"       # generator: orig, skip, resnet
    d_architecture: str = "resnet"     # discriminator: orig, skip, resnet
    mbstd_group_size: int = 4          # minibatch-stddev group size
    mbstd_num_channels: int = 1        # minibatch-stddev feature maps
    freeze_d_layers: int = 0           # freeze the first D layers (transfer learning)
    # StyleGAN3 generators only (arch 'stylegan3'):
    g_channel_mult: int = 1            # G's channel_base and channel_max times this (2 for StyleGAN3-R, as train.py)
    conv_kernel: int = 3               # G convolution width (1 for StyleGAN3-R)
    use_radial_filters: bool = False   # radially symmetric down filters (StyleGAN3-R)
    magnitude_ema_beta: float = 0.999  # decay of the layer input magnitudes; train.py: 0.5 ** (batch / 20000)

    @property
    def generator_class(self) -> str:
        return f"{self.arch}.Generator"

    @property
    def discriminator_class(self) -> str:
        return "stylegan2.Discriminator" if self.arch == "stylegan3" else f"{self.arch}.Discriminator"

    def generator_kwargs(self, img_resolution: int, img_channels: int, c_dim: int) -> dict:
        if self.arch == "stylegan1":  # v1 counts feature maps as fmap_base / 2**(log2(res) - 1)
            return dict(z_dim=self.z_dim, c_dim=c_dim, w_dim=self.w_dim, img_resolution=img_resolution,
                        img_channels=img_channels, mapping_kwargs=dict(num_layers=self.map_depth),
                        fmap_base=self.channel_base // 2, fmap_max=self.channel_max)
        if self.arch == "stylegan3":  # the kwargs train.py passes, in its order
            return dict(z_dim=self.z_dim, w_dim=self.w_dim, mapping_kwargs=dict(num_layers=self.map_depth),
                        channel_base=self.channel_base * self.g_channel_mult,
                        channel_max=self.channel_max * self.g_channel_mult,
                        magnitude_ema_beta=self.magnitude_ema_beta, conv_kernel=self.conv_kernel,
                        use_radial_filters=self.use_radial_filters, num_fp16_res=self.num_fp16_res,
                        conv_clamp=self.conv_clamp, c_dim=c_dim, img_resolution=img_resolution,
                        img_channels=img_channels)
        return dict(z_dim=self.z_dim, c_dim=c_dim, w_dim=self.w_dim, img_resolution=img_resolution,
                    img_channels=img_channels, mapping_kwargs=dict(num_layers=self.map_depth),
                    channel_base=self.channel_base, channel_max=self.channel_max, num_fp16_res=self.num_fp16_res,
                    conv_clamp=self.conv_clamp, architecture=self.g_architecture,
                    fused_modconv_default="inference_only")  # per-sample scaling in training (faster), as train.py

    def discriminator_kwargs(self, img_resolution: int, img_channels: int, c_dim: int) -> dict:
        if self.arch == "stylegan1":
            return dict(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels,
                        fmap_base=self.channel_base // 2, fmap_max=self.channel_max,
                        mbstd_group_size=self.mbstd_group_size, mbstd_num_channels=self.mbstd_num_channels)
        return dict(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels,
                    architecture=self.d_architecture, channel_base=self.channel_base,
                    channel_max=self.channel_max, num_fp16_res=self.num_fp16_res, conv_clamp=self.conv_clamp,
                    block_kwargs=dict(freeze_layers=self.freeze_d_layers),
                    epilogue_kwargs=dict(mbstd_group_size=self.mbstd_group_size,
                                         mbstd_num_channels=self.mbstd_num_channels))


@dataclass
class TrainingConfig:
    """Everything a run needs besides the data; one field per published hyperparameter."""

    name: str = "stylegan2"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    batch_size: int = 32               # global minibatch
    g_lr: float = 0.002                # generator Adam learning rate
    d_lr: float = 0.002                # discriminator Adam learning rate
    betas: tuple = (0.0, 0.99)         # Adam betas
    eps: float = 1e-8                  # Adam epsilon
    r1_gamma: float = 10.0             # R1 weight (StyleGAN2 eq. 4 / Mescheder et al. 2018)
    ema_kimg: float = 10.0             # G EMA half-life in thousands of images
    ema_rampup: Optional[float] = None # EMA half-life ramp-up as a fraction of the images seen
    style_mixing_prob: float = 0.9     # style mixing regularisation (StyleGAN section 3.1)
    pl_weight: float = 2.0             # path length regularisation weight (StyleGAN2 section 3.2)
    pl_decay: float = 0.01             # decay of the running path length mean
    pl_batch_shrink: int = 2           # path length minibatch shrink
    g_reg_interval: Optional[int] = 4  # lazy regularisation interval of G (StyleGAN2 section 3.1); None: every step
    d_reg_interval: Optional[int] = 16 # lazy regularisation interval of D; None: in the same pass as the main loss
    loss: str = "r1"                   # 'r1' (logistic + R1) or 'wgan-gp' (Gulrajani et al. 2017, with drift)
    progressive: Optional[dict] = None # progressive growing schedule (training.progressive.LodSchedule), v1 only
    total_kimg: float = 25000          # training length
    aug: str = "ada"                   # ada, noaug, fixed
    augpipe: str = "bgc"               # augmentation pipe preset
    augment_impl: str = "nvidia"       # pipe execution: 'nvidia' (NVIDIA's augment.py) or 'exact' (training/augment.py)
    aug_p: float = 0.2                 # initial / fixed augmentation probability (for 'fixed')
    ada_target: float = 0.6            # ADA overfitting target for sign(D(real))
    ada_kimg: float = 500              # ADA: images for p to go 0 -> 1
    ada_interval: int = 4              # ADA: minibatches between p updates
    ref_gpus: int = 8                  # GPUs the preset was tuned for (batch per GPU = batch / ref_gpus)
    # StyleGAN3 D blur (training/blur.py): sigma fades from blur_init_sigma to 0 over blur_fade_kimg; 0 = off
    blur_init_sigma: float = 0.0       # initial blur sigma in pixels (train.py: 10 for stylegan3-r)
    blur_fade_kimg: float = 0.0        # thousands of images until the blur is gone (train.py: batch * 200 / 32)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainingConfig":
        data = dict(data)
        network = NetworkConfig(**data.pop("network", {}))
        if "betas" in data:
            data["betas"] = tuple(data["betas"])
        data.setdefault("augment_impl", "exact")  # a run saved before the field trained with the exact pipe
        return cls(network=network, **data)


# name: (ref_gpus, kimg, batch, mbstd, fmaps, lr, gamma, ema_kimg, ema_rampup, map_depth)
# stylegan2-ada-pytorch's table, except the G EMA ramp-up of 'stylegan2': NVIDIA's stylegan3 train.py, whose
# `--cfg=stylegan2` command lines ours follow (--batch sets ema_kimg to batch * 10 / 32 as there), keeps
# training_loop's default ema_rampup 0.05 (ada-pytorch's 'stylegan2': None). Without it G_ema averages over the
# first 10 kimg early on (docs/training_parity.md, row 1).
_PUBLISHED: Dict[str, tuple] = {
    "stylegan2": (8, 25000, 32, 4, 1.0, 0.002, 10.0, 10.0, 0.05, 8),
    "paper256": (8, 25000, 64, 8, 0.5, 0.0025, 1.0, 20.0, None, 8),
    "paper512": (8, 25000, 64, 8, 1.0, 0.0025, 0.5, 20.0, None, 8),
    "paper1024": (8, 25000, 32, 4, 2.0, 0.002, 2.0, 10.0, None, 8),
    "cifar": (2, 100000, 64, 32, 1.0, 0.0025, 0.01, 500.0, 0.05, 2),
}
PRESET_DESCRIPTIONS: Dict[str, str] = {
    "auto": "derived from resolution and GPU count (StyleGAN2-ADA 'auto')",
    "stylegan2": "StyleGAN2 config F (FFHQ 1024, 8 GPUs)",
    "paper256": "StyleGAN2-ADA paper, 256x256 (8 GPUs)",
    "paper512": "StyleGAN2-ADA paper, 512x512 (8 GPUs)",
    "paper1024": "StyleGAN2-ADA paper, 1024x1024 (8 GPUs)",
    "cifar": "StyleGAN2-ADA paper, CIFAR-10 32x32 (2 GPUs)",
    "cpu": "small 32x32 network that trains at useful speed on 2 CPU cores",
    "stylegan3-t": "StyleGAN3-T, translation equivariant (train.py --cfg=stylegan3-t defaults, gamma 8.2)",
    "stylegan3-r": "StyleGAN3-R, rotation equivariant (train.py --cfg=stylegan3-r defaults, gamma 32.8)",
}
PRESET_NAMES = tuple(PRESET_DESCRIPTIONS)


def _from_spec(name: str, ref_gpus, kimg, batch, mbstd, fmaps, lr, gamma, ema, ramp, map_depth) -> TrainingConfig:
    network = NetworkConfig(map_depth=map_depth, channel_base=int(fmaps * 32768), mbstd_group_size=mbstd)
    cfg = TrainingConfig(name=name, network=network, batch_size=batch, g_lr=lr, d_lr=lr, r1_gamma=gamma,
                         ema_kimg=ema, ema_rampup=ramp, total_kimg=kimg, ref_gpus=ref_gpus)
    if name == "cifar":  # as in the paper: no path length regularisation or mixing, 'orig' D
        cfg.pl_weight = 0.0
        cfg.style_mixing_prob = 0.0
        cfg.network.d_architecture = "orig"
    return cfg


def resolve_preset(name: str, resolution: int, num_gpus: int = 1) -> TrainingConfig:
    """The named preset for a dataset of `resolution`, trained on `num_gpus` devices."""
    if name not in PRESET_DESCRIPTIONS:
        raise UserInputError(f"unknown preset {name!r}; choose one of: {', '.join(PRESET_NAMES)}")
    if resolution < 4 or resolution & (resolution - 1):
        raise UserInputError(f"resolution must be a power of two >= 4, got {resolution}")
    if name in _PUBLISHED:
        return _from_spec(name, *_PUBLISHED[name])
    if name in ("stylegan3-t", "stylegan3-r"):
        return _stylegan3(name)
    if name == "auto":
        batch = max(min(num_gpus * min(4096 // resolution, 32), 64), num_gpus)
        return _from_spec("auto", -1, 25000, batch, min(batch // num_gpus, 4), 1.0 if resolution >= 512 else 0.5,
                          0.002 if resolution >= 1024 else 0.0025, 0.0002 * resolution ** 2 / batch, batch * 10 / 32,
                          0.05, 2)
    # 'cpu': a narrow network (64 channels up to 8x8, then halving: 32 at 16x16, 16 at 32x32), short EMA, no path
    # length regularisation (as the paper's 'cifar'): minutes, not days, to recognisable samples at 32x32. R1 gamma
    # 1 (rather than the 'auto' 0.0064) keeps D smooth enough that G does not chase pixel-level texture with its
    # noise inputs early on. channel_base 512 (until 2026-11-29: 1024, 64 channels up to 16x16) trains 1.7x the
    # images per second in float32 and, in make demo's 10 minutes on an AVX2-only CPU, reached 115 kimg and fmnist
    # FID 11.4 where 1024 reached 62.5 kimg and 15.9 (docs/performance.md, Whole loop).
    network = NetworkConfig(z_dim=64, w_dim=64, map_depth=2, channel_base=512, channel_max=64,
                            num_fp16_res=0, conv_clamp=256, mbstd_group_size=4)
    return TrainingConfig(name="cpu", network=network, batch_size=32, g_lr=0.002, d_lr=0.002, r1_gamma=1.0,
                          ema_kimg=1.0, ema_rampup=0.05, pl_weight=0.0, total_kimg=200, ref_gpus=1, augpipe="bgc")


def _stylegan3(name: str) -> TrainingConfig:
    """StyleGAN3 as NVIDIA's train.py sets it up (Karras et al. 2021, appendix D) at its defaults: batch 32,
    2 mapping layers, channel_base 32768, G lr 0.0025, D lr 0.002, EMA batch*10/32 kimg, no style mixing and no
    path length regularisation, so no lazy G regularisation either (G_reg_interval None: G's Adam keeps its lr
    and betas unscaled); R doubles G's channels and uses 1x1 convolutions, radial filters and the D blur
    (sigma 10 fading out over batch*200/32 kimg). Batch-dependent values follow `stylegan3_batch`.
    train.py requires --gamma; the defaults here are NVIDIA's recommendation for FFHQ at 1024x1024 (T 8.2,
    R 32.8): smaller datasets/resolutions want less (their README: 2 at 256x256, 6.6 for MetFaces-U)."""
    network = NetworkConfig(arch="stylegan3", map_depth=2)
    if name == "stylegan3-r":
        network.g_channel_mult, network.conv_kernel, network.use_radial_filters = 2, 1, True
    cfg = TrainingConfig(name=name, network=network, g_lr=0.0025, d_lr=0.002,
                         r1_gamma=8.2 if name == "stylegan3-t" else 32.8, ema_rampup=0.05,
                         style_mixing_prob=0.0, pl_weight=0.0, g_reg_interval=None, ref_gpus=8,
                         blur_init_sigma=10.0 if name == "stylegan3-r" else 0.0)
    return stylegan3_batch(cfg, 32)


def stylegan3_batch(cfg: TrainingConfig, batch: int) -> TrainingConfig:
    """Set the batch of a StyleGAN3 config and what train.py derives from it (in place; returns `cfg`):
    EMA half-life batch*10/32 kimg, magnitude EMA beta 0.5 ** (batch / 20000), and the D blur fade
    batch*200/32 kimg where the config blurs."""
    cfg.batch_size = batch
    cfg.ema_kimg = batch * 10 / 32
    cfg.network.magnitude_ema_beta = 0.5 ** (batch / 20000)
    if cfg.blur_init_sigma > 0:
        cfg.blur_fade_kimg = batch * 200 / 32
    return cfg


ARCHITECTURES = ("stylegan2", "stylegan1")
LOSSES = ("r1", "wgan-gp")


def with_stylegan1(cfg: TrainingConfig, resolution: int, num_gpus: int = 1) -> TrainingConfig:
    """Turn a preset into StyleGAN (v1) training as in the official FFHQ setup (Karras et al. 2019, appendix C).

    v1 trains with progressive growing, R1 (gamma 10) in every D step, no path length regularisation and no
    augmentation. The paper presets get the official FFHQ network and schedule (start at 8x8, 600 + 600 kimg
    per resolution, minibatch and learning rate per resolution); `cpu` and custom configs keep their network
    and get a short schedule (2 + 2 kimg per resolution at their own batch and learning rate).
    """
    from .training.progressive import LodSchedule, official_ffhq_schedule

    cfg = TrainingConfig.from_dict(cfg.to_dict())
    cfg.network.arch = "stylegan1"
    cfg.network.num_fp16_res = 0
    cfg.pl_weight = 0.0
    cfg.g_reg_interval = None
    cfg.d_reg_interval = None
    cfg.aug = "noaug"
    if cfg.name not in _PUBLISHED and cfg.name != "auto":  # 'cpu' and custom configs keep their network
        schedule = LodSchedule(img_resolution=resolution, initial_resolution=min(8, resolution), lod_training_kimg=2,
                               lod_transition_kimg=2, minibatch_base=cfg.batch_size, num_gpus=num_gpus,
                               G_lrate_base=cfg.g_lr, D_lrate_base=cfg.d_lr, tick_kimg_base=1, tick_kimg_dict={})
    else:  # the official FFHQ network: fmap_base 8192, 8 mapping layers, 512-d latents
        cfg.network.channel_base, cfg.network.channel_max, cfg.network.map_depth = 16384, 512, 8
        cfg.network.z_dim = cfg.network.w_dim = 512
        cfg.r1_gamma = 10.0
        cfg.ema_kimg, cfg.ema_rampup = 10.0, None
        schedule = official_ffhq_schedule(resolution, num_gpus)
    cfg.progressive = schedule.to_dict()
    cfg.name = f"{cfg.name}-stylegan1"
    return cfg
