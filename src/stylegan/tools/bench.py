"""`stylegan bench`: throughput of the fast paths against the float32 reference path, in one process.

Paths (each a named setting of the same randomly initialised networks):
- `reference`: float32, fused modulated convolution, reference resampling (upsample/filter at full resolution
  before convolving) — the plain-PyTorch definition every faster path is tested against;
- `fast`: float32, strided/transposed resampling convolutions, per-sample modulation for batches > 1;
- `fast_bf16`: `fast` under bfloat16 autocast (AMX/AVX-512-BF16 CPUs, recent GPUs).

Every row reports img/s, the reference img/s measured in the same process, the speedup, peak memory and
FLOPs per image (counted with torch.utils.flop_counter), so the ratio holds on a noisy machine and achieved
TFLOP/s can be compared with the device's peak. bf16 rows also report PSNR against float32 on the same seeds.
"""
from __future__ import annotations

import contextlib
import copy
import math
import resource
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..networks.layers import set_resample_impl
from ..networks.registry import build_network
from ..presets import resolve_preset
from ..training import losses

PATHS = ("reference", "fast", "fast_bf16")


@dataclass(frozen=True)
class PathSpec:
    resample_impl: str
    fused_modconv: Optional[bool]  # None: fused for batch 1, per-sample scaling otherwise
    bf16: bool


PATH_SPECS: Dict[str, PathSpec] = {
    "reference": PathSpec("reference", True, False),
    "fast": PathSpec("fast", None, False),
    "fast_bf16": PathSpec("fast", None, True),
}


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
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


def build_networks(cfg_name: str, resolution: int, device: torch.device, seed: int = 0):
    """Randomly initialised G and D of a preset (3 channels, unconditional), float32, on `device`."""
    net = resolve_preset(cfg_name, resolution).network
    torch.manual_seed(seed)
    G = build_network(net.generator_class, net.generator_kwargs(resolution, 3, 0)).to(device)
    D = build_network(net.discriminator_class, net.discriminator_kwargs(resolution, 3, 0)).to(device)
    return G, D


@contextlib.contextmanager
def using_path(path: str, *modules: nn.Module) -> Iterator[PathSpec]:
    """Switch the modules to `path`'s resampling implementation inside the block."""
    spec = PATH_SPECS[path]
    for m in modules:
        set_resample_impl(m, spec.resample_impl)
    try:
        yield spec
    finally:
        for m in modules:
            set_resample_impl(m, "fast")


def _fused(spec: PathSpec, batch: int) -> bool:
    return spec.fused_modconv if spec.fused_modconv is not None else batch == 1


def inference_rows(G: nn.Module, batch_sizes: Sequence[int], device: torch.device, min_seconds: float,
                   paths: Sequence[str] = PATHS) -> List[dict]:
    """G(z) img/s per batch size and path, against the reference path."""
    G = G.eval().requires_grad_(False)
    rows = []
    for batch in batch_sizes:
        z = torch.randn(batch, G.z_dim, device=device)
        outputs: Dict[str, torch.Tensor] = {}
        results: Dict[str, float] = {}
        for path in paths:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            with using_path(path, G) as spec, torch.no_grad():
                run = lambda: G(z, None, noise_mode="const", fused_modconv=_fused(spec, batch))  # noqa: E731
                with _autocast(device, spec.bf16):
                    results[path] = batch / seconds_per_call(run, device, min_seconds)
                    outputs[path] = run().float()
                    flops = count_flops(run) / batch
            row = {"what": f"g_inference_b{batch}", "path": path, "device": str(device), "batch": batch,
                   "img_per_s": results[path], "gflop_per_img": flops / 1e9,
                   "achieved_tflops": flops * results[path] / 1e12, "peak_mem_mb": round(peak_memory_mb(device), 1)}
            rows.append(row)
        for row in rows[-len(paths):]:
            ref = results.get("reference", results[paths[0]])
            row["reference_img_per_s"] = ref
            row["speedup"] = row["img_per_s"] / ref
            if PATH_SPECS[row["path"]].bf16:
                row["psnr_vs_fp32_db"] = psnr(outputs[row["path"]], outputs.get("fast", outputs[paths[0]]))
    return rows


