"""Shared fixtures: tiny networks and the official fixture folder."""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stylegan.networks.discriminator import Discriminator
from stylegan.networks.stylegan2 import Generator

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "official"
OFFICIAL_SNAPSHOT = FIXTURES / "official_snapshot_tiny16.pkl"


def official_networks(name: str):
    """(config, G, D) of an official fixture with its weights loaded."""
    folder = FIXTURES / name
    cfg = json.loads((folder / "config.json").read_text())
    G = Generator(**cfg["G_kwargs"]).eval()
    D = Discriminator(**cfg["D_kwargs"]).eval()
    G.load_state_dict(load_file(str(folder / "G.safetensors")))
    D.load_state_dict(load_file(str(folder / "D.safetensors")))
    return cfg, G, D


@pytest.fixture
def cond_export(tmp_path):
    """An export of the conditional cond32 fixture networks."""
    from stylegan.io.export import save_network
    _, G, D = official_networks("cond32")
    path = tmp_path / "cond32.safetensors"
    save_network(path, {"G_ema": G, "D": D})
    return path


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)
    yield
