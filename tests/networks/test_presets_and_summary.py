"""Presets reproduce the published parameter counts; the summary table matches seed 002's layout."""
import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.networks.discriminator import Discriminator
from stylegan.networks.stylegan2 import Generator
from stylegan.networks.summary import discriminator_summary, generator_summary
from stylegan.presets import PRESET_NAMES, TrainingConfig, resolve_preset


def build(cfg_name, res, c_dim=0):
    cfg = resolve_preset(cfg_name, res)
    with torch.device("meta"):
        G = Generator(**cfg.network.generator_kwargs(res, 3, c_dim))
        D = Discriminator(**cfg.network.discriminator_kwargs(res, 3, c_dim))
    return G, D


def count(module):
    return sum(p.numel() for p in module.parameters()), sum(b.numel() for b in module.buffers())


@pytest.mark.parametrize("name,res,c_dim,g_params,d_params", [
    ("stylegan2", 32, 0, 21_523_475, 21_507_073),
    ("stylegan2", 1024, 0, 30_370_060, 29_012_513),
    ("paper256", 256, 0, 24_767_458, 24_001_089),
    ("cifar", 32, 10, 20_215_315, 23_089_664),
])
def test_official_counts(name, res, c_dim, g_params, d_params):
    G, D = build(name, res, c_dim)
    assert count(G)[0] == g_params
    assert count(D)[0] == d_params


def test_seed_table_totals_and_rows():
    G, D = build("stylegan2", 32)
    g_table = generator_summary(G).splitlines()
    d_table = discriminator_summary(D).splitlines()
    assert g_table[-1].split() == ["Total", "21523475", "3392", "-", "-"]
    assert d_table[-1].split() == ["Total", "21507073", "224", "-", "-"]
    rows = {line.split()[0]: line.split() for line in g_table}
    assert rows["synthesis.b4.conv1"][1:3] == ["2622465", "32"]
    assert rows["synthesis.b8.conv0"][1:3] == ["2622465", "80"]
    assert rows["synthesis.b4:0"][1:3] == ["8192", "16"]
    assert rows["mapping"][1:3] == ["-", "512"]
    assert g_table[0].split() == ["Generator", "Parameters", "Buffers", "Output", "shape", "Datatype"]
    drows = {line.split()[0]: line.split() for line in d_table}
    assert drows["b4.mbstd"][1:3] == ["-", "-"] and " ".join(drows["b4.mbstd"][3:7]) == "[4, 513, 4, 4]"
    assert drows["b4.fc"][1] == "4194816"
    order = [line.split()[0] for line in d_table[2:-2]]
    assert order[:5] == ["b32.fromrgb", "b32.skip", "b32.conv0", "b32.conv1", "b32"]


def test_presets_have_published_values():
    cifar = resolve_preset("cifar", 32)
    assert (cifar.batch_size, cifar.r1_gamma, cifar.ema_kimg, cifar.pl_weight) == (64, 0.01, 500.0, 0.0)
    assert cifar.network.d_architecture == "orig" and cifar.network.map_depth == 2
    auto = resolve_preset("auto", 256)
    assert auto.batch_size == 16 and auto.r1_gamma == pytest.approx(0.0002 * 256 ** 2 / 16)
    assert auto.network.channel_base == 16384
    p1024 = resolve_preset("paper1024", 1024)
    assert p1024.network.channel_base == 65536 and p1024.r1_gamma == 2.0
    for name in PRESET_NAMES:
        cfg = resolve_preset(name, 32)
        assert TrainingConfig.from_dict(cfg.to_dict()) == cfg


def test_bad_preset_arguments():
    with pytest.raises(UserInputError, match="unknown preset"):
        resolve_preset("stylegan9", 32)
    with pytest.raises(UserInputError, match="power of two"):
        resolve_preset("stylegan2", 48)
