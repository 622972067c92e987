"""Latent-space interpolation videos: a grid of independent loops through consecutive seeds.

Each grid cell walks through its own keyframes (its share of the seeds, in order) with `frames_per_seed`
frames per transition. Interpolation is linear in W (the StyleGAN paper's eq. 3 space for path lengths) or
spherical in Z (eq. 2, Shoemake 1985), with optional easing: 'smoothstep' (3u^2 - 2u^3, eases in and out of
every keyframe) or 'cubic' (a Catmull-Rom spline through the keyframes, Catmull & Rom 1974: no stop at the
keyframes, continuous velocity). With `loop` the last keyframe runs back to the first, so the video repeats
seamlessly.

Videos are written as .mp4 (H.264 through the ffmpeg binary shipped in the `imageio-ffmpeg` wheel), as an
animated .gif (Pillow), or as a folder of PNG frames.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import UserInputError
from ..io.atomic import atomic_path
from .generate import check_batch_size, class_labels, progress_bar, seed_to_z, seed_ws
from ..io.images import make_grid, save_image, to_uint8

SPACES = ("w", "z")
EASINGS = ("linear", "smoothstep", "cubic")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
FFMPEG_PACKAGE = "imageio-ffmpeg"


def smoothstep(u: torch.Tensor) -> torch.Tensor:
    """3u^2 - 2u^3: zero slope at u = 0 and u = 1."""
    return u * u * (3 - 2 * u)


def catmull_rom(p0: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, p3: torch.Tensor,
                u: torch.Tensor) -> torch.Tensor:
    """Uniform Catmull-Rom spline between p1 (u = 0) and p2 (u = 1), with tangents (p2 - p0)/2 and (p3 - p1)/2.

    p0, p1, p2, p3: consecutive keyframes, same shape.
    u:              position in [0, 1], broadcastable to the keyframes.
    """
    u2, u3 = u * u, u * u * u
    return 0.5 * (2 * p1 + (p2 - p0) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u2 + (3 * p1 - p0 - 3 * p2 + p3) * u3)


def slerp(a: torch.Tensor, b: torch.Tensor, u: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the last axis (Shoemake 1985), norms interpolated linearly.

    a: start vectors [..., D].
    b: end vectors [..., D].
    u: position in [0, 1], broadcastable to [..., 1].
    """
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    da, db = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    omega = torch.acos((da * db).sum(dim=-1, keepdim=True).clamp(-1, 1))
    sin_omega = torch.sin(omega)
    parallel = sin_omega.abs() < 1e-5
    safe = torch.where(parallel, torch.ones_like(sin_omega), sin_omega)
    direction = torch.where(parallel, da + (db - da) * u,
                            (torch.sin((1 - u) * omega) * da + torch.sin(u * omega) * db) / safe)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(eps)
    return direction * (na + (nb - na) * u)


def frame_count(num_keyframes: int, frames_per_seed: int, loop: bool = True) -> int:
    """Frames of a walk through `num_keyframes` keyframes: K * f with `loop`, else (K - 1) * f + 1."""
    return num_keyframes * frames_per_seed if loop else (num_keyframes - 1) * frames_per_seed + 1


def interpolate_keyframes(keys: torch.Tensor, t: float, loop: bool = True, easing: str = "linear",
                          space: str = "w") -> torch.Tensor:
    """The latent at time `t` (in keyframes) of walks through keyframes `keys` [cells, K, ...] -> [cells, ...].

    keys:   keyframes of each walk, [cells, K, ...] (z: [cells, K, z_dim]; w: [cells, K, num_ws, w_dim]).
    t:      time in keyframe units: t = 1.5 is halfway between keyframes 1 and 2.
    loop:   after the last keyframe run back to the first (else stop at the last).
    easing: 'linear', 'smoothstep' or 'cubic' (Catmull-Rom).
    space:  'w' interpolates linearly, 'z' spherically (norms linearly).
    """
    if easing not in EASINGS:
        raise UserInputError(f"unknown easing {easing!r}; use one of {', '.join(EASINGS)}")
    if space not in SPACES:
        raise UserInputError(f"unknown latent space {space!r}; use one of {', '.join(SPACES)}")
    num = keys.shape[1]
    seg = int(math.floor(t))
    u = torch.tensor(t - seg, dtype=keys.dtype, device=keys.device)

    def key(j: int) -> torch.Tensor:
        return keys[:, j % num] if loop else keys[:, min(max(j, 0), num - 1)]

    a, b = key(seg), key(seg + 1)
    if easing == "cubic":
        out = catmull_rom(key(seg - 1), a, b, key(seg + 2), u)
        if space == "z":  # keep the spline's direction, but the norm of the Gaussian shell between a and b
            norm = a.norm(dim=-1, keepdim=True) * (1 - u) + b.norm(dim=-1, keepdim=True) * u
            out = out / out.norm(dim=-1, keepdim=True).clamp_min(1e-7) * norm
        return out
    if easing == "smoothstep":
        u = smoothstep(u)
    return slerp(a, b, u) if space == "z" else a + (b - a) * u


