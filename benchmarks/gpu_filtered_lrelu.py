"""StyleGAN3's filtered leaky ReLU on the layers of the presets' generators: the 'reference', 'fast' and
'triton' implementations (and 'fast_inplace' in inference), forward and forward + backward, timed on a GPU with
the peak memory each pass adds, and the Triton kernels' agreement with 'fast' on the same inputs.

Each distinct layer (factors, padding, filters, channels, size, dtype) is measured once and reported with the
names of the layers it stands for. The input is what the layer's convolution gives the op: [batch, out channels,
in size + kernel - 1, same], float16 in the layers the preset runs in float16 (NVIDIA's mixed precision) unless
--fp32, the layer's own filters, bias and clamp.

    PYTHONPATH=src python benchmarks/gpu_filtered_lrelu.py                       # GPU: T at 256 and 1024
    PYTHONPATH=src python benchmarks/gpu_filtered_lrelu.py --nets stylegan3-r@256 --batch 8
    PYTHONPATH=src python benchmarks/gpu_filtered_lrelu.py --smoke               # CPU: Triton's interpreter

--smoke runs the same code on the CPU at tiny shapes (batch 1, 2 channels, inputs cropped to about 12 outputs)
in Triton's interpreter, one call per measurement (untimed warm-up excepted), and fails unless the kernels agree with 'fast': a check that
the benchmark and the kernels run, not a timing. On a GPU the results go to
benchmarks/results/<--name>_cuda.json.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

if "--smoke" in sys.argv:  # Triton's interpreter, chosen before Triton is imported (torch._dynamo imports it)
    os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402
from common import emit, write_results  # noqa: E402

from stylegan.networks.registry import build_network  # noqa: E402
from stylegan.ops.filtered_lrelu import filtered_lrelu, output_size  # noqa: E402
from stylegan.presets import resolve_preset  # noqa: E402
from stylegan.tools.bench import peak_memory_mb, seconds_per_call, timed_call  # noqa: E402

IMPLS = ("reference", "fast", "triton")


@dataclass
class LayerCase:
    """One distinct filtered_lrelu call of a generator."""

    names: List[str]
    shape: List[int]  # the op's input [N, C, H, W]
    dtype: torch.dtype
    kwargs: dict      # fu, fd, up, down, padding, gain, slope, clamp

    def key(self) -> tuple:
        k = self.kwargs
        return (tuple(self.shape), self.dtype, k["up"], k["down"], tuple(k["padding"]), k["gain"], k["slope"],
                k["clamp"], None if k["fu"] is None else tuple(k["fu"].shape),
                None if k["fd"] is None else tuple(k["fd"].shape))


def layer_cases(net: str, batch: int, fp32: bool) -> List[LayerCase]:
    """The filtered_lrelu calls of `net` ('stylegan3-t@256'), in layer order."""
    cfg, resolution = net.split("@")
    preset = resolve_preset(cfg, int(resolution)).network
    G = build_network(preset.generator_class, preset.generator_kwargs(int(resolution), 3, 0))
    cases = []
    for name in G.synthesis.layer_names:
        layer = getattr(G.synthesis, name)
        size = layer.in_size + layer.conv_kernel - 1
        gain, slope = (1.0, 1.0) if layer.is_torgb else (2 ** 0.5, 0.2)
        cases.append(LayerCase([f"{net}:{name}"], [batch, layer.out_channels, size, size],
                               torch.float16 if layer.use_fp16 and not fp32 else torch.float32,
                               dict(fu=layer.up_filter, fd=layer.down_filter, up=layer.up_factor,
                                    down=layer.down_factor, padding=layer.padding, gain=gain, slope=slope,
                                    clamp=layer.conv_clamp)))
    return cases


def distinct(cases: List[LayerCase]) -> List[LayerCase]:
    """One case per distinct call, naming every layer it stands for."""
    kept: Dict[tuple, LayerCase] = {}
    for case in cases:
        if case.key() in kept:
            kept[case.key()].names.extend(case.names)
        else:
            kept[case.key()] = LayerCase(list(case.names), case.shape, case.dtype, case.kwargs)
    return list(kept.values())


def out_size(size: int, kwargs: dict) -> int:
    """The op's output size for a square input of `size` (the layers pad both axes alike)."""
    taps = [1 if f is None else f.shape[-1] for f in (kwargs["fu"], kwargs["fd"])]
    return output_size(size, kwargs["up"], kwargs["down"], kwargs["padding"][0], kwargs["padding"][1], *taps)


def shrink(case: LayerCase, target: int = 12) -> LayerCase:
    """The case at batch 1, 2 channels and the smallest input giving `target` outputs (the smoke test's size)."""
    size = 1
    while out_size(size, case.kwargs) < target:
        size += 1
    return LayerCase(case.names, [1, 2, size, size], case.dtype, case.kwargs)


