#!/usr/bin/env bash
# The GPU measurements issue #8 asks for, in one batch for a lent GPU machine (the device tool):
#   PYTHONPATH=src bash benchmarks/gpu.sh "$OUT"
# 1. stylegan2 256x256 training step: the eager float16 path (NVIDIA's mixed precision, the baseline of the
#    1.3x target) against compiled float16, compiled bf16 and channels-last variants;
# 2. generator inference at 1024x1024 in bf16 (eager and compiled), with achieved TFLOP/s as a fraction of the
#    GPU's measured bf16 matmul throughput (target: 40%);
# 3. the stylegan2@32 headline command, for comparison with the CPU rows.
# 4. StyleGAN3-T and -R (issue #13): reference vs fast filtered_lrelu, bf16 and compiled, at 256x256 with the
#    presets' own widths (training cycle: 16 G main + D main, one R1; StyleGAN3 has no path length phase).
# 0. the Triton kernels against the reference and fast ops per call (benchmarks/gpu_kernels.py, about a minute;
#    issue #23); the triton* paths of 1, 2 and 4 run the same kernels inside the networks.
# Every row is measured against the float32 reference path in the same process (see stylegan bench --help).
# Results are written as each part finishes, so a call cut short by the device's time limit keeps what ran.
set -euo pipefail
out="${1:-benchmarks/results}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu_machine.txt" || true
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" >> "$out/gpu_machine.txt"
stylegan() { python -m stylegan.cli.main "$@"; }
python benchmarks/gpu_kernels.py --out "$out"
stylegan bench --full --cfg stylegan2 --resolution 256 --device cuda --batch 32 --train-batch 32 --seconds 5 \
  --paths reference,fast,fp16,triton_fp16,compiled_fp16,fast_bf16,triton_bf16,compiled_bf16,channels_last_bf16 \
  --out "$out/bench_stylegan2_256_cuda.jsonl"
stylegan bench --full --cfg stylegan2 --resolution 1024 --device cuda --batch 1,8,32 --no-train --seconds 5 \
  --paths reference,fast,fp16,fast_bf16,compiled_bf16,channels_last_bf16 \
  --out "$out/bench_stylegan2_1024_inference_cuda.jsonl"
stylegan bench --full --cfg stylegan2 --resolution 32 --device cuda --paths reference,fast,fast_bf16,compiled_bf16 \
  --out "$out/bench_stylegan2_32_cuda.jsonl"
stylegan bench --full --cfg stylegan3-t --resolution 256 --device cuda --batch 1,8,32 --train-batch 32 --seconds 5 \
  --paths reference,fast,triton,fast_bf16,triton_bf16,compiled,compiled_bf16 --out "$out/bench_stylegan3-t_256_cuda.jsonl"
stylegan bench --full --cfg stylegan3-r --resolution 256 --device cuda --batch 1,8,32 --train-batch 32 --seconds 5 \
  --paths reference,fast,triton,fast_bf16,triton_bf16,compiled,compiled_bf16 --out "$out/bench_stylegan3-r_256_cuda.jsonl"
