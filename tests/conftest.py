"""Shared fixtures. Helpers to import live in official_helpers.py (a conftest module name is not unique)."""
import os
import tempfile

import pytest
import torch

import triton_helpers  # noqa: F401  (Triton's interpreter where there is no GPU: set before anything imports Triton)
from official_helpers import official_networks

# TorchInductor's on-disk cache does not key its entries by the CPU capability PyTorch runs with: kernels built under
# ATEN_CPU_CAPABILITY=avx2 and loaded by an AVX-512 process (or the reverse) gave all-NaN images and heap corruption
# on one machine. One cache per capability keeps the outcome independent of what ran before (docs/testing.md).
_CAPABILITY = "-".join(filter(None, [torch.backends.cpu.get_cpu_capability().lower(),
                                     os.environ.get("ONEDNN_MAX_CPU_ISA", "").lower()]))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(
    tempfile.gettempdir(), f"torchinductor_{getattr(os, 'getuid', lambda: 'user')()}_{_CAPABILITY}"))


@pytest.fixture
def cond_export(tmp_path):
    """An export of the conditional cond32 fixture networks."""
    from stylegan.io.export import save_network
    _, G, D = official_networks("cond32")
    path = tmp_path / "cond32.safetensors"
    save_network(path, {"G_ema": G, "D": D})
    return path


@pytest.fixture
def modconv_choices(monkeypatch):
    """spy(module) -> list: from then on, records the `fused_modconv` argument of every modulated_conv2d call that
    the network module `module` (networks.synthesis, networks.stylegan3) makes."""
    def spy(module):
        seen, real = [], module.modulated_conv2d

        def recording(*args, **kwargs):
            seen.append(kwargs["fused_modconv"])
            return real(*args, **kwargs)
        monkeypatch.setattr(module, "modulated_conv2d", recording)
        return seen
    return spy


@pytest.fixture(autouse=True)
def _one_thread():
    # Test networks are tiny: a second intra-op thread only adds synchronisation, and on a busy machine it
    # makes small ops hundreds of times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
