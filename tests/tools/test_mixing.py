"""tools.mixing: the style-mixing figure (StyleGAN figure 3)."""
import numpy as np
import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.tools.generate import seed_ws
from stylegan.io.images import to_uint8
from stylegan.tools.layers import style_ranges
from stylegan.tools.mixing import mix_styles, style_mixing_grid, style_mixing_images



def synth(G, ws):
    with torch.no_grad():
        return to_uint8(G.synthesis(ws, noise_mode="const"))[0].astype(int)


def test_mix_styles_takes_listed_layers_from_columns():
    row, col = torch.zeros([2, 5, 3]), torch.ones([2, 5, 3])
    mixed = mix_styles(row, col, [1, 3])
    assert mixed[:, [1, 3]].eq(1).all() and mixed[:, [0, 2, 4]].eq(0).all()
    assert row.eq(0).all()  # inputs untouched


def test_cells_are_row_ws_with_listed_layers_from_column(G):
    rows, cols = [85, 100], [55, 821, 1789]
    parts = style_mixing_images(G, rows, cols, "coarse,fine", truncation_psi=0.7)
    layers = style_ranges(G)["coarse"] + style_ranges(G)["fine"]
    ws = {s: seed_ws(G, [s], truncation_psi=0.7) for s in rows + cols}
    assert parts["cells"].shape == (2, 3, 16, 16, 3)
    for r, rs in enumerate(rows):
        assert np.abs(parts["rows"][r].astype(int) - synth(G, ws[rs])).max() <= 1
        for c, cs in enumerate(cols):
            by_hand = ws[rs].clone()
            by_hand[:, layers] = ws[cs][:, layers]  # every other layer stays the row source's
            cell = parts["cells"][r, c].astype(int)
            assert np.abs(cell - synth(G, by_hand)).max() <= 1
            assert np.abs(cell - parts["rows"][r].astype(int)).max() > 8   # mixing changed the image
            assert np.abs(cell - parts["cols"][c].astype(int)).max() > 8   # ...but it is not the column image


def test_mixing_every_layer_reproduces_the_column_image(G):
    parts = style_mixing_images(G, [1, 2], [3, 4], list(range(G.num_ws)))
    for r in range(2):
        for c in range(2):
            assert np.abs(parts["cells"][r, c].astype(int) - parts["cols"][c].astype(int)).max() <= 1


def test_figure_layout(G):
    grid = style_mixing_grid(G, [1, 2], [3, 4, 5], "0-1", blank_value=255)
    parts = style_mixing_images(G, [1, 2], [3, 4, 5], "0-1")
    assert grid.shape == (3 * 16, 4 * 16, 3)
    assert (grid[:16, :16] == 255).all()                          # blank corner
    assert np.array_equal(grid[:16, 16:32], parts["cols"][0])      # first row: column sources
    assert np.array_equal(grid[32:48, :16], parts["rows"][1])      # first column: row sources
    assert np.array_equal(grid[32:48, 48:64], parts["cells"][1, 2])


@pytest.mark.parametrize("layers,message", [("99", "out of range"), ("coarse,x", "cannot read layers"), ([], "no layers")])
def test_bad_layers(G, layers, message):
    with pytest.raises(UserInputError, match=message):
        style_mixing_grid(G, [1], [2], layers)


def test_bad_seeds_and_class(G):
    with pytest.raises(UserInputError, match="at least one"):
        style_mixing_grid(G, [], [2], "coarse")
    with pytest.raises(UserInputError, match="unconditional"):
        style_mixing_grid(G, [1], [2], "coarse", class_idx=1)
