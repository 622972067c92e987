"""bias_act's and upfirdn2d's Triton kernels (and conv2d_resample with its FIR passes in them) against the
'reference' and 'fast' implementations at StyleGAN2 shapes: time per call forward, forward + backward and, where
R1 and path length take it, the double backward; the peak memory each pass adds; each implementation's largest
difference from the reference (value and input gradient, relative to the reference's largest magnitude).

Cases at batch 32, 512 channels, 64x64 (the layers of a 256x256 generator's 64x64 block and its discriminator):
the layer's bias + lrelu + clamp in float16 (NVIDIA's mixed precision) and float32; the FIR pass after the
upsampling transposed convolution; the skip architectures' image upsample (G) and downsample (D); the FIR pass
before D's strided convolution; the whole resampling convolutions (3x3, up 2 and down 2). And StyleGAN3's
filtered_lrelu on each distinct layer of --sg3-nets (default StyleGAN3-T at 256 and 1024) at --sg3-batch (4,
NVIDIA's images per GPU): the input its convolution gives, float16 where the preset runs the layer in float16, its
filters, padding and clamp (no double backward: StyleGAN3 has no path length and D no filtered_lrelu).

    PYTHONPATH=src python benchmarks/gpu_kernels.py --out "$OUT"          # GPU (about a minute)
    PYTHONPATH=src python benchmarks/gpu_kernels.py --smoke               # CPU: Triton's interpreter, tiny shapes

--smoke runs the same code on the CPU at batch 2, 4 channels, 8x8 (filtered_lrelu: batch 1, 2 channels, inputs
giving 12x12 outputs) in Triton's interpreter, one call per
measurement, and fails unless every implementation agrees with the reference: a check that the benchmark and the
kernels run, not a timing. Results: <--out>/gpu_kernels_<device>.json (default benchmarks/results).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

if "--smoke" in sys.argv:  # Triton's interpreter, chosen before Triton is imported (torch._dynamo imports it)
    os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402
from common import RESULTS, emit, machine  # noqa: E402

from stylegan.io.atomic import atomic_write_text  # noqa: E402
from stylegan.networks.registry import build_network  # noqa: E402
from stylegan.ops.bias_act import bias_act  # noqa: E402
from stylegan.ops.conv2d_resample import conv2d_resample  # noqa: E402
from stylegan.ops.filtered_lrelu import filtered_lrelu, output_size  # noqa: E402
from stylegan.ops.registry import OPS  # noqa: E402
from stylegan.ops.upfirdn2d import setup_filter  # noqa: E402
from stylegan.presets import resolve_preset  # noqa: E402
from stylegan.tools.bench import peak_memory_mb, seconds_per_call  # noqa: E402

IMPLS = ("reference", "fast", "triton")
TOLERANCE = {"float32": 1e-4, "float16": 2e-2}  # the smoke test's largest relative difference from the reference


@dataclass
class Case:
    """One op call: `call(impl, x)` with x of `shape` (its other inputs fixed), and whether losses differentiate it
    twice."""

    name: str
    shape: List[int]
    dtype: torch.dtype
    call: Callable[[str, torch.Tensor], torch.Tensor]
    double: bool


def cases(batch: int, channels: int, res: int, device: torch.device) -> List[Case]:
    """The calls measured, at `batch` images of `channels` channels and `res` x `res` pixels."""
    gen = torch.Generator().manual_seed(0)
    f = setup_filter([1, 3, 3, 1], device=device)
    b = torch.randn(channels, generator=gen).to(device)
    w = (torch.randn(channels, channels, 3, 3, generator=gen) / math.sqrt(9 * channels)).to(device)

    def layer(impl, x):  # a synthesis / discriminator layer's bias + lrelu * sqrt(2) + clamp 256
        return bias_act(x, b.to(x.dtype), act="lrelu", clamp=256.0, impl=impl)

    def fir(**kwargs):
        return lambda impl, x: OPS["upfirdn2d"][impl](x, f, **kwargs)

    def resample(up, down):
        return lambda impl, x: conv2d_resample(x, w.to(x.dtype), f, up=up, down=down, padding=1, impl=impl)
    half = torch.float16
    return [
        Case("bias_act lrelu clamp", [batch, channels, res, res], half, layer, True),
        Case("bias_act lrelu clamp", [batch, channels, res, res], torch.float32, layer, True),
        Case("fir after transposed conv (up 2)", [batch, channels, res + 1, res + 1], half,
             fir(padding=[1, 1, 1, 1], gain=4.0), True),
        Case("skip image upsample (G)", [batch, 3, res // 2, res // 2], torch.float32,
             fir(up=2, padding=[2, 1, 2, 1], gain=4.0), True),
        Case("skip image downsample (D)", [batch, 3, res, res], half, fir(down=2, padding=[1, 1, 1, 1]), True),
        Case("fir before strided conv (down 2)", [batch, channels, res, res], half, fir(padding=[2, 2, 2, 2]), True),
        Case("conv2d_resample 3x3 up 2", [batch, channels, res // 2, res // 2], half, resample(2, 1), False),
        Case("conv2d_resample 3x3 down 2", [batch, channels, res, res], half, resample(1, 2), False),
    ]


def filtered_lrelu_cases(nets: str, batch: int, device: torch.device, smoke: bool) -> List[Case]:
    """filtered_lrelu on each distinct layer (factors, padding, filter shapes, channels, size, dtype) of the
    StyleGAN3 generators `nets` ('stylegan3-t@256,...'), named after the layers it stands for; `smoke`: 2 channels
    and the smallest input giving 12x12 outputs."""
    found: Dict[tuple, tuple] = {}
    for net in nets.split(","):
        cfg, resolution = net.split("@")
        preset = resolve_preset(cfg, int(resolution)).network
        G = build_network(preset.generator_class, preset.generator_kwargs(int(resolution), 3, 0))
        for name in G.synthesis.layer_names:
            layer = getattr(G.synthesis, name)
            gain, slope = (1.0, 1.0) if layer.is_torgb else (math.sqrt(2), 0.2)
            kw = dict(fu=layer.up_filter, fd=layer.down_filter, up=layer.up_factor, down=layer.down_factor,
                      padding=layer.padding, gain=gain, slope=slope, clamp=layer.conv_clamp)
            taps = [1 if f is None else f.shape[-1] for f in (kw["fu"], kw["fd"])]
            size, channels = layer.in_size + layer.conv_kernel - 1, layer.out_channels
            if smoke:
                size, channels = 1, 2
                while output_size(size, kw["up"], kw["down"], *kw["padding"][:2], *taps) < 12:
                    size += 1
            dtype = torch.float16 if layer.use_fp16 else torch.float32
            key = (size, channels, dtype, layer.up_factor, layer.down_factor, tuple(layer.padding), layer.is_torgb,
                   None if kw["fd"] is None else kw["fd"].ndim)
            found.setdefault(key, ([], [batch, channels, size, size], dtype, kw))[0].append(f"{net} {name}")

    def call(kw, b):
        f = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
        return lambda impl, x: filtered_lrelu(x, b=b.to(x.dtype), impl=impl, **f)
    gen = torch.Generator().manual_seed(0)
    return [Case(f"filtered_lrelu {', '.join(names)}", shape, dtype,
                 call(kw, torch.randn(shape[1], generator=gen).to(device)), False)
            for names, shape, dtype, kw in found.values()]


def passes(case: Case, impl: str, x: torch.Tensor, dy: torch.Tensor) -> Dict[str, Callable[[], None]]:
    """The passes timed: forward; forward + backward; R1's double backward (gradient of the squared input
    gradient)."""
    def forward():
        with torch.no_grad():
            case.call(impl, x)

    def backward():
        xg = x.detach().requires_grad_(True)
        case.call(impl, xg).backward(dy)

    def double():  # the gradient seed depends on parameters in R1 (D's later layers): differentiate through it
        xg, dyg = x.detach().requires_grad_(True), dy.detach().requires_grad_(True)
        (gx,) = torch.autograd.grad(case.call(impl, xg), xg, dyg, create_graph=True)
        gx.float().square().sum().backward()
    found = {"forward": forward, "forward+backward": backward}
    if case.double:
        found["double backward"] = double
    return found


def added_mb(fn: Callable[[], None], device: torch.device) -> Optional[float]:
    """CUDA memory a call of `fn` allocates at its peak beyond what is allocated before it; None on the CPU."""
    if device.type != "cuda":
        return None
    before = torch.cuda.memory_allocated(device) / 2 ** 20
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    return round(peak_memory_mb(device) - before, 1)


def differences(case: Case, x: torch.Tensor, dy: torch.Tensor) -> Dict[str, Dict[str, float]]:
    """impl -> largest |impl - reference| of the value and of the input gradient, relative to the reference's."""
    results = {}
    for impl in IMPLS:
        xg = x.detach().requires_grad_(True)
        y = case.call(impl, xg)
        (gx,) = torch.autograd.grad(y, xg, dy)
        results[impl] = (y.detach().float(), gx.float())
    return {impl: {f"rel_diff_{name}": float((ours - ref).abs().max() / ref.abs().max().clamp_min(1e-30))
                   for name, ours, ref in zip(("y", "dx"), results[impl], results["reference"])}
            for impl in IMPLS}


