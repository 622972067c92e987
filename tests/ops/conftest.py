"""Ops tests: the Triton kernels' tests run in Triton's interpreter without a GPU (see tests/triton_helpers.py)."""
import triton_helpers  # noqa: F401  (sets TRITON_INTERPRET=1 before any kernel module is imported, where no GPU)
