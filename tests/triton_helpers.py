"""Where the Triton kernel tests run: compiled on a CUDA GPU when there is one, else on CPU tensors in Triton's
interpreter. TRITON_INTERPRET=1 selects the interpreter for the @triton.jit functions defined after it is set: the
kernels (ops/*_triton.py, imported at their first call) and Triton's own library functions (tl.zeros, tl.sum, ...),
which are defined when Triton is imported, and `import torch._dynamo` (stylegan.tools.bench, the compile tests)
imports Triton. So tests/conftest.py imports this module first, before any test module. Without CUDA no other code
runs Triton kernels, so the setting changes nothing else.

Kernel tests carry the `triton` marker (`pytest -m triton` runs them alone) and are never skipped: without Triton
they fail, saying how to install it (`make setup` and the `test` extra do).
"""
import os

import torch

KERNEL_DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
if KERNEL_DEVICE.type == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")
