"""Choose the fastest path that holds quality on this machine: precision, memory layout and compilation.

`stylegan train`, `generate`, `mix`, `video`, `project`, `metrics` and the explorer call this when their flags leave
a choice open ('auto'); a flag always wins. The rules (docs/performance.md, "Automatic path choice"):

- Nothing to choose -> nothing probed: on CUDA today's path stays (float16 blocks as NVIDIA's, eager), with the
  Triton kernels (runtime.path.with_triton) where Triton imports and a one-time check of each kernel against its
  reference passes (runtime.kernel_check; otherwise the PyTorch ops, the reason in the summary line; never under
  `--resample reference`); on a CPU without native bf16 (`runtime.hardware.native_bf16`) bf16 is never a candidate
  (emulated bf16 is 10-20x slower);
  channels-last is a candidate only for networks with channels-last blocks (StyleGAN2 and v1, not StyleGAN3).
- Otherwise a quick probe times each candidate (float32/bf16 x NCHW/channels-last) on copies of the real
  networks at the job's batch size: `PROBE_REPEATS` timed calls (3 training, 5 inference: cheap) in interleaved
  rounds, the fastest counting (one untimed warm-up call first; for training the caller's measure, which runs the
  training loop's own phases (training.setup), a G forward for inference), and keeps the fastest where it beats float32 as built by `PROBE_MARGIN` (a busy
  machine's noise does not move the choice). bf16 must also hold quality:
  its images (constant noise, same latents) must reach `BF16_MIN_PSNR_DB` PSNR against the float32 images.
- The probe is skipped for jobs too short to matter: it runs only when it costs at most 1/`PROBE_SHARE` of the
  job (counted in network calls, no timing) and the job is not limited to under `PROBE_MIN_S` seconds, so the
  test suite's tiny runs never probe. Within a probe no measurement starts after `PROBE_MAX_S` (30 s training,
  10 s inference; or 1/50 of the job's estimated time); what was not measured is not chosen.
- Compilation cannot be probed cheaply. It is chosen where the toolchain works
  (`runtime.compile.check_compile_support`) and the job, estimated from the probe's speed, lasts at least
  `COMPILE_PAYBACK` times the compile cost (`COMPILE_COST_S`): a compiled path 1.25x faster recovers its
  compile time after 5 compile-times of work. Never for StyleGAN3 (measured slower compiled on the CPU) or
  progressive growing (a new graph every fade-in step). Tools that render (generate, mix, video) compile only
  the synthesis network, for their batch size (`compile_synthesis`; the last, partial batch runs eagerly), by the
  same rule with the inference compile cost; the others (metrics, projection, the explorer) never compile. Where
  compiling fails at run time, `EagerFallback` says so in one line and continues eagerly.

The result is a `PathChoice`: the `ExecutionPath` (runtime.path) and why, printed as one line (`summary()`) and
recorded in training_options.json (`to_json()`). Inference paths without gradients run StyleGAN3's activation in
place (`runtime.path.INFERENCE`); training and projection run `runtime.path.FAST`.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import nn

from ..errors import UserInputError
from ..io.images import psnr
from ..networks.stylegan3 import Generator3
from . import hardware
from .compile import compile_problem, compile_synthesis
from .kernel_check import triton_problem
from .path import FAST, INFERENCE, ExecutionPath, apply_path, has_layout_choice, triton_ops, with_triton

PROBE_REPEATS = {"train": 3, "inference": 5}  # calls per candidate in interleaved rounds (the first warms up)
PROBE_SHARE = 50           # probe only when it costs at most 1/50 of the job's network calls
PROBE_MIN_S = 60.0         # ... and never for jobs limited to less than a minute (--max-minutes)
# The constants below are set from measurements recorded in docs/performance.md, "Automatic path choice".
# the probe starts no new measurement after this much time (warm-ups included); training's first passes per
# candidate build their oneDNN kernels, so it gets more
PROBE_MAX_S = {"train": 30.0, "inference": 10.0}
PROBE_MARGIN = 1.1         # another path replaces float32 as built only when this much faster (noise)
BF16_MIN_PSNR_DB = 35.0    # bf16 images vs float32, below which bf16 is not chosen
COMPILE_PAYBACK = 5.0      # compile when the job lasts >= 5x the compile cost (pays back at a 1.25x speed-up)
COMPILE_COST_S = {"train": 90.0, "inference": 30.0}  # cold-cache CPU compile times on 2 cores
CUDA_PRECISION = "fp16"    # on CUDA: the network's float16 blocks, as NVIDIA's code runs them


@dataclass(frozen=True)
class Candidate:
    """One path the probe can time."""

    precision: str        # 'fp32' or 'bf16'
    channels_last: bool   # channels-last (NHWC) activations and weights

    @property
    def name(self) -> str:
        return f"{self.precision}{'-channels-last' if self.channels_last else ''}"


@dataclass
class PathChoice:
    """The chosen execution path and why.

    path:           the ExecutionPath (ops, precision, layout, compilation); precision 'auto' on CUDA means the
                    network's float16 blocks as NVIDIA's (its `fp16` precision).
    reason:         one phrase: why this path (probed, nothing to choose, too short to probe, flags).
    device:         the device it was chosen for.
    native_bf16:    whether the device has native bf16 (AVX-512-BF16/AMX, or a GPU that supports it).
    compile_support: 'ok', 'not checked' or the one-line reason compilation does not work here.
    probe_img_per_s: img/s of each probed candidate (empty when nothing was probed).
    bf16_psnr_db:   PSNR of bf16 images against float32 ones (None when bf16 was not probed).
    requested:      what the flags asked for ('auto' where the choice was left open).
    kernels:        on CUDA: 'ok' (the Triton kernels run), or why the PyTorch ops run instead; 'not checked'
                    elsewhere and under --resample reference.
    """

    path: ExecutionPath
    reason: str
    device: str = "cpu"
    native_bf16: bool = False
    compile_support: str = "not checked"
    probe_img_per_s: Dict[str, float] = field(default_factory=dict)
    bf16_psnr_db: Optional[float] = None
    requested: Dict[str, object] = field(default_factory=dict)
    kernels: str = "not checked"

    @property
    def precision(self) -> str:
        return self.path.precision

    @property
    def channels_last(self) -> bool:
        return self.path.channels_last

    @property
    def compile(self) -> str:
        return self.path.compile

    def summary(self) -> str:
        """The one line printed at the start of a run."""
        probe = ", ".join(f"{name} {speed:.1f}" for name, speed in self.probe_img_per_s.items())
        text = (f"path: {self.precision}, {'channels-last' if self.channels_last else 'NCHW'}, compile {self.compile}"
                f" ({self.reason}; native bf16 {'yes' if self.native_bf16 else 'no'}")
        if probe:
            text += f"; probe img/s: {probe}"
        if self.bf16_psnr_db is not None:
            text += f"; bf16 PSNR {self.bf16_psnr_db:.1f} dB"
        if self.compile_support not in ("ok", "not checked"):
            text += f"; compiling skipped: {self.compile_support}"
        if self.kernels == "ok":
            text += f"; Triton kernels: {', '.join(op for op, impl in self.path.ops.items() if impl == 'triton')}"
        elif self.kernels != "not checked":
            text += f"; Triton kernels off, PyTorch ops: {self.kernels}"
        return text + ")"

    def to_json(self) -> dict:
        return {**self.path.to_json(), "reason": self.reason, "device": self.device, "native_bf16": self.native_bf16,
                "compile_support": self.compile_support,
                "probe_img_per_s": {k: round(v, 2) for k, v in self.probe_img_per_s.items()},
                "bf16_psnr_db": None if self.bf16_psnr_db is None else round(self.bf16_psnr_db, 2),
                "requested": dict(self.requested), "kernels": self.kernels}

    @classmethod
    def from_json(cls, data: dict) -> "PathChoice":
        fields = ("ops", "precision", "channels_last", "compile")
        path = ExecutionPath(**{k: data[k] for k in fields if k in data})
        return cls(path=path, **{k: v for k, v in data.items() if k not in fields})

    def autocast(self, device: Optional[torch.device] = None):
        """The context the network calls of this path run in (bf16 autocast, or nothing); device: default its own."""
        return self.path.autocast(device if device is not None else torch.device(self.device))


@dataclass(frozen=True)
class Job:
    """What is about to run, as the chooser needs it.

    kind:          'train' or 'inference'.
    batch:         images per network call.
    calls:         network calls the job makes (training steps, or inference batches).
    max_seconds:   a time limit of the job (train --max-minutes), or None.
    compilable:    whether compilation applies to this job at all (False: StyleGAN3, progressive growing, tools
                   that do not compile).
    allow_bf16:    whether bf16 may be chosen automatically (False where results must stay float32: metrics,
                   projection).
    no_probe:      why nothing may be probed (e.g. several processes, which must all take the same path), or None.
    """

    kind: str
    batch: int
    calls: int
    max_seconds: Optional[float] = None
    compilable: bool = True
    allow_bf16: bool = True
    no_probe: Optional[str] = None


def choose_path(job: Job, device: torch.device, *, precision: str = "auto", channels_last: Optional[bool] = None,
                compile: str = "auto", layout_choice: bool = True, native_bf16: Optional[bool] = None,
                measure: Callable[[Candidate], float], bf16_psnr: Callable[[], float],
                compile_check: Callable[[], Optional[str]], base_path: ExecutionPath = FAST,
                kernel_check: Optional[Callable[[], Optional[str]]] = None) -> PathChoice:
    """Resolve the 'auto' settings for `job` on `device`; the measurements are injected (tests pass fixed ones).

    job:           the job (see Job).
    device:        where it runs.
    precision:     'auto', 'fp32' or 'bf16' (a flag's value; anything but 'auto' is kept).
    channels_last: None (choose) or the flag's value.
    compile:       'auto' (choose), 'off' or a compile mode.
    layout_choice: whether the networks have a channels-last path (StyleGAN2/v1 blocks).
    native_bf16:   the device's native bf16 (None: ask tools.hardware).
    measure:       seconds per network call of a candidate (the probe).
    bf16_psnr:     PSNR in dB of bf16 images against float32 ones.
    compile_check: None where torch.compile works here, else the one-line reason.
    base_path:     the path whose precision, layout and compilation are chosen (its ops are kept; on CUDA the
                   Triton kernels replace them, unless all are the reference: --resample reference).
    kernel_check:  on CUDA: None where the Triton kernels work here, else the one-line reason (default:
                   runtime.kernel_check.triton_problem on `device`).
    """
    requested = {"precision": precision, "channels_last": "auto" if channels_last is None else channels_last,
                 "compile": compile}
    native = hardware.native_bf16(device) if native_bf16 is None else native_bf16
    base = dict(device=str(device), native_bf16=native, requested=requested)
    if device.type != "cpu":  # CUDA: NVIDIA's float16 blocks, eager (not measured otherwise), Triton kernels
        kernels = "not checked"
        if device.type == "cuda" and triton_ops() and any(impl != "reference" for impl in base_path.ops.values()):
            kernels = (kernel_check or (lambda: triton_problem(device)))() or "ok"
            base_path = with_triton(base_path) if kernels == "ok" else base_path
        path = base_path.replace(precision=CUDA_PRECISION if precision == "auto" else precision,
                                 channels_last=bool(channels_last), compile="off" if compile == "auto" else compile)
        return PathChoice(path, reason="CUDA: float16 blocks as NVIDIA's" if precision == "auto" else "flags",
                          kernels=kernels, **base)
    precisions = ["fp32", "bf16"] if precision == "auto" and native and job.allow_bf16 else \
        ["fp32" if precision == "auto" else precision]
    layouts = [False, True] if channels_last is None and layout_choice else [bool(channels_last)]
    candidates = [Candidate(p, cl) for cl in layouts for p in precisions]
    wants_speed = len(candidates) > 1 or (compile == "auto" and job.compilable)  # compiling needs an estimate
    probe_calls = len(candidates) * PROBE_REPEATS[job.kind]
    speeds: Dict[str, float] = {}
    psnr_db = None
    chosen = candidates[0]
    reason = "nothing to choose" if precision == "auto" or channels_last is None else "flags"
    if not wants_speed:
        pass
    elif job.no_probe:
        reason = job.no_probe
    elif job.calls < PROBE_SHARE * probe_calls or (job.max_seconds is not None and job.max_seconds < PROBE_MIN_S):
        reason = "job too short to probe"
    else:
        if "bf16" in precisions:
            psnr_db = bf16_psnr()
            if not psnr_db >= BF16_MIN_PSNR_DB:
                candidates = [c for c in candidates if c.precision != "bf16"]
        seconds = _probe_rounds(candidates, measure, job.calls, PROBE_REPEATS[job.kind], PROBE_MAX_S[job.kind])
        measured = [c for c in candidates if c.name in seconds]
        speeds = {name: job.batch / max(value, 1e-9) for name, value in seconds.items()}
        fastest = max(measured, key=lambda c: speeds[c.name])
        if speeds[fastest.name] >= PROBE_MARGIN * speeds[chosen.name]:  # chosen: the first, float32 as built
            chosen = fastest
        if len(layouts) * len(precisions) > 1:
            reason = "fastest in the probe" if chosen == fastest else \
                f"none {PROBE_MARGIN:g}x faster than {chosen.name} in the probe"
        if len(measured) < len(candidates):
            reason += f" (budget spent before {', '.join(c.name for c in candidates if c not in measured)})"
        if psnr_db is not None and not psnr_db >= BF16_MIN_PSNR_DB:
            reason += f" (bf16 dropped: PSNR below {BF16_MIN_PSNR_DB:g} dB)"
    compile_mode, support = _compile_choice(job, compile, speeds.get(chosen.name), compile_check)
    path = base_path.replace(precision=chosen.precision, channels_last=chosen.channels_last, compile=compile_mode)
    return PathChoice(path, reason=reason, compile_support=support, probe_img_per_s=speeds, bf16_psnr_db=psnr_db,
                      **base)


def _probe_rounds(candidates, measure: Callable[[Candidate], float], calls: int, rounds: int,
                  max_seconds: float) -> Dict[str, float]:
    """Fastest seconds per call of each candidate over `rounds` interleaved rounds (load changes hit them all
    alike; the first round's calls include the warm-up), within the budget: min(max_seconds, the job's estimated
    time / PROBE_SHARE) of wall time, after one warm-up call of the first candidate. Candidates left when the budget
    is spent are not measured (and not chosen); the first one, the float32 path as built, always is."""
    seconds: Dict[str, float] = {}
    # One untimed call first: a process's first passes are several times slower than later ones (oneDNN builds its
    # kernels, the allocator grows) and would otherwise be all the first candidate shows. It counts against the
    # budget.
    t0 = time.perf_counter()
    spent = max(measure(candidates[0]), time.perf_counter() - t0)
    for _ in range(rounds):
        for cand in candidates:
            budget = min(max_seconds, calls * min(seconds.values(), default=math.inf) / PROBE_SHARE)
            if seconds and spent >= budget:
                return seconds
            t0 = time.perf_counter()
            value = measure(cand)
            spent += max(time.perf_counter() - t0, value)
            seconds[cand.name] = min(seconds.get(cand.name, math.inf), value)
    return seconds


def _compile_choice(job: Job, compile: str, img_per_s: Optional[float],
                    compile_check: Callable[[], Optional[str]]) -> Tuple[str, str]:
    """(compile mode, compile support) by the payback rule; an explicit mode is kept unchecked here."""
    if compile != "auto":
        return compile, "not checked"
    if not job.compilable or img_per_s is None:
        return "off", "not checked"
    seconds = job.calls * job.batch / img_per_s
    if job.max_seconds is not None:
        seconds = min(seconds, job.max_seconds)
    if seconds < COMPILE_PAYBACK * COMPILE_COST_S[job.kind]:
        return "off", "not checked"
    problem = compile_check()
    if problem is not None:  # the summary line says it
        return "off", problem
    return "default", "ok"


# ---------------------------------------------------------------------------------------------------------------
# Probes on copies of the real networks.


def is_stylegan3(G: nn.Module) -> bool:
    """Whether `G` is a StyleGAN3 generator (no channels-last layout; measured slower compiled on the CPU)."""
    return isinstance(G, Generator3)


def seconds_of(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of one call of `fn`, the device's queue drained before and after (e.g. the first call of a
    compiled function, which compiles it)."""
    hardware.synchronize(device)
    t0 = time.perf_counter()
    fn()
    hardware.synchronize(device)
    return time.perf_counter() - t0


def probe_latents(G: nn.Module, batch: int, device: torch.device):
    """Fixed latents and labels (the first class) for probes."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn([batch, G.z_dim], generator=gen).to(device)
    c = torch.zeros([batch, G.c_dim], device=device)
    if G.c_dim:
        c[:, 0] = 1
    return z, c


class LayoutCopies:
    """Copies of networks, made on first use, per layout: `get(channels_last)` -> the copies (the originals are not
    touched). `path`: the ops the copies run."""

    def __init__(self, modules, path: ExecutionPath):
        self.originals, self.path, self.copies = tuple(modules), path, {}

    def get(self, channels_last: bool):
        if channels_last not in self.copies:
            layout = self.path.replace(channels_last=channels_last)
            self.copies[channels_last] = tuple(apply_path(copy.deepcopy(m), layout) for m in self.originals)
        return self.copies[channels_last]


def bf16_psnr(G: nn.Module, z: torch.Tensor, c: torch.Tensor, path: ExecutionPath = FAST) -> float:
    """PSNR (dB) of `G`'s bf16-autocast images against its float32 ones (constant noise, the same latents)."""
    device = z.device
    images = {}
    for precision in ("bf16", "fp32"):
        with torch.no_grad(), path.replace(precision=precision).autocast(device):
            images[precision] = G.eval()(z, c, noise_mode="const").float()
    return psnr(images["bf16"], images["fp32"])


def choose_inference_path(G: nn.Module, device: torch.device, batch: int, num_images: int, precision: str = "auto",
                          channels_last: Optional[bool] = None, allow_bf16: bool = True,
                          compile: str = "off", gradients: bool = False) -> PathChoice:
    """The inference path of a tool that renders `num_images` images in batches of `batch`.

    G:             the generator (probed on a copy).
    device:        where it runs.
    batch:         images per call.
    num_images:    images the job renders.
    precision:     'auto', 'fp32' or 'bf16' (the tool's --precision).
    channels_last: None (choose) or the tool's --channels-last.
    allow_bf16:    False where the results must stay float32 (metrics, projection).
    compile:       'off' (tools that do not compile), 'auto' (the tool's --compile default: compile the synthesis
                   where the job pays the compile time back, COMPILE_PAYBACK x COMPILE_COST_S['inference'];
                   never StyleGAN3, measured slower compiled on the CPU) or a torch.compile mode.
    gradients:     the tool differentiates through G (projection): the ops of runtime.path.FAST instead of
                   INFERENCE's in-place activation.
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise UserInputError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
    arch3 = is_stylegan3(G)
    if channels_last and (arch3 or not has_layout_choice(G)):
        raise UserInputError("--channels-last applies to StyleGAN2 and StyleGAN generators; this one (StyleGAN3) "
                             "has no channels-last path: drop the flag")
    base_path = FAST if gradients else INFERENCE
    calls = math.ceil(max(num_images, 0) / max(batch, 1))
    job = Job("inference", batch, calls, compilable=compile != "off" and not arch3, allow_bf16=allow_bf16)
    measure, psnr_check = inference_probe(G, batch, device, base_path)
    return choose_path(job, device, precision=precision, channels_last=channels_last, compile=compile,
                       layout_choice=has_layout_choice(G) and not arch3, measure=measure, bf16_psnr=psnr_check,
                       compile_check=lambda: compile_problem(device), base_path=base_path)


def inference_probe(G: nn.Module, batch: int, device: torch.device, base_path: ExecutionPath = INFERENCE):
    """(measure, bf16 check) of inference: measure(candidate) -> seconds of one eval-mode G call of `batch` images
    on a copy of G in the candidate's layout (made on first use), and bf16_psnr on a copy."""
    copies = LayoutCopies([G], base_path)
    z, c = probe_latents(G, batch, device)

    def measure(cand: Candidate) -> float:
        (G_copy,) = copies.get(cand.channels_last)
        G_copy.eval()

        def call():
            with torch.no_grad(), base_path.replace(precision=cand.precision).autocast(device):
                G_copy(z, c)
        return seconds_of(call, device)
    return measure, lambda: bf16_psnr(copy.deepcopy(G), z, c, base_path)


def prepare_inference(G: nn.Module, batch: int, num_images: int, precision: str = "auto",
                      channels_last: Optional[bool] = None, allow_bf16: bool = True, compile: str = "off",
                      say: Callable[[str], None] = print, gradients: bool = False) -> PathChoice:
    """Choose the inference path of a tool (see choose_inference_path), apply it to `G` (ops and layout), compile
    its synthesis where the path says so (runtime.compile.compile_synthesis) and say it in one line.

    The caller runs G under `choice.autocast()`. Arguments as choose_inference_path; say: where the lines go.
    """
    device = next(G.parameters()).device
    choice = choose_inference_path(G, device, batch, num_images, precision, channels_last, allow_bf16, compile,
                                   gradients)
    apply_path(G, choice.path)
    if not gradients:
        G.requires_grad_(False)  # the in-place activation of the INFERENCE ops computes no gradients
    say(choice.summary())
    if choice.compile != "off":
        compile_synthesis(G, choice.compile, batch, say)
    return choice
