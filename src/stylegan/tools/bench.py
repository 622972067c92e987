"""`stylegan bench`: throughput of the fast paths against the float32 reference path, in one process.

Paths (each a named setting of the same randomly initialised networks, see PATH_SPECS):
- `reference`: float32, fused modulated convolution, reference resampling (upsample/filter at full resolution
  before convolving), one op per step of bias/activation/gain/clamp — the plain-PyTorch definition every faster
  path is tested against;
- `fast`: float32, strided/transposed resampling convolutions, per-sample modulation for batches > 1, fused
  bias/activation/clamp (in place, differentiated from its output);
- `fast_plain_bias_act`: `fast` with the reference bias/activation (measures what the fused op gains);
- `fast_bf16`: `fast` under bfloat16 autocast (AMX/AVX-512-BF16 CPUs, recent GPUs);
- `channels_last[_bf16]`: `fast[_bf16]` with NHWC activations and weights;
- `compiled[_bf16]`: `fast[_bf16]` through torch.compile (Inductor); in training the G main and D main passes
  are compiled and the regularisation passes (double backward, which compiled graphs do not support) run eagerly;
- `fp16`, `compiled_fp16` (CUDA): the preset's float16 blocks with clamping, as NVIDIA's code runs them.

Every row reports img/s, the reference img/s measured in the same process, the speedup, peak memory and
FLOPs per image (counted with torch.utils.flop_counter), so the ratio holds on a noisy machine; the device's
measured bf16 matmul throughput is reported beside it, so achieved TFLOP/s can be read as a fraction of what
the device reaches. Paths with other arithmetic than `fast` report PSNR against it on the same seeds, and
compiled paths the seconds their first call spent compiling.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import resource
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..errors import UserInputError
from ..networks.fast_paths import check_compile_support, compile_module, set_channels_last
from ..networks.layers import set_bias_act_impl, set_resample_impl
from ..networks.registry import build_network
from ..presets import resolve_preset
from ..training import losses

@dataclass(frozen=True)
class PathSpec:
    resample_impl: str = "fast"
    bias_act_impl: str = "fused"
    fused_modconv: Optional[bool] = None  # None: fused for batch 1, per-sample scaling otherwise
    precision: str = "fp32"  # 'bf16': autocast; 'fp16': the preset's float16 blocks (CUDA only)
    channels_last: bool = False
    compile: bool = False


PATH_SPECS: Dict[str, PathSpec] = {
    "reference": PathSpec("reference", "reference", fused_modconv=True),
    "fast": PathSpec(),
    "fast_plain_bias_act": PathSpec(bias_act_impl="reference"),
    "fast_bf16": PathSpec(precision="bf16"),
    "channels_last": PathSpec(channels_last=True),
    "channels_last_bf16": PathSpec(precision="bf16", channels_last=True),
    "compiled": PathSpec(compile=True),
    "compiled_bf16": PathSpec(precision="bf16", compile=True),
    "fp16": PathSpec(precision="fp16"),
    "compiled_fp16": PathSpec(precision="fp16", compile=True),
}
PATHS = tuple(PATH_SPECS)
DEFAULT_PATHS = ("reference", "fast", "fast_bf16")


def _autocast(device: torch.device, spec: PathSpec):
    if spec.precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(fn: Callable[[], object], device: torch.device, min_seconds: float, warmup: int = 1) -> float:
    """Mean wall time of `fn` after `warmup` calls, over at least `min_seconds` and 2 calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and calls >= 2:
            return elapsed / calls