def measure(case: Case, device: torch.device, seconds: float) -> List[dict]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(case.shape, generator=gen).to(device, case.dtype)
    with torch.no_grad():
        out_shape = list(case.call("reference", x).shape)
    dy = torch.randn(out_shape, generator=gen).to(device, case.dtype)
    diffs = differences(case, x, dy)
    rows = []
    for impl in IMPLS:
        for name, fn in passes(case, impl, x, dy).items():
            if seconds > 0:
                ms = seconds_per_call(fn, device, seconds) * 1e3
            else:  # the smoke test: run once
                t0 = time.perf_counter()
                fn()
                ms = (time.perf_counter() - t0) * 1e3
            rows.append({"case": case.name, "input": case.shape, "output": out_shape,
                         "dtype": str(case.dtype).replace("torch.", ""), "impl": impl, "pass": name,
                         "ms": round(ms, 3), "peak_added_mb": added_mb(fn, device), **diffs[impl]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--res", type=int, default=64, help="resolution of the layers measured")
    parser.add_argument("--seconds", type=float, default=0.5, help="timed seconds per measurement (at least 2 calls)")
    parser.add_argument("--sg3-nets", default="stylegan3-t@256,stylegan3-t@1024", help="filtered_lrelu's layers")
    parser.add_argument("--sg3-batch", type=int, default=4, help="images per filtered_lrelu call")
    parser.add_argument("--smoke", action="store_true", help="CPU, Triton's interpreter, tiny shapes, no timing")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the results file")
    args = parser.parse_args()
    if args.smoke:
        args.batch, args.channels, args.res, args.seconds, args.sg3_batch = 2, 4, 8, 0.0, 1
    device = torch.device("cpu" if args.smoke else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run on a GPU, or with --smoke on the CPU")
    rows: List[dict] = []
    for case in (cases(args.batch, args.channels, args.res, device)
                 + filtered_lrelu_cases(args.sg3_nets, args.sg3_batch, device, args.smoke)):
        for row in measure(case, device, args.seconds):
            emit(rows, row)
    worst = {dtype: max(max(r["rel_diff_y"], r["rel_diff_dx"]) for r in rows if r["dtype"] == dtype)
             for dtype in TOLERANCE}
    print("largest relative difference from the reference:", ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"gpu_kernels_{device.type}.json"
    record = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "smoke": args.smoke,
              "triton": _triton_version(), "rows": rows}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    print("wrote", path)
    failed = {dtype: value for dtype, value in worst.items() if value > TOLERANCE[dtype]}
    if args.smoke and failed:
        sys.exit(f"implementations differ from the reference beyond {TOLERANCE}: {failed}")


def _triton_version() -> Optional[str]:
    try:
        import triton
    except ImportError:
        return None
    return triton.__version__


if __name__ == "__main__":
    main()
