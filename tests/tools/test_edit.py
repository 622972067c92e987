"""Editing latents (tools/edit.py): apply_direction touches only the chosen ws, edit_grid's layout and checks, SeFa's
first component changes images more than its last, and editing on StyleGAN v1 / v3 networks."""
import numpy as np
import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.io.load import load_generator
from stylegan.tools.directions import ganspace, sefa
from stylegan.tools.edit import apply_direction, edit_grid, edit_ws, parse_strengths, resolve_layers
from stylegan.tools.generate import render_ws, seed_ws

from official_helpers import OFFICIAL_SNAPSHOT
from test_directions import DEMO, tiny_v1, tiny_v3


@pytest.fixture(scope="module")
def G():
    return load_generator(OFFICIAL_SNAPSHOT)


def test_apply_direction_moves_only_the_chosen_ws():
    ws = torch.randn(3, 6, 4)
    direction = torch.tensor([1.0, 0.0, -2.0, 0.5])
    out = apply_direction(ws, direction, 1.5, [1, 4])
    assert out.shape == ws.shape and not torch.equal(out, ws)
    untouched = [0, 2, 3, 5]
    assert torch.equal(out[:, untouched], ws[:, untouched])
    torch.testing.assert_close(out[:, [1, 4]] - ws[:, [1, 4]], (1.5 * direction).expand(3, 2, 4))
    assert torch.equal(apply_direction(ws, direction, 0.0, range(6)), ws)
    with pytest.raises(UserInputError, match="layer 6 is out of range"):
        apply_direction(ws, direction, 1.0, [6])


def test_edit_ws_is_row_major():
    ws = torch.randn(2, 3, 4)
    direction = torch.ones(4) / 2
    out = edit_ws(ws, direction, [-1.0, 0.0, 2.0], [0, 1, 2])
    assert out.shape == (6, 3, 4)
    torch.testing.assert_close(out[4], ws[1])  # row 1, strength 0
    torch.testing.assert_close(out[2], ws[0] + 2 * direction)  # row 0, strength 2


def test_parse_strengths():
    assert parse_strengths("-3,0,3") == (-3.0, 0.0, 3.0)
    assert parse_strengths(" 1.5 ") == (1.5,)
    for bad in ("a,b", "1,,2", "", "nan", "1,inf"):
        with pytest.raises(UserInputError, match="strengths must be"):
            parse_strengths(bad)


def test_edit_grid_layout_and_unedited_column(G):
    d = sefa(G, "middle")
    ws = seed_ws(G, [1, 2])
    images, edited = edit_grid(G, ws, d, 0, [-2.0, 0.0, 2.0])
    assert images.shape == (6, 16, 16, 3) and edited.shape == (6, G.num_ws, G.w_dim)
    np.testing.assert_array_equal(images[[1, 4]], render_ws(G, ws))  # strength 0 renders the input
    assert not np.array_equal(images[0], images[1])
    assert torch.equal(edited[0, [0, 3, 4, 5]], ws[0, [0, 3, 4, 5]])  # default range: the directions' layers (1, 2)
    _, fine = edit_grid(G, ws, d, 0, [2.0], layers="fine")
    assert torch.equal(fine[:, :3], ws[:, :3]) and not torch.equal(fine[:, 3:], ws[:, 3:])
    assert resolve_layers(G, d, [0, 5]) == (0, 5)


def test_edit_grid_refusals(G):
    d = sefa(G)
    ws = seed_ws(G, [1])
    with pytest.raises(UserInputError, match="components 0..31"):
        edit_grid(G, ws, d, 32, [1.0])
    with pytest.raises(UserInputError, match="at least one strength"):
        edit_grid(G, ws, d, 0, [])
    with pytest.raises(UserInputError, match="bad layers"):
        edit_grid(G, ws, d, 0, [1.0], layers="huge")
    with pytest.raises(UserInputError, match="ws have shape"):
        edit_grid(G, ws[:, :3], d, 0, [1.0])
    demo = load_generator(DEMO)
    with pytest.raises(UserInputError, match="computed for network"):
        edit_grid(demo, seed_ws(demo, [1]), d, 0, [1.0])


def test_sefa_first_component_changes_images_more_than_the_last():
    demo = load_generator(DEMO)
    d = sefa(demo)
    ws = seed_ws(demo, list(range(8)))

    def change(component):
        images, _ = edit_grid(demo, ws, d, component, [-3.0, 3.0])
        pairs = images.reshape(len(ws), 2, *images.shape[1:]).astype(np.float64)
        return np.abs(pairs[:, 0] - pairs[:, 1]).mean()

    first, last = change(0), change(d.num_components - 1)
    assert first > 1.5 * last, (first, last)


@pytest.mark.parametrize("make", [tiny_v1, tiny_v3], ids=["stylegan1", "stylegan3"])
def test_edit_on_v1_and_v3(make):
    net = make()
    ws = seed_ws(net, [0, 1])
    for d in (sefa(net, "all"), ganspace(net, num=200, components=3)):
        images, edited = edit_grid(net, ws, d, 0, [0.0, 3.0], layers="coarse")
        assert images.shape == (4, 16, 16, 3) and edited.shape == (4, net.num_ws, net.w_dim)
        np.testing.assert_array_equal(images[[0, 2]], render_ws(net, ws))
        assert not np.array_equal(images[0], images[1])