def timed_call(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of one call (e.g. the first call of a compiled function, which compiles it)."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA allocation since the last reset; on the CPU the process's peak RSS (a running maximum)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = (a.float() - b.float()).square().mean().item()
    return math.inf if mse == 0 else 10 * math.log10(4 / mse)


def matmul_tflops(device: torch.device, dtype: torch.dtype = torch.bfloat16, min_seconds: float = 1.0) -> float:
    """Measured dense matmul throughput of `device` in `dtype` (TFLOP/s): the yardstick for achieved TFLOP/s."""
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n ** 3 / seconds_per_call(lambda: a @ b, device, min_seconds) / 1e12


def build_networks(cfg_name: str, resolution: int, device: torch.device, seed: int = 0, fp16: bool = False):
    """Randomly initialised G and D of a preset (3 channels, unconditional) on `device`; float32 everywhere
    unless `fp16`, which keeps the preset's float16 blocks (they run in float16 on CUDA only)."""
    net = resolve_preset(cfg_name, resolution).network
    if not fp16:
        net = dataclasses.replace(net, num_fp16_res=0)
    torch.manual_seed(seed)
    G = build_network(net.generator_class, net.generator_kwargs(resolution, 3, 0)).to(device)
    D = build_network(net.discriminator_class, net.discriminator_kwargs(resolution, 3, 0)).to(device)
    return G, D


@dataclass
class PathNetworks:
    """The networks of one path (copies of the float32 originals with the path's switches) and what calls them:
    `G_fast`/`D_fast` are compiled for compiled paths, the modules themselves otherwise."""

    spec: PathSpec
    G: nn.Module
    D: nn.Module
    G_fast: Callable
    D_fast: Callable


def check_path(path: str, device: torch.device) -> PathSpec:
    """The spec of `path`; UserInputError for an unknown path or one `device` cannot run."""
    if path not in PATH_SPECS:
        raise UserInputError(f"unknown path {path!r}; choose from {', '.join(PATHS)}")
    spec = PATH_SPECS[path]
    if spec.precision == "fp16" and device.type != "cuda":
        raise UserInputError(f"path {path!r} runs float16 blocks, which exist on CUDA only; "
                             f"use fast_bf16 or compiled_bf16 on the {device.type}")
    return spec


def path_networks(path: str, G: nn.Module, D: nn.Module, cfg: str, resolution: int,
                  device: torch.device) -> PathNetworks:
    """Copies of G and D set up for `path`."""
    spec = check_path(path, device)
    if spec.precision == "fp16":
        G16, D16 = build_networks(cfg, resolution, device, fp16=True)
        G16.load_state_dict(G.state_dict())
        D16.load_state_dict(D.state_dict())
        G, D = G16, D16
    else:
        G, D = copy.deepcopy(G), copy.deepcopy(D)
    for module in (G, D):
        set_resample_impl(module, spec.resample_impl)
        set_bias_act_impl(module, spec.bias_act_impl)
        if spec.channels_last:
            set_channels_last(module, True)
    G_fast, D_fast = G, D
    if spec.compile:
        check_compile_support(device)
        # Compiled code is cached per Python function, with a limit on variants (then it silently runs eagerly):
        # start every compiled path with an empty cache so earlier paths and batch sizes do not use it up.
        torch._dynamo.reset()
        G_fast, D_fast = compile_module(G), compile_module(D)
    return PathNetworks(spec, G, D, G_fast, D_fast)


def _fused(spec: PathSpec, batch: int) -> bool:
    return spec.fused_modconv if spec.fused_modconv is not None else batch == 1


def inference_rows(G: nn.Module, D: nn.Module, batch_sizes: Sequence[int], device: torch.device,
                   min_seconds: float, paths: Sequence[str] = DEFAULT_PATHS, cfg: str = "stylegan2",
                   resolution: int = 32) -> List[dict]:
    """G(z) img/s per batch size and path, against the reference path."""
    rows = []
    for batch in batch_sizes:
        z = torch.randn(batch, G.z_dim, device=device)
        outputs: Dict[str, torch.Tensor] = {}
        results: Dict[str, float] = {}
        batch_rows = []
        for path in paths:
            nets = path_networks(path, G, D, cfg, resolution, device)
            nets.G.eval().requires_grad_(False)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            spec = nets.spec
            call = lambda g: g(z, None, noise_mode="const", fused_modconv=_fused(spec, batch))  # noqa: E731
            row = {"what": f"g_inference_b{batch}", "path": path, "device": str(device), "batch": batch}
            with torch.no_grad(), _autocast(device, spec):
                if spec.compile:
                    row["compile_s"] = round(timed_call(lambda: call(nets.G_fast), device), 2)
                results[path] = batch / seconds_per_call(lambda: call(nets.G_fast), device, min_seconds)
                outputs[path] = call(nets.G_fast).float()
                flops = count_flops(lambda: call(nets.G)) / batch
            row.update({"img_per_s": results[path], "gflop_per_img": flops / 1e9,
                        "achieved_tflops": flops * results[path] / 1e12,
                        "peak_mem_mb": round(peak_memory_mb(device), 1)})
            batch_rows.append(row)
        base = "fast" if "fast" in paths else None
        for row in batch_rows:
            row["reference_img_per_s"] = results.get("reference", results[paths[0]])
            row["speedup"] = row["img_per_s"] / row["reference_img_per_s"]
            if base is not None and row["path"] != base:
                value = psnr(outputs[row["path"]], outputs[base])
                row[f"psnr_vs_{base}_db"] = None if math.isinf(value) else round(value, 2)
        rows.extend(batch_rows)
    return rows


def training_step(nets: PathNetworks, batch: int, device: torch.device, step: int, pl_mean: torch.Tensor,
                  g_reg: int = 4, d_reg: int = 16) -> None:
    """One step of the StyleGAN2 schedule: G main, D main every step; G reg (path length) every `g_reg` steps,
    D reg (R1) every `d_reg` (gradients only: optimizer updates cost the same on every path).

    The main passes call `nets.G_fast`/`nets.D_fast` (compiled on compiled paths); the regularisers need double
    backward and call the modules."""
    G, D, spec = nets.G, nets.D, nets.spec
    fused = spec.fused_modconv if spec.fused_modconv is not None else False
    z = torch.randn(batch, G.z_dim, device=device)
    real = torch.randn(batch, D.img_channels, D.img_resolution, D.img_resolution, device=device)
    with _autocast(device, spec):
        G.requires_grad_(True)
        D.requires_grad_(False)
        losses.g_nonsaturating_loss(nets.D_fast(nets.G_fast(z, None, fused_modconv=fused))).float().mean().backward()
        if step % g_reg == 0:
            ws = G.mapping(z[: max(batch // 2, 1)], None)
            img = G.synthesis(ws, fused_modconv=fused).float()
            penalty, _ = losses.path_length_penalty(losses.path_lengths(img, ws), pl_mean, 0.01)
            (penalty.mean() * 2 * g_reg).backward()
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad():
            fake = nets.G_fast(z, None, fused_modconv=fused)
        loss = losses.d_logistic_loss_fake(nets.D_fast(fake)) + losses.d_logistic_loss_real(nets.D_fast(real))
        loss.float().mean().backward()
        if step % d_reg == 0:
            x = real.detach().requires_grad_(True)
            (losses.r1_penalty(x, D(x).float()).mean() * d_reg).backward()
    D.requires_grad_(False)


def training_rows(G: nn.Module, D: nn.Module, batch: int, device: torch.device, min_seconds: float,
                  paths: Sequence[str] = DEFAULT_PATHS, steps: int = 16, cfg: str = "stylegan2",
                  resolution: int = 32) -> List[dict]:
    """Training img/s over a full lazy-regularisation cycle (16 steps: 4 G reg, 1 D reg) per path."""
    pl_mean = torch.zeros([], device=device)
    rows, results = [], {}
    for path in paths:
        nets = path_networks(path, G, D, cfg, resolution, device)
        nets.G.train()
        nets.D.train()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        eager = dataclasses.replace(nets, G_fast=nets.G, D_fast=nets.D)
        flops = count_flops(lambda: training_step(eager, batch, device, 1, pl_mean)) / batch
        row = {"what": "train_step", "path": path, "device": str(device), "batch": batch}
        if nets.spec.compile:  # the first steps compile every graph the cycle uses (G and D, with and without grad)
            row["compile_s"] = round(timed_call(lambda: [training_step(nets, batch, device, s, pl_mean)
                                                         for s in range(2)], device), 2)

        def cycle():
            for step in range(steps):
                training_step(nets, batch, device, step, pl_mean)
        seconds = seconds_per_call(cycle, device, min_seconds, warmup=0)
        results[path] = batch * steps / seconds
        row.update({"img_per_s": results[path], "sec_per_kimg": 1000 / results[path],
                    "gflop_per_img_main_phases": flops / 1e9, "peak_mem_mb": round(peak_memory_mb(device), 1)})
        rows.append(row)
    for row in rows:
        row["reference_img_per_s"] = results.get("reference", results[paths[0]])
        row["speedup"] = row["img_per_s"] / row["reference_img_per_s"]
    return rows


def run_benchmarks(cfg: str = "stylegan2", resolution: int = 32, device: str = "cpu",
                   batch_sizes: Sequence[int] = (1, 8, 16), train_batch: int = 8, min_seconds: float = 2.0,
                   paths: Sequence[str] = DEFAULT_PATHS, training: bool = True,
                   emit: Callable[[dict], None] = lambda row: None) -> List[dict]:
    """All rows for one preset and resolution; `emit` is called with each row as it is measured."""
    dev = torch.device(device)
    if not paths:
        raise UserInputError(f"no path given; choose from {', '.join(PATHS)}")
    for path in paths:  # before measuring anything
        check_path(path, dev)
    G, D = build_networks(cfg, resolution, dev)
    peak = matmul_tflops(dev, torch.bfloat16, min(min_seconds, 1.0))
    common = {"config": f"{cfg}@{resolution}", "device_bf16_matmul_tflops": round(peak, 3)}
    rows = []

    def add(row: dict) -> None:
        if "achieved_tflops" in row:
            row["fraction_of_bf16_matmul"] = round(row["achieved_tflops"] / peak, 4)
        rows.append({**common, **row})
        emit(rows[-1])

    for row in inference_rows(G, D, batch_sizes, dev, min_seconds, paths, cfg, resolution):
        add(row)
    if training:
        for row in training_rows(G, D, train_batch, dev, min_seconds, paths, cfg=cfg, resolution=resolution):
            add(row)
    return rows
