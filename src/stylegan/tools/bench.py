"""`stylegan bench`: throughput of the fast paths against the float32 reference path, in one process.

Paths (each a named setting of the same randomly initialised networks, see PATH_SPECS):
- `reference`: float32, fused modulated convolution, reference resampling (upsample/filter at full resolution
  before convolving), one op per step of bias/activation/gain/clamp, and (StyleGAN3) the reference
  `filtered_lrelu` (zero insertion, filtering, then decimation) — the plain-PyTorch definition every faster
  path is tested against;
- `fast`: float32, strided/transposed resampling convolutions, the network's own modulation choice (per-sample
  on the CPU), fused bias/activation/clamp (in place, differentiated from its output), polyphase
  `filtered_lrelu` (StyleGAN3);
- `fast_plain_bias_act`: `fast` with the reference bias/activation (measures what the fused op gains);
- `fast_bf16`: `fast` under bfloat16 autocast (AMX/AVX-512-BF16 CPUs, recent GPUs);
- `channels_last[_bf16]`: `fast[_bf16]` with NHWC activations and weights;
- `compiled[_bf16]`: `fast[_bf16]` through torch.compile (Inductor), `compiled_channels_last[_bf16]` the same
  on `channels_last[_bf16]`; in training the G main and D main passes
  are compiled and the regularisation passes (double backward, which compiled graphs do not support) run eagerly;
- `fp16`, `compiled_fp16` (CUDA): the preset's float16 blocks with clamping, as NVIDIA's code runs them.

Every row reports img/s, the speedup against the reference path (or `fast`, named in `speedup_vs`) measured in
the same process, so the ratio holds on a noisy machine, peak memory and FLOPs per image (counted with
torch.utils.flop_counter); the device's measured matmul throughput in the path's dtype is reported beside it, so
achieved TFLOP/s can be read as a fraction of what the device reaches. Paths with other arithmetic than `fast`
report PSNR against it on the same seeds, and compiled paths the seconds their first call spent compiling. Each
row also carries the machine (CPU model, AVX2/AVX-512/bf16/AMX flags, whether bf16 is native).

Two sweeps (`SWEEPS`):
- `quick`, the default: inference at batch 1 and 8; training at batch 2 without the reference path (its
  double-backward regularisers alone take minutes on a CPU), so training speedups are against `fast`; each
  measurement one warm-up call, then calls for at least 0.5 s (at least one). About 25 s for stylegan2@32 on two
  idle cores, two minutes on busy ones.
- `full`: batch 1/8/16, training batch 8 on every path, at least 2 s and 2 calls per measurement.
Training img/s are over one lazy-regularisation cycle of 16 steps (G reg every 4, D reg every 16), computed from
its three phases timed separately (main: G main + D main; G reg; D reg). StyleGAN3 presets have no path length
regularisation (pl_weight 0, no G reg phase: `has_g_reg`), so their cycle is 16 main phases and one D reg.
The default paths are reference and fast, plus fast_bf16 where bf16 is native (`hardware.native_bf16`): emulated
bf16 is hundreds of times slower.

Networks are the preset's at `resolution`; `channel_base`/`channel_max` override its widths (StyleGAN3-R still
doubles G's), so the StyleGAN3 presets (512 channels at every layer even at 32x32) fit a CPU. Every path works for
StyleGAN3 (bf16 autocast and torch.compile included); the D blur of StyleGAN3-R training is not part of the cycle.
`map_depth` and `img_channels` override G's mapping depth and the image channels.

Named cases (`CASES`, `stylegan bench --case`): `seed` (the preset as above, the sweep's batch sizes) and `small`
(NVIDIA's small CPU command line: `--cfg stylegan2 --cbase 2048 --cmax 64 --map-depth 2`, 32x32 grayscale, 64
channels everywhere;
inference batch 16, training batch 32). The `loop` case (`LOOP_CASE`) times whole `stylegan train` ticks instead
(`cli.bench_loop`).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import resource
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..errors import UserInputError
from ..io.images import psnr
from ..networks.registry import build_network
from ..presets import TrainingConfig, resolve_preset
from ..runtime.choice import seconds_of
from ..runtime.compile import check_compile_support, compile_module
from ..runtime.hardware import ISA_FLAGS, machine_description, native_bf16, synchronize, triton_available
from ..runtime.path import FAST, REFERENCE, TRITON, ExecutionPath, apply_path, with_triton
from ..training.phases import Phase, PhaseInputs, PhaseNetworks, phase_backward

@dataclass(frozen=True)
class PathSpec:
    """A bench path: the execution path (runtime.path) and the modulation form.

    fused_modconv: None for the network's own choice (per-sample scaling on the CPU; on CUDA NVIDIA's: fused in
                   inference, per-sample in training), what the tools and `stylegan train` run; True for NVIDIA's
                   grouped convolutions (the reference path).
    """

    path: ExecutionPath = FAST
    fused_modconv: Optional[bool] = None

    @property
    def precision(self) -> str:  # 'fp32', 'bf16' (autocast) or 'fp16' (the preset's float16 blocks, CUDA only)
        return self.path.precision

    @property
    def compile(self) -> bool:
        return self.path.compile != "off"


def _spec(**changes) -> PathSpec:
    return PathSpec(FAST.replace(**changes))


PATH_SPECS: Dict[str, PathSpec] = {
    "reference": PathSpec(REFERENCE, fused_modconv=True),
    "fast": PathSpec(),
    "fast_plain_bias_act": _spec(ops={"bias_act": "reference"}),
    "fast_bf16": _spec(precision="bf16"),
    "channels_last": _spec(channels_last=True),
    "channels_last_bf16": _spec(precision="bf16", channels_last=True),
    "compiled": _spec(compile="default"),
    "compiled_bf16": _spec(precision="bf16", compile="default"),
    "compiled_channels_last": _spec(channels_last=True, compile="default"),
    "compiled_channels_last_bf16": _spec(precision="bf16", channels_last=True, compile="default"),
    "fp16": _spec(precision="fp16"),
    "compiled_fp16": _spec(precision="fp16", compile="default"),
    # The Triton kernels (ops/*_triton.py) where an op has one, the fast ops elsewhere: CUDA only.
    "triton": PathSpec(TRITON),
    "triton_fp16": PathSpec(with_triton(FAST.replace(precision="fp16"))),
    "triton_bf16": PathSpec(with_triton(FAST.replace(precision="bf16"))),
}
PATHS = tuple(PATH_SPECS)
DEFAULT_PATHS = ("reference", "fast", "fast_bf16")  # fast_bf16 only where bf16 is native: see default_paths


@dataclass(frozen=True)
class Sweep:
    """How much one benchmark run measures (the CLI's defaults; each can be overridden)."""

    batch_sizes: Tuple[int, ...]  # G inference batch sizes
    train_batch: int  # training step batch size
    min_seconds: float  # each measurement runs at least this long ...
    min_calls: int  # ... and at least this many calls (after one warm-up call)
    train_reference: bool  # also time training on the reference path (its regularisers take minutes on a CPU)


SWEEPS: Dict[str, Sweep] = {
    "quick": Sweep(batch_sizes=(1, 8), train_batch=2, min_seconds=0.5, min_calls=1, train_reference=False),
    "full": Sweep(batch_sizes=(1, 8, 16), train_batch=8, min_seconds=2.0, min_calls=2, train_reference=True),
}


@dataclass(frozen=True)
class BenchCase:
    """A named network to measure (`stylegan bench --case`); None fields keep the preset's value or the sweep's."""

    cfg: str = "stylegan2"
    resolution: int = 32
    channel_base: Optional[int] = None
    channel_max: Optional[int] = None
    map_depth: Optional[int] = None
    img_channels: int = 3
    batch_sizes: Optional[Tuple[int, ...]] = None  # G inference batch sizes (None: the sweep's)
    train_batch: Optional[int] = None  # training batch (None: the sweep's)


CASES: Dict[str, BenchCase] = {
    # The preset's networks at 32x32 (512 channels), the sweep's batch sizes: what `stylegan bench` always measured.
    "seed": BenchCase(),
    # The network a CPU user trains with NVIDIA's command line (--cfg stylegan2 --cbase 2048 --cmax 64
    # --map-depth 2, Fashion-MNIST 32x32 grayscale): 64 channels at every resolution; inference batch 16, training batch 32.
    "small": BenchCase(channel_base=2048, channel_max=64, map_depth=2, img_channels=1, batch_sizes=(16,),
                       train_batch=32),
}
LOOP_CASE = "loop"  # `stylegan train` ticks on generated data (cli.bench_loop.run_loop_case)


def default_paths(device: torch.device) -> Tuple[str, ...]:
    """reference and fast, plus fast_bf16 where `device` runs bf16 natively (emulated bf16 would take hours)."""
    return DEFAULT_PATHS if native_bf16(device) else tuple(p for p in DEFAULT_PATHS if p != "fast_bf16")


def emulated_bf16_paths(paths: Sequence[str], device: torch.device) -> List[str]:
    """The bf16 paths of `paths` that `device` would run emulated (very slowly); empty where bf16 is native."""
    if native_bf16(device):
        return []
    return [p for p in paths if p in PATH_SPECS and PATH_SPECS[p].precision == "bf16"]


def seconds_per_call(fn: Callable[[], object], device: torch.device, min_seconds: float, warmup: int = 1,
                     min_calls: int = 2) -> float:
    """Mean wall time of `fn` after `warmup` calls, over at least `min_seconds` and `min_calls` calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        synchronize(device)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and calls >= min_calls:
            return elapsed / calls


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA allocation since the last reset; on the CPU the process's peak RSS (a running maximum)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_tflops(device: torch.device, dtype: torch.dtype, min_seconds: float = 0.2) -> float:
    """Measured dense matmul throughput of `device` in `dtype` (TFLOP/s): the yardstick for achieved TFLOP/s.

    The matrices grow from 256 until one product takes 20 ms (at most 8192 on CUDA, 2048 on the CPU), so the
    measurement stays short where `dtype` is emulated."""
    n_max = 8192 if device.type == "cuda" else 2048
    n = 256
    while True:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        if n >= n_max or seconds_of(lambda: a @ b, device) >= 0.02:
            break
        n *= 2
    return 2 * n ** 3 / seconds_per_call(lambda: a @ b, device, min_seconds) / 1e12


MATMUL_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}  # a path's yardstick


def _significant(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")


def build_networks(cfg_name: str, resolution: int, device: torch.device, seed: int = 0, fp16: bool = False,
                   channel_base: Optional[int] = None, channel_max: Optional[int] = None,
                   map_depth: Optional[int] = None, img_channels: int = 3):
    """Randomly initialised G and D of a preset (unconditional) on `device`; float32 everywhere unless `fp16`,
    which keeps the preset's float16 blocks (they run in float16 on CUDA only). `channel_base`/`channel_max`/
    `map_depth` (None: the preset's) override the widths of both networks and G's mapping depth;
    `img_channels`: image channels (1 for grayscale data such as Fashion-MNIST)."""
    net = resolve_preset(cfg_name, resolution).network
    if not fp16:
        net = dataclasses.replace(net, num_fp16_res=0)
    widths = {k: v for k, v in (("channel_base", channel_base), ("channel_max", channel_max)) if v is not None}
    if any(v < 1 for v in widths.values()):
        raise UserInputError(f"channel_base and channel_max must be positive, got {widths}")
    if map_depth is not None and map_depth < 1:
        raise UserInputError(f"map_depth must be positive, got {map_depth}")
    if img_channels < 1:
        raise UserInputError(f"img_channels must be positive, got {img_channels}")
    net = dataclasses.replace(net, **widths, **({} if map_depth is None else {"map_depth": map_depth}))
    torch.manual_seed(seed)
    G = build_network(net.generator_class, net.generator_kwargs(resolution, img_channels, 0)).to(device)
    D = build_network(net.discriminator_class, net.discriminator_kwargs(resolution, img_channels, 0)).to(device)
    return G, D


@dataclass
class PathNetworks:
    """The networks of one path (copies of the float32 originals with the path's switches) and what calls them:
    `G_fast`/`D_fast` are compiled for compiled paths, the modules themselves otherwise; `mains` the compiled
    mapping, synthesis and D the training phases' main passes call, as in `stylegan train` (empty: eager)."""

    spec: PathSpec
    G: nn.Module
    D: nn.Module
    G_fast: Callable
    D_fast: Callable
    cfg: TrainingConfig
    mains: Dict[str, Callable] = field(default_factory=dict)


def check_path(path: str, device: torch.device) -> PathSpec:
    """The spec of `path`; UserInputError for an unknown path or one `device` cannot run."""
    if path not in PATH_SPECS:
        raise UserInputError(f"unknown path {path!r}; choose from {', '.join(PATHS)}")
    spec = PATH_SPECS[path]
    if spec.precision == "fp16" and device.type != "cuda":
        raise UserInputError(f"path {path!r} runs float16 blocks, which exist on CUDA only; "
                             f"use fast_bf16 or compiled_bf16 on the {device.type}")
    if "triton" in spec.path.ops.values():
        if device.type != "cuda":
            raise UserInputError(f"path {path!r} runs Triton GPU kernels, on CUDA only; on the {device.type} they "
                                 f"run only in Triton's interpreter, for tests (benchmarks/gpu_kernels.py --smoke)")
        if not triton_available():
            raise UserInputError(f"path {path!r} needs the triton package: pip install triton")
    return spec


def has_g_reg(cfg: str, resolution: int) -> bool:
    """Whether the bench's training cycle has the lazy G regularisation (path length): not for StyleGAN3, which
    trains without it (pl_weight 0, no G reg phase); StyleGAN2/1 presets keep StyleGAN2's cycle."""
    return resolve_preset(cfg, resolution).network.arch != "stylegan3"


def path_networks(path: str, G: nn.Module, D: nn.Module, cfg: str, resolution: int,
                  device: torch.device, widths: Optional[dict] = None, reset_compiler: bool = True) -> PathNetworks:
    """Copies of G and D set up for `path`; `widths`: the `build_networks` overrides G and D were built with
    (channel_base, channel_max, map_depth, img_channels). reset_compiler: False keeps torch.compile's caches
    (the rows' functions reset them once and raise the recompile limit, see `_compiler_scope`)."""
    spec = check_path(path, device)
    if spec.precision == "fp16":
        G16, D16 = build_networks(cfg, resolution, device, fp16=True, **(widths or {}))
        G16.load_state_dict(G.state_dict())
        D16.load_state_dict(D.state_dict())
        G, D = G16, D16
    else:
        G, D = copy.deepcopy(G), copy.deepcopy(D)
    for module in (G, D):
        apply_path(module, spec.path)
    G_fast, D_fast, mains = G, D, {}
    if spec.compile:
        check_compile_support(device)
        # Compiled code is cached per Python function, with a limit on variants (then it silently runs eagerly):
        # start every compiled path with an empty cache so earlier paths and batch sizes do not use it up.
        if reset_compiler:
            torch._dynamo.reset()
        G_fast, D_fast = compile_module(G), compile_module(D)
        mains = dict(G_mapping_main=compile_module(G.mapping), G_synthesis_main=compile_module(G.synthesis),
                     D_main=D_fast)
    return PathNetworks(spec, G, D, G_fast, D_fast, resolve_preset(cfg, resolution), mains)


@contextlib.contextmanager
def _compiler_scope(paths: Sequence[str]):
    """Where compiled paths are measured side by side (interleaved rounds), every path's compiled graphs stay
    cached at once: start from empty caches and allow more variants per function than torch.compile's default
    (8, after which it would silently run eagerly)."""
    if not any(PATH_SPECS[p].compile for p in paths):
        yield
        return
    torch._dynamo.reset()
    with torch._dynamo.config.patch(recompile_limit=64, accumulated_recompile_limit=1024):
        yield


def _add_speedup(row: dict, results: Dict[str, float]) -> None:
    """img/s relative to the reference path, or to `fast` (else the first path) where the reference was not run."""
    base = next((p for p in ("reference", "fast") if p in results), next(iter(results)))
    row.update({"reference_img_per_s": results.get("reference"), "speedup_vs": base,
                "speedup": row["img_per_s"] / results[base]})


def inference_rows(G: nn.Module, D: nn.Module, batch_sizes: Sequence[int], device: torch.device,
                   min_seconds: float, paths: Sequence[str] = DEFAULT_PATHS, cfg: str = "stylegan2",
                   resolution: int = 32, min_calls: int = 2, widths: Optional[dict] = None,
                   rounds: int = 1) -> List[dict]:
    """G(z) img/s per batch size and path, against the reference path; with `rounds` > 1 the paths are measured
    in interleaved rounds (A B C A B C ...) and each keeps its best round, so load changes hit every path alike."""
    rows = []
    flops_of: Dict[tuple, float] = {}  # FLOPs depend on the resampling, filtered_lrelu and modulation: count once
    with _compiler_scope(paths):
        all_nets = {path: path_networks(path, G, D, cfg, resolution, device, widths, reset_compiler=False)
                    for path in paths}
        for nets in all_nets.values():
            nets.G.eval().requires_grad_(False)
        for batch in batch_sizes:
            z = torch.randn(batch, G.z_dim, device=device)
            outputs: Dict[str, torch.Tensor] = {}
            seconds: Dict[str, float] = {}
            batch_rows = {}
            for round_index in range(rounds):
                for path, nets in all_nets.items():
                    spec = nets.spec
                    call = lambda g: g(z, None, noise_mode="const", fused_modconv=spec.fused_modconv)  # noqa: E731
                    with torch.no_grad(), spec.path.autocast(device):
                        if round_index == 0:
                            if device.type == "cuda":
                                torch.cuda.reset_peak_memory_stats(device)
                            row = {"what": f"g_inference_b{batch}", "path": path, "device": str(device),
                                   "batch": batch}
                            if spec.compile:
                                row["compile_s"] = round(seconds_of(lambda: call(nets.G_fast), device), 2)
                            outputs[path] = call(nets.G_fast).float()  # the warm-up call, the images PSNR compares
                            key = (spec.path.ops["conv2d_resample"], spec.path.ops["filtered_lrelu"],
                                   spec.fused_modconv)
                            if key not in flops_of:
                                flops_of[key] = count_flops(lambda: call(nets.G)) / batch
                            row["gflop_per_img"] = flops_of[key] / 1e9
                            batch_rows[path] = row
                        elapsed = seconds_per_call(lambda: call(nets.G_fast), device, min_seconds, warmup=0,
                                                   min_calls=min_calls)
                    seconds[path] = min(seconds.get(path, math.inf), elapsed)
                    if round_index == 0:
                        batch_rows[path]["peak_mem_mb"] = round(peak_memory_mb(device), 1)
            results = {path: batch / s for path, s in seconds.items()}
            base = "fast" if "fast" in paths else None
            for path, row in batch_rows.items():
                row.update({"img_per_s": results[path],
                            "achieved_tflops": row["gflop_per_img"] * 1e9 * results[path] / 1e12})
                if rounds > 1:
                    row["rounds"] = rounds
                _add_speedup(row, results)
                if base is not None and path != base:
                    value = psnr(outputs[path], outputs[base])
                    row[f"psnr_vs_{base}_db"] = None if math.isinf(value) else round(value, 2)
                rows.append(row)
    return rows


G_REG_INTERVAL = 4  # lazy regularisation as in StyleGAN2 (paper appendix B): G path length every 4 steps,
D_REG_INTERVAL = 16  # D R1 every 16; one cycle is 16 steps


def phases_per_cycle(g_reg: bool = True) -> Dict[str, int]:
    """How often one lazy-regularisation cycle runs each phase: 16 main (G main + D main), 4 G reg (only with
    `g_reg`), 1 D reg."""
    counts = {"main": D_REG_INTERVAL, "g_reg": D_REG_INTERVAL // G_REG_INTERVAL, "d_reg": 1}
    if not g_reg:
        del counts["g_reg"]
    return counts


def _phase_inputs(nets: PathNetworks, batch: int, device: torch.device) -> PhaseInputs:
    z = torch.randn(batch, nets.G.z_dim, device=device)
    real = torch.randn(batch, nets.D.img_channels, nets.D.img_resolution, nets.D.img_resolution, device=device)
    c = torch.zeros([batch, 0], device=device)
    return PhaseInputs(real, c, z, c)


def _run_phases(nets: PathNetworks, names: Sequence[str], batch: int, device: torch.device,
                pl_mean: Optional[torch.Tensor] = None) -> None:
    """The gradients of the training loop's phases `names` (training.phases) for one round of `batch` images:
    optimizer updates cost the same on every path and are left out. G main and D main call `nets.G_fast`/`nets.D_fast`
    (compiled on compiled paths); the regularisers (double backward) the modules."""
    G, D = nets.G, nets.D
    synthesis = {"fused_modconv": nets.spec.fused_modconv} if nets.spec.fused_modconv is not None else {}
    runner = PhaseNetworks(G, D, style_mixing_prob=nets.cfg.style_mixing_prob, synthesis_kwargs=synthesis,
                           **nets.mains)
    x = _phase_inputs(nets, batch, device)
    pl_mean = torch.zeros([], device=device) if pl_mean is None else pl_mean
    intervals = {"Gmain": 1, "Greg": G_REG_INTERVAL, "Dmain": 1, "Dreg": D_REG_INTERVAL}
    for name in names:
        module = G if name.startswith("G") else D
        module.requires_grad_(True)
        phase_backward(Phase(name, module, None, intervals[name]), runner, nets.cfg, [x], pl_mean,
                       lambda *args: None, lambda: nets.spec.path.autocast(device))
        module.requires_grad_(False)


def main_phases(nets: PathNetworks, batch: int, device: torch.device) -> None:
    """G main (non-saturating loss) and D main (logistic loss on fakes and reals), gradients only."""
    _run_phases(nets, ("Gmain", "Dmain"), batch, device)


def g_reg_phase(nets: PathNetworks, batch: int, device: torch.device, pl_mean: torch.Tensor) -> None:
    """Path length regularisation (on the batch shrunk by the preset's pl_batch_shrink, as in training)."""
    _run_phases(nets, ("Greg",), batch, device, pl_mean)


def d_reg_phase(nets: PathNetworks, batch: int, device: torch.device) -> None:
    """R1 on the reals."""
    _run_phases(nets, ("Dreg",), batch, device)


def training_rows(G: nn.Module, D: nn.Module, batch: int, device: torch.device, min_seconds: float,
                  paths: Sequence[str] = DEFAULT_PATHS, cfg: str = "stylegan2", resolution: int = 32,
                  min_calls: int = 2, widths: Optional[dict] = None, rounds: int = 1) -> List[dict]:
    """Training img/s over a lazy-regularisation cycle per path: each phase timed on its own, weighted by how
    often the cycle runs it (`phases_per_cycle`; no G reg phase for StyleGAN3, see `has_g_reg`). With `rounds`
    > 1 the paths are measured in interleaved rounds and each phase keeps its best round."""
    pl_mean = torch.zeros([], device=device)
    counts = phases_per_cycle(has_g_reg(cfg, resolution))
    rows, results = [], {}
    flops_of: Dict[tuple, float] = {}
    with _compiler_scope(paths):
        setups = {}
        for path in paths:
            nets = path_networks(path, G, D, cfg, resolution, device, widths, reset_compiler=False)
            nets.G.train()
            nets.D.train()
            row = {"what": "train_step", "path": path, "device": str(device), "batch": batch}
            phases = {"main": lambda nets=nets: main_phases(nets, batch, device),
                      "g_reg": lambda nets=nets: g_reg_phase(nets, batch, device, pl_mean),
                      "d_reg": lambda nets=nets: d_reg_phase(nets, batch, device)}
            phases = {phase: fn for phase, fn in phases.items() if phase in counts}
            impls = (nets.spec.path.ops["conv2d_resample"], nets.spec.path.ops["filtered_lrelu"])
            if impls not in flops_of:  # per image, counted on one (training modulates per sample)
                eager = dataclasses.replace(nets, G_fast=nets.G, D_fast=nets.D, mains={})
                flops_of[impls] = count_flops(lambda: main_phases(eager, 1, device))
            row["gflop_per_img_main_phases"] = flops_of[impls] / 1e9
            setups[path] = (nets, row, phases)
        seconds: Dict[str, Dict[str, float]] = {path: {} for path in paths}
        for round_index in range(rounds):
            for path, (nets, row, phases) in setups.items():
                if round_index == 0:
                    if device.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(device)
                    if nets.spec.compile:  # the first call compiles every graph of the main phases
                        row["compile_s"] = round(seconds_of(phases["main"], device), 2)
                for phase, fn in phases.items():  # the first call of a phase allocates gradients and primitives
                    warmup = int(round_index == 0 and not (phase == "main" and nets.spec.compile))
                    elapsed = seconds_per_call(fn, device, min_seconds, warmup=warmup, min_calls=min_calls)
                    seconds[path][phase] = min(seconds[path].get(phase, math.inf), elapsed)
                if round_index == 0:
                    row["peak_mem_mb"] = round(peak_memory_mb(device), 1)
    for path, (nets, row, phases) in setups.items():
        cycle_s = sum(counts[phase] * s for phase, s in seconds[path].items())
        results[path] = batch * counts["main"] / cycle_s
        row.update({"img_per_s": results[path], "sec_per_kimg": 1000 / results[path],
                    **{f"{phase}_s": _significant(s, 6) for phase, s in seconds[path].items()}})
        if rounds > 1:
            row["rounds"] = rounds
        rows.append(row)
    for row in rows:
        _add_speedup(row, results)
    return rows


def run_benchmarks(cfg: str = "stylegan2", resolution: int = 32, device: str = "cpu",
                   batch_sizes: Sequence[int] = SWEEPS["quick"].batch_sizes,
                   train_batch: int = SWEEPS["quick"].train_batch, min_seconds: float = SWEEPS["quick"].min_seconds,
                   paths: Optional[Sequence[str]] = None, training: bool = True,
                   emit: Callable[[dict], None] = lambda row: None,
                   min_calls: int = SWEEPS["quick"].min_calls, train_reference: bool = True,
                   channel_base: Optional[int] = None, channel_max: Optional[int] = None,
                   map_depth: Optional[int] = None, img_channels: int = 3, case: Optional[str] = None,
                   rounds: int = 1) -> List[dict]:
    """All rows for one preset and resolution; `emit` is called with each row as it is measured.

    paths: None for `default_paths(device)`. train_reference: False leaves the reference path out of training
    (when other paths remain; their speedup is then against `fast`). channel_base/channel_max/map_depth: None
    for the preset's. img_channels: image channels of G and D. case: the `CASES` name the settings came from,
    recorded in every row. rounds: measure the paths in this many interleaved rounds, each keeping its best
    (1: one path after the other). The defaults are the quick sweep (`SWEEPS`)."""
    dev = torch.device(device)
    paths = default_paths(dev) if paths is None else tuple(paths)
    if not paths:
        raise UserInputError(f"no path given; choose from {', '.join(PATHS)}")
    for path in paths:  # before measuring anything
        check_path(path, dev)
    if min_calls < 1 or min_seconds < 0 or rounds < 1:
        raise UserInputError(f"min_calls and rounds must be >= 1 and min_seconds >= 0, got {min_calls}, {rounds} "
                             f"and {min_seconds}")
    widths = {k: v for k, v in (("channel_base", channel_base), ("channel_max", channel_max),
                                ("map_depth", map_depth)) if v is not None}
    if img_channels != 3:
        widths["img_channels"] = img_channels
    G, D = build_networks(cfg, resolution, dev, **widths)
    peaks = {precision: matmul_tflops(dev, MATMUL_DTYPES[precision])
             for precision in sorted({PATH_SPECS[p].precision for p in paths})}
    common = {"config": f"{cfg}@{resolution}", "machine": machine_description(dev)}
    if widths:  # recorded only when overridden, so rows of the preset's own widths are unchanged
        common.update({"channel_base": channel_base, "channel_max": channel_max, **widths})
    if case is not None:
        common["case"] = case
    rows = []

    def add(row: dict) -> None:
        precision = PATH_SPECS[row["path"]].precision
        row["device_matmul_dtype"] = precision
        row["device_matmul_tflops"] = _significant(peaks[precision])
        if "achieved_tflops" in row:
            row["fraction_of_matmul"] = _significant(row["achieved_tflops"] / peaks[precision])
        rows.append({**common, **row})
        emit(rows[-1])

    for row in inference_rows(G, D, batch_sizes, dev, min_seconds, paths, cfg, resolution, min_calls, widths,
                              rounds):
        add(row)
    if training:
        train_paths = [p for p in paths if train_reference or p != "reference"] or list(paths)
        for row in training_rows(G, D, train_batch, dev, min_seconds, train_paths, cfg, resolution, min_calls,
                                 widths, rounds):
            add(row)
    return rows


def summary_lines(rows: Sequence[dict]) -> List[str]:
    """A short human-readable table of `rows`: img/s and speedup against the reference per measurement."""
    if not rows:
        return []
    machine = rows[0]["machine"]
    isa = ", ".join(flag for flag in ISA_FLAGS if machine.get(flag)) or "no AVX2"
    lines = [f"{rows[0]['config']} on {rows[0]['device']} ({machine['cpu']}, {machine['cores']} cores, {isa}; "
             f"bf16 {'native' if machine['native_bf16'] else 'emulated'})",
             f"{'what':<16} {'path':<20} {'img/s':>9} {'speedup':>8}"]
    for row in rows:
        lines.append(f"{row['what']:<16} {row['path']:<20} {row['img_per_s']:>9.2f} {row['speedup']:>7.2f}x"
                     f" vs {row['speedup_vs']}")
    return lines