def training_step(G: nn.Module, D: nn.Module, batch: int, device: torch.device, spec: PathSpec,
                  step: int, pl_mean: torch.Tensor, g_reg: int = 4, d_reg: int = 16) -> None:
    """One step of the StyleGAN2 schedule: G main, D main every step; G reg (path length) every `g_reg` steps,
    D reg (R1) every `d_reg` (gradients only: optimizer updates cost the same on every path)."""
    fused = spec.fused_modconv if spec.fused_modconv is not None else False
    z = torch.randn(batch, G.z_dim, device=device)
    real = torch.randn(batch, D.img_channels, D.img_resolution, D.img_resolution, device=device)
    with _autocast(device, spec.bf16):
        G.requires_grad_(True)
        D.requires_grad_(False)
        losses.g_nonsaturating_loss(D(G(z, None, fused_modconv=fused))).float().mean().backward()
        if step % g_reg == 0:
            ws = G.mapping(z[: max(batch // 2, 1)], None)
            img = G.synthesis(ws, fused_modconv=fused).float()
            penalty, _ = losses.path_length_penalty(losses.path_lengths(img, ws), pl_mean, 0.01)
            (penalty.mean() * 2 * g_reg).backward()
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad():
            fake = G(z, None, fused_modconv=fused)
        loss = losses.d_logistic_loss_fake(D(fake)) + losses.d_logistic_loss_real(D(real))
        loss.float().mean().backward()
        if step % d_reg == 0:
            x = real.detach().requires_grad_(True)
            (losses.r1_penalty(x, D(x).float()).mean() * d_reg).backward()
    D.requires_grad_(False)


def training_rows(G: nn.Module, D: nn.Module, batch: int, device: torch.device, min_seconds: float,
                  paths: Sequence[str] = PATHS, steps: int = 16) -> List[dict]:
    """Training img/s over a full lazy-regularisation cycle (16 steps: 4 G reg, 1 D reg) per path."""
    G.train()
    D.train()
    pl_mean = torch.zeros([], device=device)
    rows, results = [], {}
    for path in paths:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with using_path(path, G, D) as spec:
            def cycle():
                for step in range(steps):
                    training_step(G, D, batch, device, spec, step, pl_mean)
            flops = count_flops(lambda: training_step(G, D, batch, device, spec, 1, pl_mean)) / batch
            seconds = seconds_per_call(cycle, device, min_seconds, warmup=0)
        results[path] = batch * steps / seconds
        rows.append({"what": "train_step", "path": path, "device": str(device), "batch": batch,
                     "img_per_s": results[path], "sec_per_kimg": 1000 / results[path],
                     "gflop_per_img_main_phases": flops / 1e9, "peak_mem_mb": round(peak_memory_mb(device), 1)})
    for row in rows:
        row["reference_img_per_s"] = results.get("reference", results[paths[0]])
        row["speedup"] = row["img_per_s"] / row["reference_img_per_s"]
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    return rows


def run_benchmarks(cfg: str = "stylegan2", resolution: int = 32, device: str = "cpu",
                   batch_sizes: Sequence[int] = (1, 8, 16), train_batch: int = 8, min_seconds: float = 2.0,
                   paths: Sequence[str] = PATHS, training: bool = True,
                   emit: Callable[[dict], None] = lambda row: None) -> List[dict]:
    """All rows for one preset and resolution; `emit` is called with each row as it is measured."""
    dev = torch.device(device)
    G, D = build_networks(cfg, resolution, dev)
    common = {"config": f"{cfg}@{resolution}"}
    rows = []
    for row in inference_rows(G, batch_sizes, dev, min_seconds, paths):
        rows.append({**common, **row})
        emit(rows[-1])
    if training:
        for row in training_rows(copy.deepcopy(G), D, train_batch, dev, min_seconds, paths):
            rows.append({**common, **row})
            emit(rows[-1])
    return rows
