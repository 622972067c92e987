"""The convolutions alone of issue #15's small config G (batch 16, 64 channels, 4x4 to 32x32, float32, NCHW and
channels-last): the floor of any float32 inference path that keeps NVIDIA's layer arithmetic, next to a
2048^3 float32 matmul. Prints one JSON line (results: benchmarks/results/conv_floor_small_cpu.jsonl).

    python benchmarks/conv_floor.py
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/conv_floor.py   # as an AVX2-only CPU
"""
import json, os, sys, time
import torch
import torch.nn.functional as F
torch.manual_seed(0)
B, C = 16, 64
def best(fn, n=20):
    for _ in range(3): fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return min(ts)
rows = {}
for layout in ("nchw", "channels_last"):
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    w = torch.randn(C, C, 3, 3).to(memory_format=fmt)
    wt = torch.randn(C, C, 3, 3).to(memory_format=fmt)
    total = 0.0
    with torch.no_grad():
        for res in (4, 8, 16, 32):
            x = torch.randn(B, C, res, res).to(memory_format=fmt)
            total += best(lambda: F.conv2d(x, w, padding=1))
            if res > 4:
                xl = torch.randn(B, C, res // 2, res // 2).to(memory_format=fmt)
                total += best(lambda: F.conv_transpose2d(xl, wt, stride=2))
    rows[layout] = total
# dense fp32 matmul yardstick
a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
mm = best(lambda: a @ b, 10)
flops_conv = 2 * C * C * 9 * B * (16 + 64 + 256 + 1024) + 2 * C * C * 9 * B * (16 + 64 + 256)
out = {"threads": torch.get_num_threads(), "isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
       "conv_only_ms_b16": {k: round(v * 1000, 2) for k, v in rows.items()},
       "conv_only_img_per_s": {k: round(B / v, 1) for k, v in rows.items()},
       "conv_gflop_b16": round(flops_conv / 1e9, 3),
       "conv_tflops": {k: round(flops_conv / v / 1e12, 3) for k, v in rows.items()},
       "fp32_matmul_2048_tflops": round(2 * 2048 ** 3 / mm / 1e12, 3), "load": os.getloadavg()[0]}
print(json.dumps(out))