def split_seeds(seeds: Sequence[int], grid: Tuple[int, int]) -> Tuple[int, int]:
    """(cells, keyframes per cell) for dealing `seeds` out over a (cols, rows) grid, validated."""
    cols, rows = grid
    if cols < 1 or rows < 1:
        raise UserInputError(f"grid {cols}x{rows} is empty; give COLSxROWS with both >= 1, e.g. 4x2")
    cells = cols * rows
    if len(seeds) % cells or len(seeds) < 2 * cells:
        raise UserInputError(f"{len(seeds)} seeds cannot be dealt out over a {cols}x{rows} grid: each of the {cells} "
                             f"cells walks through its own seeds, so give a multiple of {cells} seeds, "
                             f"at least {2 * cells}")
    return cells, len(seeds) // cells


def parse_grid(text: str) -> Tuple[int, int]:
    """'4x2' -> (cols, rows)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts) or min(int(p) for p in parts) < 1:
        raise UserInputError(f"cannot read grid {text!r}; write COLSxROWS, e.g. 4x2 or 1x1")
    return int(parts[0]), int(parts[1])


def interpolation_frames(G: nn.Module, seeds: Sequence[int], frames_per_seed: int, grid: Tuple[int, int] = (1, 1),
                         space: str = "w", easing: str = "linear", loop: bool = True, truncation_psi: float = 1.0,
                         truncation_cutoff: Optional[int] = None, noise_mode: str = "const",
                         class_idx: Optional[int] = None, batch_size: int = 8) -> Iterator[np.ndarray]:
    """Yield the video's frames, uint8 [rows * H, cols * W, C]; `frame_count(K, frames_per_seed, loop)` of them.

    G:                 the generator.
    seeds:             all keyframe seeds; cell i (row-major) walks through seeds[i*K:(i+1)*K].
    frames_per_seed:   frames per transition between consecutive keyframes.
    grid:              (cols, rows) of independent walks.
    space:             'w' (lerp in W, truncated) or 'z' (slerp in Z, then mapping and truncation).
    easing:            'linear', 'smoothstep' or 'cubic' (Catmull-Rom).
    loop:              run from the last keyframe back to the first.
    truncation_psi:    truncation psi (1 = none).
    truncation_cutoff: truncate only the first this many ws (None = the network's default).
    noise_mode:        'const', 'random' or 'none'.
    class_idx:         class of conditional networks.
    batch_size:        images per synthesis pass.
    """
    seeds = list(seeds)
    if frames_per_seed < 1:
        raise UserInputError(f"frames per seed must be >= 1, got {frames_per_seed}")
    if space not in SPACES:
        raise UserInputError(f"unknown latent space {space!r}; use one of {', '.join(SPACES)}")
    if easing not in EASINGS:
        raise UserInputError(f"unknown easing {easing!r}; use one of {', '.join(EASINGS)}")
    check_batch_size(batch_size)
    cells, num_keys = split_seeds(seeds, grid)
    device = next(G.parameters()).device
    if space == "w":
        ws = seed_ws(G, seeds, truncation_psi, truncation_cutoff, class_idx)
        keys = ws.reshape(cells, num_keys, *ws.shape[1:])
        c = None
    else:
        seed_ws(G, seeds[:1], truncation_psi, truncation_cutoff, class_idx)  # validates psi cutoff and class
        z = torch.cat([seed_to_z(s, G.z_dim) for s in seeds]).to(device)
        keys = z.reshape(cells, num_keys, G.z_dim)
        c = class_labels(G, class_idx, cells).to(device)

    return _render_walks(G, keys, c, grid, frame_count(num_keys, frames_per_seed, loop), frames_per_seed, space,
                         easing, loop, truncation_psi, truncation_cutoff, noise_mode, batch_size)


def _render_walks(G, keys, c, grid, total, frames_per_seed, space, easing, loop, truncation_psi, truncation_cutoff,
                  noise_mode, batch_size) -> Iterator[np.ndarray]:
    """The frame generator behind `interpolation_frames` (arguments already validated)."""
    cells = keys.shape[0]
    frames_per_pass = max(1, batch_size // cells)
    for start in range(0, total, frames_per_pass):
        idx = range(start, min(start + frames_per_pass, total))
        latents = torch.cat([interpolate_keyframes(keys, f / frames_per_seed, loop, easing, space) for f in idx])
        with torch.no_grad():
            if space == "z":
                latents = G.mapping(latents, c.repeat(len(idx), 1), truncation_psi=truncation_psi,
                                    truncation_cutoff=truncation_cutoff)
            images = np.concatenate([to_uint8(G.synthesis(latents[i:i + batch_size], noise_mode=noise_mode))
                                     for i in range(0, latents.shape[0], batch_size)])
        for k in range(len(idx)):
            yield make_grid(images[k * cells:(k + 1) * cells], cols=grid[0])


def video_format(path: Union[str, os.PathLike]) -> str:
    """'mp4' (.mp4/.mov/.mkv), 'gif' (.gif) or 'png' (a folder: no suffix or an existing folder)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == "":
        return "png"
    if suffix == ".gif":
        return "gif"
    if suffix in VIDEO_SUFFIXES:
        return "mp4"
    raise UserInputError(f"cannot write video {path}: use a {'/'.join(VIDEO_SUFFIXES)} file, a .gif file, "
                         f"or a folder (no suffix) for PNG frames")


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary from the imageio-ffmpeg wheel; UserInputError with what to do when missing."""
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise UserInputError(f"writing .mp4 needs ffmpeg, which was not found ({exc}); install it with "
                             f"`pip install \"stylegan[video]\"` ({FFMPEG_PACKAGE}: the wheel ships the binary; "
                             f"\"stylegan[all]\": every optional feature), or write "
                             f"--out video.gif or --out a folder (PNG frames) instead") from None


def check_video_output(path: Union[str, os.PathLike]) -> str:
    """Validate an output path before any rendering; returns its format ('mp4', 'gif' or 'png')."""
    kind = video_format(path)
    path = Path(path)
    if kind != "png" and path.is_dir():
        raise UserInputError(f"{path} is a folder; give a file name ending in .mp4 or .gif")
    if kind == "png" and path.exists() and not path.is_dir():
        raise UserInputError(f"{path} exists and is not a folder")
    if kind == "mp4":
        ffmpeg_exe()
    return kind


def rgb_frame(frame: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 1|3|4] -> [H', W', 3] for H.264: gray repeated, alpha dropped, odd sizes padded to even."""
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    frame = frame[:, :, :3]
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, [(0, pad_h), (0, pad_w), (0, 0)])
    return np.ascontiguousarray(frame)


