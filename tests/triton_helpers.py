"""Where the Triton kernel tests run: compiled on a CUDA GPU when there is one, else on CPU tensors in Triton's
interpreter. The interpreter is chosen by TRITON_INTERPRET=1 when a kernel module (ops/*_triton.py) is imported,
which the tests do lazily (through the ops' registries, inside test functions); importing this module sets it first.
tests/ops/conftest.py imports it, so every test under tests/ops gets it; a test module elsewhere imports it before
its first kernel call. Without CUDA no other code runs Triton kernels, so the setting changes nothing else.

Kernel tests carry the `triton` marker (`pytest -m triton` runs them alone) and are never skipped: without Triton
they fail, saying how to install it (`make setup` and the `test` extra do).
"""
import os

import torch

KERNEL_DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
if KERNEL_DEVICE.type == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")
