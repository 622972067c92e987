"""What the Triton kernels share (ops/triton_support.py): the package without Triton, CPU tensors refused by compiled
kernels, and bias_act's and upfirdn2d's kernels lowered to GPU machine code, which the interpreter cannot check."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stylegan.ops.bias_act import bias_act
from stylegan.ops.triton_support import TritonUnavailable, is_dense, lazy_impl, same_layout
from stylegan.ops.upfirdn2d import upsample2d

pytestmark = pytest.mark.triton

# Without the interpreter: the kernels refuse CPU tensors in one line, and each one compiles to sm_90 machine code
# (Triton ships ptxas; no GPU or driver needed) in the configurations the networks run: float16 blocks (NVIDIA's
# mixed precision), bf16 autocast with a float32 bias, 64-bit offsets; up 2 and down 2 with the 4x4 filter,
# channels-last.
GPU_CHECK = r"""
import torch, triton
from triton.backends.compiler import GPUTarget
from stylegan.ops import bias_act_triton, upfirdn2d_triton
from stylegan.ops.bias_act import bias_act
from stylegan.ops.triton_support import TritonUnavailable

try:
    bias_act(torch.zeros(2, 3), torch.zeros(3), act="lrelu", impl="triton")
except TritonUnavailable as error:
    print("refused:", error)


def lower(kernel, pointer, constants, **pointers):
    signature = {name: "constexpr" if name in constants else pointers.get(name, pointer) if name.endswith("_ptr")
                 else "fp32" if name in ("alpha", "gain", "clamp") else "i32" for name in kernel.arg_names}
    source = triton.compiler.ASTSource(fn=kernel, signature=signature, constexprs=constants)
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=4))
    print("compiled", kernel.__name__, pointer, len(compiled.asm["cubin"]) > 0)


block = dict(F64=False, WIDE=False, BLOCK=bias_act_triton.BLOCK)
lower(bias_act_triton._bias_act_kernel, "*fp16", dict(HAS_BIAS=True, HAS_SLOPE=True, HAS_CLAMP=True, **block))
lower(bias_act_triton._bias_act_grad_kernel, "*fp16", dict(HAS_SLOPE=True, HAS_CLAMP=True, **block))
lower(bias_act_triton._bias_act_kernel, "*bf16", dict(HAS_BIAS=True, HAS_SLOPE=False, HAS_CLAMP=False,
                                                      **{**block, "WIDE": True}), b_ptr="*fp32", y_ptr="*fp32")
block = dict(FW=4, FH=4, F64=False, WIDE=False, BLOCK=upfirdn2d_triton.BLOCK)
lower(upfirdn2d_triton._upfirdn2d_kernel, "*fp16", dict(UPX=2, UPY=2, DOWNX=1, DOWNY=1, PX0=2, PY0=2,
                                                        CHANNELS_LAST=False, **block), w_ptr="*fp32")
lower(upfirdn2d_triton._upfirdn2d_kernel, "*fp32", dict(UPX=1, UPY=1, DOWNX=2, DOWNY=2, PX0=1, PY0=1,
                                                        CHANNELS_LAST=True, **block))
"""


def test_kernels_compile_for_the_gpu_and_refuse_cpu_tensors_outside_the_interpreter(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # a fresh cache: the compilation really runs
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", GPU_CHECK], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0] == ("refused: bias_act: Triton kernels run on CUDA tensors, got a cpu tensor (on the CPU only in "
                        "Triton's interpreter, TRITON_INTERPRET=1); use the 'fast' implementation")
    assert lines[1:] == ["compiled _bias_act_kernel *fp16 True", "compiled _bias_act_grad_kernel *fp16 True",
                         "compiled _bias_act_kernel *bf16 True", "compiled _upfirdn2d_kernel *fp16 True",
                         "compiled _upfirdn2d_kernel *fp32 True"]


def test_without_triton_the_package_runs_and_the_triton_implementations_say_so(monkeypatch):
    """Only asking for 'triton' fails, in one line naming the op and what to do."""
    monkeypatch.setitem(sys.modules, "triton", None)  # import triton raises ImportError
    for module in ("bias_act_triton", "upfirdn2d_triton"):
        monkeypatch.delitem(sys.modules, f"stylegan.ops.{module}", raising=False)
    x = torch.randn(1, 3, 4, 4)
    assert torch.equal(bias_act(x, act="lrelu", impl="fast"), bias_act(x, act="lrelu", impl="reference"))
    with pytest.raises(TritonUnavailable, match=r"^bias_act: the 'triton' implementation needs Triton \(.*\); it "
                                                r"comes with PyTorch's CUDA wheels"):
        bias_act(x, act="lrelu", impl="triton")
    with pytest.raises(TritonUnavailable, match="^upfirdn2d: the 'triton' implementation needs Triton"):
        upsample2d(x, torch.ones(2, 2), impl="triton")


def test_dense_layouts_and_lazy_implementations():
    x = torch.zeros(2, 3, 4, 5)
    assert is_dense(x) and is_dense(x.contiguous(memory_format=torch.channels_last)) and is_dense(x.permute(3, 1, 0, 2))
    assert not is_dense(x[..., ::2]) and not is_dense(torch.zeros(1, 3, 4, 5).expand(2, 3, 4, 5))
    assert same_layout(x, torch.ones(2, 3, 4, 5)) and not same_layout(x, x.contiguous(memory_format=torch.channels_last))
    assert same_layout(torch.zeros(1, 3), torch.zeros(3, 1).t())  # strides of length-1 dimensions do not matter
    fn = lazy_impl("upfirdn2d_fast", "upfirdn2d_fast")
    assert fn.__name__ == "upfirdn2d_fast" and "ops/upfirdn2d_fast.py" in fn.__doc__
    assert torch.equal(fn(x, None), x)