def write_video(frames: Iterable[np.ndarray], path: Union[str, os.PathLike], fps: float = 30,
                total: Optional[int] = None, progress: bool = False, crf: int = 18) -> int:
    """Write uint8 [H, W, C] frames as .mp4, .gif or a folder of PNGs (chosen by `path`); returns the frame count.

    frames:   the frames, all the same shape.
    path:     .mp4/.mov/.mkv file (H.264), .gif file, or a folder (frame00000.png, ...).
    fps:      frames per second.
    total:    number of frames, for the progress bar.
    progress: show a progress bar on stderr.
    crf:      H.264 constant rate factor (0 = lossless, 18 = visually lossless, 51 = worst).
    """
    if fps <= 0:
        raise UserInputError(f"fps must be positive, got {fps}")
    kind = check_video_output(path)
    path = Path(path)
    frames = progress_bar(frames, total=total, desc="video", enabled=progress)
    count = 0
    if kind == "png":
        path.mkdir(parents=True, exist_ok=True)
        for count, frame in enumerate(frames, 1):
            save_image(frame, path / f"frame{count - 1:05d}.png")
        return count
    if kind == "gif":
        images = [Image.fromarray(f[:, :, 0] if f.shape[2] == 1 else f[:, :, :3]) for f in frames]
        if not images:
            raise UserInputError("no frames to write")
        with atomic_path(path) as tmp:
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                           duration=max(1, round(1000 / fps)), loop=0)
        return len(images)

    import imageio_ffmpeg
    writer = None
    with atomic_path(path) as tmp:
        try:
            for frame in frames:
                frame = rgb_frame(frame)
                if writer is None:
                    writer = imageio_ffmpeg.write_frames(str(tmp), (frame.shape[1], frame.shape[0]), fps=fps,
                                                         codec="libx264", quality=None, macro_block_size=1,
                                                         output_params=["-crf", str(crf), "-f", "mp4"])
                    writer.send(None)
                writer.send(frame)
                count += 1
        finally:
            if writer is not None:
                writer.close()
        if count == 0:
            raise UserInputError("no frames to write")
    return count

