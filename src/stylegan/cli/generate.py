"""`stylegan generate`: images from seeds, or from latents ws saved by `stylegan project`.

NVIDIA's command lines work as written: gen_images.py / generate.py flags (`--outdir=out --seeds=0-35 --trunc=1
--class=1 --noise-mode=const --network=...`), `--projected-w` (generate.py's name for --ws), and `--translate` /
`--rotate`, which move the input grid of StyleGAN3 generators (refused, with the reason, for other networks). As in
gen_images.py they replace a StyleGAN3 generator's stored transform, so the defaults render it untransformed.
"""
from __future__ import annotations

import click

from ..io.load import load_generator
from ..networks.synthesis import NOISE_MODES
from ..tools.generate import class_labels, generate_images, parse_range_list, render_ws, write_images
from ..runtime.choice import prepare_inference
from ..tools.ws_io import load_ws
from .common import (CliError, batch_device_options, compile_option, latent_options, network_option, path_options,
                     say_path, user_errors)


@click.command("generate")
@network_option()
@click.option("--seeds", default=None, help="Seeds, e.g. 0-7 or 1,5,9.")
@click.option("--ws", "--projected-w", "ws_path", default=None,
              help="Render these latents instead: .npz with 'w' [N, num_ws, w_dim] (NVIDIA: --projected-w).")
@latent_options
@click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const", show_default=True)
@click.option("--translate", default="0,0", show_default=True, metavar="X,Y",
              help="StyleGAN3 only: translate the input grid (gen_images.py).")
@click.option("--rotate", type=float, default=0.0, show_default=True, metavar="DEG",
              help="StyleGAN3 only: rotate the input grid by this many degrees (gen_images.py).")
@click.option("--grid", is_flag=True, help="Also write grid.png with all images.")
@click.option("--grid-cols", type=int, default=None, help="Columns of grid.png (implies --grid).")
@batch_device_options
@path_options
@compile_option
@click.option("--outdir", required=True, help="Where to write seedNNNN.png (or wNNNN.png for --ws).")
def command(network_path, seeds, ws_path, truncation_psi, truncation_cutoff, class_idx, noise_mode, translate, rotate,
            grid, grid_cols, batch_size, device, precision, channels_last, compile_mode, outdir):
    """Generate images for a list of seeds (the same seed gives the same image as NVIDIA's gen_images.py),
    or render the latents of an .npz file (--ws)."""
    with user_errors():
        if (seeds is None) == (ws_path is None):
            raise CliError("give either --seeds or --ws (one of them)")
        if batch_size < 1:
            raise CliError("--batch must be at least 1")
        if grid_cols is not None and grid_cols < 1:
            raise CliError("--grid-cols must be at least 1")
        seed_list = parse_range_list(seeds) if seeds is not None else None
        shift = _vec2(translate, "--translate")
        G = load_generator(network_path, device=device)
        if hasattr(G, "set_transform"):  # StyleGAN3: as gen_images.py, the flags replace the stored transform
            G.set_transform(shift, rotate)
        elif shift != (0.0, 0.0) or rotate != 0:
            raise CliError("--translate and --rotate move the input grid of StyleGAN3 generators; this network "
                           "has none (a StyleGAN2/StyleGAN generator): drop them")
        if ws_path is not None:
            if truncation_psi != 1 or truncation_cutoff is not None or class_idx is not None:
                raise CliError("--trunc, --trunc-cutoff and --class apply to seeds; --ws renders the latents as given")
            ws = load_ws(ws_path, G)
            path = prepare_inference(G, batch_size, len(ws), precision, channels_last, compile=compile_mode,
                                     say=say_path)
            with path.autocast():
                images = render_ws(G, ws, noise_mode, batch_size, progress=True)
            names, prefix = list(range(len(images))), "w"
        else:
            if truncation_cutoff is not None and not 0 <= truncation_cutoff <= G.num_ws:
                raise CliError(f"--trunc-cutoff must be in 0..{G.num_ws} for this network")
            class_labels(G, class_idx, 1)  # a wrong --class fails before any output, the path line included
            path = prepare_inference(G, batch_size, len(seed_list), precision, channels_last,
                                     compile=compile_mode, say=say_path)
            with path.autocast():
                images = generate_images(G, seed_list, truncation_psi, truncation_cutoff, class_idx, noise_mode,
                                         batch_size, progress=True)
            names, prefix = seed_list, "seed"
        paths = write_images(images, names, outdir, grid=grid or grid_cols is not None, grid_cols=grid_cols,
                             prefix=prefix)
        click.echo(f"wrote {len(paths)} images to {outdir}")


def _vec2(text: str, flag: str) -> tuple:
    """'0.3,1' -> (0.3, 1.0), as gen_images.py reads --translate."""
    parts = text.split(",")
    try:
        if len(parts) == 2:
            return float(parts[0]), float(parts[1])
    except ValueError:
        pass
    raise CliError(f"{flag} takes two numbers like 0.3,1, got {text!r}")
