import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.networks.stylegan2 import Generator
from stylegan.tools.layers import parse_layers, style_ranges, ws_resolutions


def meta_generator(res):
    with torch.device("meta"):
        return Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=res, img_channels=3, channel_base=2048, channel_max=8)


def test_ws_resolutions_follow_the_blocks():
    G = meta_generator(32)
    assert G.num_ws == 8
    assert ws_resolutions(G) == [4, 8, 8, 16, 16, 32, 32, 32]


def test_named_ranges_partition_all_layers():
    for res in (16, 32, 64, 256, 1024):
        G = meta_generator(res)
        ranges = style_ranges(G)
        flat = sorted(ranges["coarse"] + ranges["middle"] + ranges["fine"])
        assert flat == list(range(G.num_ws)) and all(ranges.values())
    big = style_ranges(meta_generator(1024))
    assert big["coarse"] == [0, 1, 2] and big["middle"] == [3, 4, 5, 6]  # the official '0-6' = coarse + middle


def test_parse_layers():
    G = meta_generator(64)
    assert parse_layers("coarse,fine", G) == [0, 1, 2, 7, 8, 9]
    assert parse_layers("0-2,5", G) == [0, 1, 2, 5]
    with pytest.raises(UserInputError, match="out of range"):
        parse_layers("0-10", G)
    with pytest.raises(UserInputError, match="runs backwards"):
        parse_layers("6-0", G)
    with pytest.raises(UserInputError):
        parse_layers("sideways", G)
