"""tools.video: keyframe interpolation, the frame grid, and writing mp4 / gif / PNG folders."""
import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.errors import UserInputError
from stylegan.tools.generate import generate_images
from stylegan.tools.video import frame_count, interpolate_keyframes, interpolation_frames, parse_grid, slerp, \
    write_video



@pytest.mark.parametrize("easing", ["linear", "smoothstep", "cubic"])
@pytest.mark.parametrize("space", ["w", "z"])
def test_walk_passes_through_keyframes_and_loops(easing, space):
    keys = torch.randn([2, 4, 8], generator=torch.Generator().manual_seed(0))  # 2 cells, 4 keyframes
    for k in range(4):
        assert torch.allclose(interpolate_keyframes(keys, k, True, easing, space), keys[:, k], atol=1e-5)
    assert torch.allclose(interpolate_keyframes(keys, 4.0, True, easing, space), keys[:, 0], atol=1e-5)
    assert torch.allclose(interpolate_keyframes(keys, 3.0, False, easing, space), keys[:, 3], atol=1e-5)
    mid = interpolate_keyframes(keys, 1.5, True, easing, space)
    assert not torch.allclose(mid, keys[:, 1]) and not torch.allclose(mid, keys[:, 2])


def velocity(keys, t, easing, h=1e-3):
    return (interpolate_keyframes(keys, t + h, True, easing) - interpolate_keyframes(keys, t - h, True, easing)) / (2 * h)


def test_cubic_has_continuous_velocity_linear_does_not():
    keys = torch.tensor([[[0.0], [1.0], [3.0], [0.5]]], dtype=torch.float64)  # one cell, 1-d latents
    h = 1e-5

    def one_sided(t, easing):
        left = (interpolate_keyframes(keys, t, True, easing) - interpolate_keyframes(keys, t - h, True, easing)) / h
        right = (interpolate_keyframes(keys, t + h, True, easing) - interpolate_keyframes(keys, t, True, easing)) / h
        return left, right

    for t in (1.0, 2.0):
        left, right = one_sided(t, "cubic")
        assert torch.allclose(left, right, atol=1e-3)
        left, right = one_sided(t, "linear")
        assert not torch.allclose(left, right, atol=0.1)
    # smoothstep stops at every keyframe
    assert velocity(keys, 1.0, "smoothstep").abs().max() < 1e-2


def test_slerp_keeps_the_gaussian_shell():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    mid = slerp(a, b, torch.tensor(0.5))
    assert torch.allclose(mid.norm(), torch.tensor(3.0))
    assert torch.allclose(mid, torch.tensor([[3 / 2 ** 0.5, 3 / 2 ** 0.5]]))
    assert torch.allclose(slerp(a, a, torch.tensor(0.3)), a)  # parallel vectors: no division by zero


def test_frames_form_a_grid_of_independent_walks(G):
    seeds = list(range(12))  # 3x2 grid -> 6 cells with 2 keyframes each
    frames = list(interpolation_frames(G, seeds, frames_per_seed=3, grid=(3, 2), truncation_psi=0.7, batch_size=4))
    assert len(frames) == frame_count(2, 3, loop=True) == 6
    assert frames[0].shape == (2 * 16, 3 * 16, 3)
    first = generate_images(G, seeds[0::2], truncation_psi=0.7)  # each cell starts at its first seed
    second = generate_images(G, seeds[1::2], truncation_psi=0.7)
    for cell in range(6):
        r, c = divmod(cell, 3)
        tile = lambda f: f[r * 16:(r + 1) * 16, c * 16:(c + 1) * 16].astype(int)
        assert np.abs(tile(frames[0]) - first[cell]).max() <= 1
        assert np.abs(tile(frames[3]) - second[cell]).max() <= 1  # 3 frames later: the next keyframe
    no_loop = list(interpolation_frames(G, seeds, 3, grid=(3, 2), loop=False, space="z", easing="cubic"))
    assert len(no_loop) == frame_count(2, 3, loop=False) == 4


@pytest.mark.parametrize("kwargs,message", [
    (dict(seeds=list(range(10)), grid=(2, 2)), "multiple of 4"),
    (dict(seeds=list(range(4)), grid=(2, 2)), "at least 8"),
    (dict(seeds=[1, 2], frames_per_seed=0), "frames per seed"),
    (dict(seeds=[1, 2], space="x"), "latent space"),
    (dict(seeds=[1, 2], easing="bounce"), "easing"),
    (dict(seeds=[1, 2], class_idx=3), "unconditional"),
])
def test_bad_requests_fail_before_rendering(G, kwargs, message):
    args = {"frames_per_seed": 2, "grid": (1, 1), **kwargs}
    with pytest.raises(UserInputError, match=message):
        interpolation_frames(G, **args)


def test_parse_grid():
    assert parse_grid("4x2") == (4, 2)
    for bad in ("4", "0x2", "ax2", "4x2x1"):
        with pytest.raises(UserInputError, match="COLSxROWS"):
            parse_grid(bad)


def luma(x):
    return x.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def test_mp4_is_written_and_reads_back(G, tmp_path):
    iio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")
    frames = list(interpolation_frames(G, list(range(8)), 5, grid=(2, 2), loop=False))  # 2 keys per cell
    count = write_video(iter(frames), tmp_path / "v.mp4", fps=24)
    assert count == len(frames) == 6
    reader = iio.get_reader(tmp_path / "v.mp4")
    decoded = [f for f in reader]
    assert reader.get_meta_data()["fps"] == 24
    reader.close()
    assert len(decoded) == 6 and decoded[0].shape == (32, 32, 3)
    for i, frame in enumerate(decoded):  # lossy (yuv420p), but each frame is closest to its own source
        errors = [np.abs(luma(frame) - luma(src)).mean() for src in frames]
        assert int(np.argmin(errors)) == i and errors[i] < 12
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left nothing behind


def test_gif_and_png_folder(G, tmp_path):
    frames = list(interpolation_frames(G, [1, 2, 3], 2))
    assert write_video(iter(frames), tmp_path / "v.gif", fps=10) == 6
    with Image.open(tmp_path / "v.gif") as gif:
        assert gif.n_frames == 6 and gif.size == (16, 16)
        assert gif.info["duration"] == 100
    assert write_video(iter(frames), tmp_path / "frames", fps=10) == 6
    pngs = sorted((tmp_path / "frames").glob("*.png"))
    assert [p.name for p in pngs][:2] == ["frame00000.png", "frame00001.png"] and len(pngs) == 6
    assert np.array_equal(np.asarray(Image.open(pngs[4])), frames[4])


def test_bad_outputs(tmp_path, monkeypatch):
    with pytest.raises(UserInputError, match=r"\.gif"):
        write_video(iter([]), tmp_path / "v.avi")
    with pytest.raises(UserInputError, match="fps"):
        write_video(iter([]), tmp_path / "v.gif", fps=0)
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

    def missing():
        raise RuntimeError("no ffmpeg exe could be found")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    with pytest.raises(UserInputError, match=r'pip install "stylegan\[video\]".*imageio-ffmpeg.*gif'):
        write_video(iter([]), tmp_path / "v.mp4")
