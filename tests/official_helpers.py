"""The official reference fixtures (tests/fixtures/official) and networks loaded from them."""
import json
from pathlib import Path

from safetensors.torch import load_file

from stylegan.networks.discriminator import Discriminator
from stylegan.networks.stylegan2 import Generator

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "official"
OFFICIAL_SNAPSHOT = FIXTURES / "official_snapshot_tiny16.pkl"


def official_networks(name: str):
    """(config, G, D) of an official fixture with its weights loaded, in eval mode."""
    folder = FIXTURES / name
    cfg = json.loads((folder / "config.json").read_text())
    G = Generator(**cfg["G_kwargs"]).eval()
    D = Discriminator(**cfg["D_kwargs"]).eval()
    G.load_state_dict(load_file(str(folder / "G.safetensors")))
    D.load_state_dict(load_file(str(folder / "D.safetensors")))
    return cfg, G, D
