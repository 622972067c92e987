"""tools.generate additions (seed_ws, render_ws, progress, grid columns) and tools.ws_io."""
import numpy as np
import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.tools.generate import generate_images, render_ws, seed_to_z, seed_ws, write_images
from stylegan.io.images import to_uint8
from stylegan.tools.ws_io import load_ws, save_ws



def test_seed_ws_is_mapping_of_nvidia_z(G):
    ws = seed_ws(G, [3, 9], truncation_psi=0.6)
    z = torch.cat([seed_to_z(3, G.z_dim), seed_to_z(9, G.z_dim)])
    with torch.no_grad():
        expected = G.mapping(z, None, truncation_psi=0.6)
    assert ws.shape == (2, G.num_ws, G.w_dim)
    assert torch.allclose(ws, expected)
    with pytest.raises(UserInputError, match="cutoff"):
        seed_ws(G, [1], truncation_cutoff=G.num_ws + 1)


def test_ws_file_round_trip_renders_like_synthesis(G, tmp_path):
    ws = seed_ws(G, [1, 2, 3], truncation_psi=0.8)
    path = save_ws(tmp_path / "latents.npz", ws, note=np.arange(3))
    loaded = load_ws(path, G)
    assert torch.equal(loaded, ws)
    with torch.no_grad():
        expected = to_uint8(G.synthesis(ws, noise_mode="const"))
    images = render_ws(G, loaded, batch_size=2)
    assert images.shape == (3, 16, 16, 3)
    assert np.abs(images.astype(int) - expected.astype(int)).max() <= 1  # batching may round differently
    # the seeds' images through mapping + synthesis are the same images
    assert np.abs(generate_images(G, [1, 2, 3], 0.8).astype(int) - images.astype(int)).max() <= 1


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    (b"not a zip file at all", "not a readable .npz"),
    ({"x": np.zeros([1, 6, 32], np.float32)}, "has no array 'w'"),
    ({"w": np.zeros([6, 32], np.float32)}, r"expected \[N, 6, 32\]"),
    ({"w": np.zeros([2, 7, 32], np.float32)}, "num_ws=6"),
    ({"w": np.full([1, 6, 32], np.nan, np.float32)}, "NaN"),
])
def test_load_ws_rejects_bad_files(G, tmp_path, content, message):
    path = tmp_path / "bad.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        np.savez(path, **content)
    with pytest.raises(UserInputError, match=message):
        load_ws(path, G)


def test_render_ws_checks_shape(G):
    with pytest.raises(UserInputError, match=r"\[N, 6, 32\]"):
        render_ws(G, torch.zeros([1, 5, 32]))
    with pytest.raises(UserInputError, match="batch size"):
        render_ws(G, torch.zeros([1, 6, 32]), batch_size=0)


def test_progress_bar_goes_to_stderr_only_when_asked(G, capsys):
    generate_images(G, range(4), batch_size=2, progress=True)
    captured = capsys.readouterr()
    assert "generate" in captured.err and captured.out == ""
    generate_images(G, range(4), batch_size=2, progress=False)
    assert capsys.readouterr().err == ""


def test_write_images_grid_columns(G, tmp_path):
    images = generate_images(G, [0, 1, 2])
    paths = write_images(images, [0, 1, 2], tmp_path, grid=True, grid_cols=3, prefix="w")
    assert [p.name for p in paths] == ["w0000.png", "w0001.png", "w0002.png", "grid.png"]
    from PIL import Image
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape == (16, 48, 3)
    assert np.array_equal(grid[:, 32:], images[2])
    with pytest.raises(UserInputError, match="not a folder"):
        write_images(images, [0, 1, 2], tmp_path / "grid.png")
