"""Shared fixtures. Helpers to import live in official_helpers.py (a conftest module name is not unique)."""
import pytest
import torch

from official_helpers import official_networks


@pytest.fixture
def cond_export(tmp_path):
    """An export of the conditional cond32 fixture networks."""
    from stylegan.io.export import save_network
    _, G, D = official_networks("cond32")
    path = tmp_path / "cond32.safetensors"
    save_network(path, {"G_ema": G, "D": D})
    return path


@pytest.fixture(autouse=True)
def _one_thread():
    # Test networks are tiny: a second intra-op thread only adds synchronisation, and on a busy machine it
    # makes small ops hundreds of times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
