"""Choose the fastest path that holds quality on this machine: precision, memory layout and compilation.

`stylegan train`, `generate`, `mix`, `video`, `project` and `metrics` call this when their flags leave a choice
open ('auto'); a flag always wins. The rules (docs/performance.md, "Automatic path choice"):

- Nothing to choose -> nothing probed: on CUDA today's path stays (float16 blocks as NVIDIA's, eager); on a CPU
  without native bf16 (`tools.hardware.native_bf16`) bf16 is never a candidate (emulated bf16 is 10-20x slower);
  channels-last is a candidate only for networks with channels-last blocks (StyleGAN2 and v1, not StyleGAN3).
- Otherwise a quick probe times each candidate (float32/bf16 x NCHW/channels-last) on copies of the real
  networks at the job's batch size: `PROBE_REPEATS` timed calls (3 training, 5 inference: cheap) in interleaved
  rounds, the fastest counting (one untimed warm-up call first; forward + backward of G and D for training, a G
  forward for inference), and keeps the fastest where it beats float32 as built by `PROBE_MARGIN` (a busy
  machine's noise does not move the choice). bf16 must also hold quality:
  its images (constant noise, same latents) must reach `BF16_MIN_PSNR_DB` PSNR against the float32 images.
- The probe is skipped for jobs too short to matter: it runs only when it costs at most 1/`PROBE_SHARE` of the
  job (counted in network calls, no timing) and the job is not limited to under `PROBE_MIN_S` seconds, so the
  test suite's tiny runs never probe. Within a probe no measurement starts after `PROBE_MAX_S` (30 s training,
  10 s inference; or 1/50 of the job's estimated time); what was not measured is not chosen.
- Compilation cannot be probed cheaply. It is chosen where the toolchain works
  (`networks.fast_paths.check_compile_support`) and the job, estimated from the probe's speed, lasts at least
  `COMPILE_PAYBACK` times the compile cost (`COMPILE_COST_S`): a compiled path 1.25x faster recovers its
  compile time after 5 compile-times of work. Never for StyleGAN3 (measured slower compiled on the CPU) or
  progressive growing (a new graph every fade-in step). Tools that render (generate, mix, video) compile only
  the synthesis network, for their batch size (`compile_synthesis`; the last, partial batch runs eagerly), by the
  same rule with the inference compile cost; the others (metrics, projection, the explorer) never compile. Where
  compiling fails at run time, `EagerFallback` says so in one line and continues eagerly.

The result is a `SpeedPath`, printed as one line (`summary()`) and recorded in training_options.json
(`to_json()`).
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import nn

from ..errors import UserInputError
from ..networks.fast_paths import check_compile_support, compile_module, set_channels_last
from . import hardware
from .images import psnr

PROBE_REPEATS = {"train": 3, "inference": 5}  # calls per candidate in interleaved rounds (the first warms up)
PROBE_SHARE = 50           # probe only when it costs at most 1/50 of the job's network calls
PROBE_MIN_S = 60.0         # ... and never for jobs limited to less than a minute (--max-minutes)
# the probe starts no new measurement after this much time (warm-ups included). Training gets more: the first
# forward+backward of each candidate builds its oneDNN kernels (measured ~5-6 s per candidate for the `cpu` preset
# under load), and 10 s ran out after two candidates' warm-ups.
PROBE_MAX_S = {"train": 30.0, "inference": 10.0}
PROBE_MARGIN = 1.1         # another path replaces float32 as built only when measured this much faster (noise)
BF16_MIN_PSNR_DB = 35.0    # bf16 images vs float32 (measured 38-45 dB on working networks, docs/performance.md)
COMPILE_PAYBACK = 5.0      # compile when the job lasts >= 5x the compile cost (pays back at a 1.25x speed-up)
COMPILE_COST_S = {"train": 90.0, "inference": 30.0}  # cold-cache CPU compile times measured on 2 cores
CUDA_PRECISION = "auto"    # on CUDA: float16 blocks as NVIDIA's code (unchanged by this module)


@dataclass(frozen=True)
class Candidate:
    """One path the probe can time."""

    precision: str        # 'fp32' or 'bf16'
    channels_last: bool   # channels-last (NHWC) activations and weights

    @property
    def name(self) -> str:
        return f"{self.precision}{'-channels-last' if self.channels_last else ''}"


@dataclass
class SpeedPath:
    """The chosen path and why.

    precision:      'fp32', 'bf16' or 'auto' (CUDA: float16 blocks as NVIDIA's).
    channels_last:  channels-last layout of the networks.
    compile:        'off' or a torch.compile mode.
    reason:         one phrase: why this path (probed, nothing to choose, too short to probe, flags).
    device:         the device it was chosen for.
    native_bf16:    whether the device has native bf16 (AVX-512-BF16/AMX, or a GPU that supports it).
    compile_support: 'ok', 'not checked' or the one-line reason compilation does not work here.
    probe_img_per_s: img/s of each probed candidate (empty when nothing was probed).
    bf16_psnr_db:   PSNR of bf16 images against float32 ones (None when bf16 was not probed).
    requested:      what the flags asked for ('auto' where the choice was left open).
    """

    precision: str
    channels_last: bool
    compile: str
    reason: str
    device: str = "cpu"
    native_bf16: bool = False
    compile_support: str = "not checked"
    probe_img_per_s: Dict[str, float] = field(default_factory=dict)
    bf16_psnr_db: Optional[float] = None
    requested: Dict[str, object] = field(default_factory=dict)

    def summary(self) -> str:
        """The one line printed at the start of a run."""
        probe = ", ".join(f"{name} {speed:.1f}" for name, speed in self.probe_img_per_s.items())
        text = (f"path: {self.precision}, {'channels-last' if self.channels_last else 'NCHW'}, compile {self.compile}"
                f" ({self.reason}; native bf16 {'yes' if self.native_bf16 else 'no'}")
        if probe:
            text += f"; probe img/s: {probe}"
        if self.bf16_psnr_db is not None:
            text += f"; bf16 PSNR {self.bf16_psnr_db:.1f} dB"
        return text + ")"

    def to_json(self) -> dict:
        return {"precision": self.precision, "channels_last": self.channels_last, "compile": self.compile,
                "reason": self.reason, "device": self.device, "native_bf16": self.native_bf16,
                "compile_support": self.compile_support,
                "probe_img_per_s": {k: round(v, 2) for k, v in self.probe_img_per_s.items()},
                "bf16_psnr_db": None if self.bf16_psnr_db is None else round(self.bf16_psnr_db, 2),
                "requested": dict(self.requested)}

    def autocast(self, device: Optional[torch.device] = None):
        """The context the network calls of this path run in (bf16 autocast, or nothing); device: default its own."""
        if self.precision == "bf16":
            device_type = (device if device is not None else torch.device(self.device)).type
            return torch.autocast(device_type=device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


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
                compile_check: Callable[[], Optional[str]]) -> SpeedPath:
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
    """
    requested = {"precision": precision, "channels_last": "auto" if channels_last is None else channels_last,
                 "compile": compile}
    native = hardware.native_bf16(device) if native_bf16 is None else native_bf16
    base = dict(device=str(device), native_bf16=native, requested=requested)
    if device.type != "cpu":  # CUDA: NVIDIA's float16 blocks, eager (not measured otherwise)
        return SpeedPath(precision=CUDA_PRECISION if precision == "auto" else precision,
                         channels_last=bool(channels_last), compile="off" if compile == "auto" else compile,
                         reason="CUDA: float16 blocks as NVIDIA's" if precision == "auto" else "flags", **base)
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
    return SpeedPath(precision=chosen.precision, channels_last=chosen.channels_last, compile=compile_mode,
                     reason=reason, compile_support=support, probe_img_per_s=speeds, bf16_psnr_db=psnr_db, **base)


def _probe_rounds(candidates, measure: Callable[[Candidate], float], calls: int, rounds: int,
                  max_seconds: float) -> Dict[str, float]:
    """Fastest seconds per call of each candidate over `rounds` interleaved rounds (load changes hit them all
    alike; the first round's calls include the warm-up), within the budget: min(max_seconds, the job's estimated
    time / PROBE_SHARE) of wall time, after one warm-up call of the first candidate. Candidates left when the budget
    is spent are not measured (and not chosen); the first one, the float32 path as built, always is."""
    seconds: Dict[str, float] = {}
    # One untimed call first: the process's first passes are several times slower than later ones (oneDNN builds
    # its kernels, the allocator grows; measured 6.3, 3.3, then 0.9 s for the small config's training pass), and
    # would otherwise be all the first candidate shows. It counts against the budget.
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
    if problem is not None:
        print(f"compiling skipped, running eagerly: {problem}", flush=True)
        return "off", problem
    return "default", "ok"


def compile_problem(device: torch.device) -> Optional[str]:
    """None where torch.compile works on `device`, else the one-line reason (networks.fast_paths)."""
    try:
        check_compile_support(device)
    except UserInputError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------------------------
# Probes on copies of the real networks.


def _has_layout_choice(*modules: nn.Module) -> bool:
    """True where every module has channels-last blocks (StyleGAN2 and v1; StyleGAN3 has none)."""
    return all(any(hasattr(m, "channels_last") for m in module.modules()) for module in modules)


def _seconds(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call of `fn`."""
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def _inputs(G: nn.Module, batch: int, device: torch.device):
    gen = torch.Generator().manual_seed(0)
    z = torch.randn([batch, G.z_dim], generator=gen).to(device)
    c = torch.zeros([batch, G.c_dim], device=device)
    if G.c_dim:
        c[:, 0] = 1
    return z, c


class _Probe:
    """Times candidates on copies of the networks (the originals are not touched): one copy as built, one in
    channels-last layout."""

    def __init__(self, G: nn.Module, D: Optional[nn.Module], batch: int, device: torch.device):
        self.nets = {False: (copy.deepcopy(G).eval(), copy.deepcopy(D) if D is not None else None)}
        self.originals = (G, D)
        self.device = device
        self.z, self.c = _inputs(G, batch, device)

    def _nets(self, channels_last: bool):
        if channels_last not in self.nets:
            G, D = (copy.deepcopy(m) if m is not None else None for m in self.originals)
            self.nets[True] = tuple(set_channels_last(m, True) if m is not None else None for m in (G.eval(), D))
        return self.nets[channels_last]

    def _ctx(self, precision: str):
        return SpeedPath(precision, False, "off", "").autocast(self.device)

    def images(self, precision: str) -> torch.Tensor:
        with torch.no_grad(), self._ctx(precision):
            return self._nets(False)[0].eval()(self.z, self.c, noise_mode="const").float()

    def bf16_psnr(self) -> float:
        return psnr(self.images("bf16"), self.images("fp32"))

    def inference(self, cand: Candidate) -> float:
        G = self._nets(cand.channels_last)[0].eval()

        def call():
            with torch.no_grad(), self._ctx(cand.precision):
                G(self.z, self.c)
        return _seconds(call, self.device)

    def training(self, cand: Candidate) -> float:
        G, D = self._nets(cand.channels_last)
        G.train()  # as the training loop runs it (a network's 'inference_only' modulation follows the mode)
        params = [p for m in (G, D) for p in m.parameters()]

        def call():
            for p in params:
                p.requires_grad_(True)
                p.grad = None
            with self._ctx(cand.precision):
                logits = D(G(self.z, self.c), self.c)
            logits.float().sum().backward()
        return _seconds(call, self.device)


class _LazyProbe:
    """Makes the _Probe (copies of the networks) only when a candidate is timed."""

    def __init__(self, *args):
        self.args, self.probe = args, None

    def __call__(self) -> _Probe:
        if self.probe is None:
            self.probe = _Probe(*self.args)
        return self.probe


def choose_training_path(opts, G: nn.Module, D: nn.Module, device: torch.device, batch_gpu: int,
                         world_size: int = 1, progressive: bool = False) -> SpeedPath:
    """The path of a training run (RunOptions `opts`; its 'auto' settings are resolved, the others kept).

    opts:        the run's RunOptions (precision, channels_last, compile, config.total_kimg, max_minutes).
    G, D:        the built networks (probed on copies).
    device:      the run's device.
    batch_gpu:   images per pass.
    world_size:  processes; with several, nothing is probed (every rank must take the same path).
    progressive: StyleGAN v1 progressive growing (never compiled).
    """
    arch3 = any(hasattr(m, "magnitude_ema") for m in G.modules())
    total_images = max(opts.config.total_kimg * 1000, 0)
    calls = int(total_images // max(batch_gpu, 1))  # G+D passes
    job = Job("train", batch_gpu, calls, opts.max_minutes * 60 if opts.max_minutes else None,
              compilable=not (arch3 or progressive),
              no_probe="several processes: not probed" if world_size > 1 else None)
    probe = _LazyProbe(G, D, batch_gpu, device)
    return choose_path(job, device, precision=opts.precision, channels_last=opts.channels_last, compile=opts.compile,
                       layout_choice=_has_layout_choice(G, D) and not arch3,
                       measure=lambda cand: probe().training(cand), bf16_psnr=lambda: probe().bf16_psnr(),
                       compile_check=lambda: compile_problem(device))


def choose_inference_path(G: nn.Module, device: torch.device, batch: int, num_images: int, precision: str = "auto",
                          channels_last: Optional[bool] = None, allow_bf16: bool = True,
                          compile: str = "off") -> SpeedPath:
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
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise UserInputError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
    arch3 = any(hasattr(m, "magnitude_ema") for m in G.modules())
    if channels_last and (arch3 or not _has_layout_choice(G)):
        raise UserInputError("--channels-last applies to StyleGAN2 and StyleGAN generators; this one (StyleGAN3) "
                             "has no channels-last path: drop the flag")
    calls = math.ceil(max(num_images, 0) / max(batch, 1))
    job = Job("inference", batch, calls, compilable=compile != "off" and not arch3, allow_bf16=allow_bf16)
    probe = _LazyProbe(G, None, batch, device)
    return choose_path(job, device, precision=precision, channels_last=channels_last, compile=compile,
                       layout_choice=_has_layout_choice(G) and not arch3,
                       measure=lambda cand: probe().inference(cand), bf16_psnr=lambda: probe().bf16_psnr(),
                       compile_check=lambda: compile_problem(device))


def prepare_inference(G: nn.Module, batch: int, num_images: int, precision: str = "auto",
                      channels_last: Optional[bool] = None, allow_bf16: bool = True, compile: str = "off",
                      say: Callable[[str], None] = print) -> SpeedPath:
    """Choose the inference path of a tool (see choose_inference_path), put `G` in its layout, compile its
    synthesis where the path says so (compile_synthesis) and say it in one line.

    The caller runs G under `path.autocast()`. Arguments as choose_inference_path; say: where the lines go.
    """
    device = next(G.parameters()).device
    path = choose_inference_path(G, device, batch, num_images, precision, channels_last, allow_bf16, compile)
    if path.channels_last:
        set_channels_last(G, True)
    say(path.summary())
    if path.compile != "off":
        compile_synthesis(G, path.compile, batch, say)
    return path


def compile_synthesis(G: nn.Module, mode: str, batch: int, say: Callable[[str], None] = print) -> None:
    """Make `G.synthesis` run compiled (networks.fast_paths.compile_module, static shapes) for calls of `batch`
    images; calls of other sizes (a job's last, partial batch) run eagerly instead of compiling a second graph.
    Where compiling fails at the first call, one line says so and every call runs eagerly (EagerFallback).

    Changes G in place: its synthesis's `forward` (not its parameters, buffers or state_dict)."""
    synthesis = G.synthesis
    eager = synthesis.forward
    compiled = EagerFallback(compile_module(eager, mode), eager, say, name=type(synthesis).__name__)

    def forward(ws: torch.Tensor, *args, **kwargs):
        return (compiled if ws.shape[0] == batch else eager)(ws, *args, **kwargs)
    synthesis.forward = forward


class EagerFallback:
    """Calls a compiled function; where compiling fails at run time, says so in one line and calls the eager one.

    compiled: the torch.compile'd module or function.
    eager:    the same computation uncompiled (sharing its parameters).
    say:      where the one line goes (e.g. the run's log).
    name:     what the line calls it (default: the eager callable's class name).
    """

    def __init__(self, compiled: Callable, eager: Callable, say: Callable[[str], None] = print,
                 name: Optional[str] = None):
        self.compiled, self.eager, self.say = compiled, eager, say
        self.name = name or type(eager).__name__
        self.failed = False

    def __call__(self, *args, **kwargs):
        if self.failed:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as exc:  # a toolchain failure surfaces here, at the first call of a new graph
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            self.say(f"compiling {self.name} failed ({type(exc).__name__}: {first}); "
                     f"continuing eagerly")
            self.failed = True
            return self.eager(*args, **kwargs)

