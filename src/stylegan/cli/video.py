"""`stylegan video`: a grid of looping latent interpolations, as .mp4, .gif or PNG frames."""
from __future__ import annotations

import click

from ..io.load import load_generator
from ..networks.synthesis import NOISE_MODES
from ..tools.generate import parse_range_list
from ..tools.transform import apply_transform, parse_translate
from ..tools.video import (
    EASINGS,
    SPACES,
    check_video_output,
    frame_count,
    interpolation_frames,
    parse_grid,
    split_seeds,
    write_video,
)
from ..runtime.choice import prepare_inference
from .common import (CliError, batch_device_options, compile_option, latent_options, network_option, path_options,
                     say_path, user_errors)


@click.command("video")
@network_option()
@click.option("--seeds", required=True, help="Keyframe seeds, dealt out over the grid cells in order, e.g. 0-31.")
@click.option("--grid", "grid_text", default="1x1", show_default=True, help="COLSxROWS independent walks, e.g. 4x2.")
@click.option("--frames-per-seed", type=int, default=60, show_default=True, help="Frames per transition.")
@click.option("--space", type=click.Choice(SPACES), default="w", show_default=True,
              help="Interpolate linearly in W or spherically in Z.")
@click.option("--easing", type=click.Choice(EASINGS), default="linear", show_default=True,
              help="linear, smoothstep (ease in/out) or cubic (Catmull-Rom through the keyframes).")
@click.option("--loop/--no-loop", default=True, show_default=True, help="Return from the last keyframe to the first.")
@click.option("--fps", type=float, default=30, show_default=True, help="Frames per second.")
@latent_options
@click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const", show_default=True)
@click.option("--translate", default=None, metavar="X,Y",
              help="StyleGAN3 only: translate the output by X,Y image widths (gen_images.py); default: as stored.")
@click.option("--rotate", type=float, default=None, metavar="DEG",
              help="StyleGAN3 only: rotate the output by DEG degrees (gen_images.py); default: as stored.")
@batch_device_options
@path_options
@compile_option
@click.option("--out", "out_path", required=True, help="video.mp4, video.gif, or a folder for PNG frames.")
def command(network_path, seeds, grid_text, frames_per_seed, space, easing, loop, fps, truncation_psi,
            truncation_cutoff, class_idx, noise_mode, translate, rotate, batch_size, device, precision, channels_last,
            compile_mode, out_path):
    """Interpolation video: each grid cell loops smoothly through its own consecutive seeds."""
    with user_errors():
        seed_list = parse_range_list(seeds)
        grid = parse_grid(grid_text)
        _, num_keys = split_seeds(seed_list, grid)
        if frames_per_seed < 1:
            raise CliError("--frames-per-seed must be at least 1")
        if fps <= 0:
            raise CliError("--fps must be positive")
        if batch_size < 1:
            raise CliError("--batch must be at least 1")
        check_video_output(out_path)
        shift = parse_translate(translate) if translate is not None else None
        G = load_generator(network_path, device=device)
        apply_transform(G, shift, rotate)
        total = frame_count(num_keys, frames_per_seed, loop)
        path = prepare_inference(G, batch_size, total * grid[0] * grid[1], precision, channels_last,
                                 compile=compile_mode, say=say_path)
        frames = interpolation_frames(G, seed_list, frames_per_seed, grid=grid, space=space, easing=easing,
                                      loop=loop, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                                      noise_mode=noise_mode, class_idx=class_idx, batch_size=batch_size)
        with path.autocast():  # the frames are rendered as write_video consumes them
            count = write_video(frames, out_path, fps=fps, total=total, progress=True)
        click.echo(f"wrote {out_path}: {count} frames at {fps:g} fps")
