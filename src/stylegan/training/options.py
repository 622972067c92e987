"""Options of one training run (besides the TrainingConfig of the networks and hyperparameters)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Tuple

from ..presets import TrainingConfig

PRECISIONS = ("auto", "fp32", "bf16")
COMPILE_CHOICES = ("auto", "off", "default", "reduce-overhead", "max-autotune")


@dataclass
class RunOptions:
    """What `stylegan train` maps its flags to.

    data:        dataset zip or folder of images.
    outdir:      parent folder of run directories.
    config:      networks and hyperparameters (a resolved preset, flags applied).
    cond:        train class-conditionally on the dataset labels.
    mirror:      add x-flipped copies of the dataset.
    tick_kimg:   thousands of images per tick (progress line, stats); fractions allowed.
    snap_ticks:  ticks between snapshots and checkpoints.
    seed:        random seed.
    resume:      None, 'auto' (continue the latest run in outdir), a run folder or checkpoint (continue exactly),
                 or a network file (.safetensors export / NVIDIA .pkl: initialise weights, transfer learning).
    batch_gpu:   images per forward pass on each process (gradient accumulation when smaller than its share).
    workers:     data loader worker processes.
    device:      'auto', 'cpu', 'cuda', 'cuda:N'.
    precision:   'auto' (float16 blocks on CUDA as the official code; on a CPU bf16 where it is native, faster in a
                 quick probe and holds quality, else float32: runtime/choice.py), 'fp32', or 'bf16'
                 (bfloat16 autocast of the network passes, for CPUs with AMX/AVX-512-BF16 and recent GPUs).
    desc:        extra words in the run folder name.
    progress:    show a progress bar (default: when stdout is a terminal).
    metrics:     metric names evaluated at each snapshot.
    metrics_num: generated (and real) images per metric instead of the count in its name (quick checks).
    max_size:    use at most this many dataset images.
    image_snap:  write a fakes grid at every snapshot.
    max_minutes: stop after this much training time in this session (a final snapshot is written), or None.
    resample:    'fast' (strided/transposed resampling convolutions, fused bias/activation/clamp) or 'reference'
                 (upsample and filter at full resolution before convolving, one op per bias/activation step):
                 the plain reference ops, which exist to check the fast ones.
    channels_last: keep activations and convolution weights in channels-last (NHWC) layout (StyleGAN2 networks);
                 None: where the probe measures it faster (runtime/choice.py).
    compile:     'auto' (compile where the toolchain works and the run is long enough to pay the compile time
                 back, runtime/choice.py), 'off', or a torch.compile mode ('default', 'reduce-overhead' = also
                 CUDA graphs, 'max-autotune'):
                 the G main and D main passes run compiled; the regularisation passes (double backward) stay eager,
                 and so does the combined D pass (logistic/WGAN loss with R1/GP in one step, e.g. --loss wgan-gp).
    num_processes: local processes `training.distributed.launch_training` starts (`stylegan train --gpus N`): one
                 per GPU with NCCL on CUDA, gloo processes on a CPU. Runs started by torchrun keep 1 here (torchrun
                 started the processes; its WORLD_SIZE is the process count).
    cudnn_benchmark: let cuDNN pick convolution algorithms by timing them (NVIDIA's default; --nobench turns it off).
    allow_tf32:  allow TF32 in CUDA matmuls and convolutions (NVIDIA's --allow-tf32; off by default, as theirs).
                 cudnn_benchmark and allow_tf32 are applied around the run by `launch_training`.
    """

    data: str
    outdir: str
    config: TrainingConfig = field(default_factory=TrainingConfig)
    cond: bool = False
    mirror: bool = False
    tick_kimg: float = 4.0
    snap_ticks: int = 50
    seed: int = 0
    resume: Optional[str] = None
    batch_gpu: Optional[int] = None
    workers: int = 2
    device: str = "auto"
    precision: str = "auto"
    desc: Optional[str] = None
    progress: Optional[bool] = None
    metrics: Tuple[str, ...] = ()
    metrics_num: Optional[int] = None
    max_size: Optional[int] = None
    image_snap: bool = True
    max_minutes: Optional[float] = None
    resample: str = "fast"
    channels_last: Optional[bool] = None
    compile: str = "auto"
    num_processes: int = 1
    cudnn_benchmark: bool = True
    allow_tf32: bool = False

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["config"] = self.config.to_dict()
        data["metrics"] = list(self.metrics)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "RunOptions":
        data = dict(data)
        data["config"] = TrainingConfig.from_dict(data["config"])
        data["metrics"] = tuple(data.get("metrics", ()))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