def milliseconds(fn: Callable[[], None], device: torch.device, seconds: float) -> float:
    """Mean time per call over `seconds` after a warm-up call (Triton compiles there); one call if 0."""
    return 1e3 * (seconds_per_call(fn, device, seconds) if seconds > 0 else timed_call(fn, device))


def peak_mb(fn: Callable[[], None], device: torch.device) -> Optional[float]:
    """Memory one call of `fn` allocates at its peak beyond what was allocated before (CUDA only)."""
    if device.type != "cuda":
        return None
    before = torch.cuda.memory_allocated(device) / 2 ** 20
    torch.cuda.reset_peak_memory_stats(device)
    timed_call(fn, device)
    return round(peak_memory_mb(device) - before, 1)


def agreement(case: LayerCase, x: torch.Tensor, b: torch.Tensor, dy: torch.Tensor, kwargs: dict) -> dict:
    """Largest |triton - fast| of y, dx and db, relative to the largest |fast| of each."""
    out = {}
    for impl in ("fast", "triton"):
        xi, bi = x.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
        y = filtered_lrelu(xi, b=bi, impl=impl, **kwargs)
        y.backward(dy)
        out[impl] = (y.detach().float(), xi.grad.float(), bi.grad.float())
    return {f"rel_err_{name}": float((t - f).abs().max() / f.abs().max().clamp_min(1e-30))
            for name, t, f in zip(("y", "dx", "db"), out["triton"], out["fast"])}


def measure(case: LayerCase, device: torch.device, seconds: float) -> List[dict]:
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(case.shape, generator=g, device=device).to(case.dtype)
    b = torch.randn(case.shape[1], generator=g, device=device).to(case.dtype)
    kwargs = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in case.kwargs.items()}
    n, c, size, _ = case.shape
    out_shape = [n, c, out_size(size, kwargs), out_size(size, kwargs)]
    dy = torch.randn(out_shape, generator=g, device=device).to(case.dtype)
    base = {"layers": case.names, "input": case.shape, "output": out_shape,
            "dtype": str(case.dtype).replace("torch.", ""), "up": kwargs["up"], "down": kwargs["down"],
            "radial": kwargs["fd"] is not None and kwargs["fd"].ndim == 2}
    rows = []
    for impl in IMPLS + ("fast_inplace",):
        def forward(impl=impl):
            with torch.no_grad():
                filtered_lrelu(x, b=b, impl=impl, **kwargs)
        rows.append({**base, "impl": impl, "pass": "forward", "ms": round(milliseconds(forward, device, seconds), 3),
                     "peak_mb": peak_mb(forward, device)})
        if impl == "fast_inplace":
            continue
        xg, bg = x.detach().requires_grad_(True), b.detach().requires_grad_(True)

        def train(impl=impl):
            filtered_lrelu(xg, b=bg, impl=impl, **kwargs).backward(dy)
            xg.grad = bg.grad = None
        rows.append({**base, "impl": impl, "pass": "forward+backward", "ms": round(milliseconds(train, device, seconds), 3),
                     "peak_mb": peak_mb(train, device)})
    check = agreement(case, x, b, dy, kwargs)
    for row in rows:
        row.update(check)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", default="stylegan3-t@256,stylegan3-t@1024", help="preset@resolution, ...")
    parser.add_argument("--batch", type=int, default=4, help="images per call (NVIDIA's per-GPU batch: 4)")
    parser.add_argument("--seconds", type=float, default=0.5, help="timed seconds per measurement (at least 2 calls)")
    parser.add_argument("--fp32", action="store_true", help="float32 in every layer")
    parser.add_argument("--smoke", action="store_true", help="CPU, Triton's interpreter, tiny shapes")
    parser.add_argument("--name", default="gpu_filtered_lrelu", help="results file benchmarks/results/<name>_cuda.json")
    args = parser.parse_args()
    device = torch.device("cpu" if args.smoke else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run on a GPU, or with --smoke on the CPU")
    cases = [case for net in args.nets.split(",") for case in layer_cases(net, args.batch, args.fp32)]
    rows = []
    for case in distinct([shrink(case) for case in cases] if args.smoke else cases):
        for row in measure(case, device, 0.0 if args.smoke else args.seconds):
            emit(rows, row)
    worst = max([max(r["rel_err_y"], r["rel_err_dx"], r["rel_err_db"]) for r in rows if r["dtype"] == "float32"],
                default=0.0)
    print(f"largest float32 relative error of triton against fast: {worst:.2e}")
    if args.smoke:
        if worst > 1e-4:
            sys.exit("triton disagrees with fast")
        return
    print(write_results(args.name, rows, device))


if __name__ == "__main__":
    main()
