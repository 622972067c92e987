"""Op-level benchmark: bias + activation + gain + clamp, reference vs fused, forward and forward + backward.

Shape: a 512-channel 32x32 activation at batch 16 (a stylegan2@32 synthesis layer), lrelu, gain sqrt(2),
clamp 256 as the layers use it. Reports ms per call, the speedup and the bytes autograd keeps for backward
(counted with saved-tensor hooks), both measured in one process.
Run: `python benchmarks/bench_ops.py [--device cuda] [--seconds 1]`; results go to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from stylegan.ops.bias_act import IMPLS, bias_act  # noqa: E402
from stylegan.tools.bench import seconds_per_call  # noqa: E402


def saved_bytes(fn) -> int:
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel() * t.element_size()) or t,
                                                  lambda t: t):
        fn()
    return sum(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    device = torch.device(args.device)
    x = torch.randn(16, 512, 32, 32, device=device)
    b = torch.randn(512, device=device)
    xg = x.clone().requires_grad_(True)
    rows, times = [], {}
    for impl in [name for name in IMPLS if name != "triton" or device.type == "cuda"]:  # Triton: CUDA only
        def call(inp):
            return bias_act(inp, b, act="lrelu", gain=math.sqrt(2), clamp=256, impl=impl)

        def forward_backward():
            y = call(xg)
            y.backward(torch.ones_like(y))
        with torch.no_grad():
            forward = seconds_per_call(lambda: call(x), device, args.seconds)
        both = seconds_per_call(forward_backward, device, args.seconds)
        times[impl] = (forward, both)
        rows.append({"what": "bias_act_lrelu_clamp", "impl": impl, "shape": list(x.shape), "device": str(device),
                     "forward_ms": round(forward * 1e3, 3), "forward_backward_ms": round(both * 1e3, 3),
                     "saved_for_backward_mb": round(saved_bytes(lambda: call(xg)) / 2 ** 20, 1)})
    for row in rows:
        row["forward_speedup"] = round(times["reference"][0] / times[row["impl"]][0], 2)
        row["forward_backward_speedup"] = round(times["reference"][1] / times[row["impl"]][1], 2)
        print(row)
    print("wrote", write_results("ops", rows, device))


if __name__ == "__main__":
    main()
