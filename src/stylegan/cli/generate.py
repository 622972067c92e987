"""`stylegan generate`: images from seeds, or from latents ws saved by `stylegan project`."""
from __future__ import annotations

import click

from ..io.load import load_generator
from ..networks.synthesis import NOISE_MODES
from ..tools.generate import generate_images, parse_range_list, render_ws, write_images
from ..tools.ws_io import load_ws
from .common import CliError, batch_device_options, latent_options, user_errors


@click.command("generate")
@click.option("--network", "network_path", required=True, help="Network file (.safetensors export or NVIDIA .pkl).")
@click.option("--seeds", default=None, help="Seeds, e.g. 0-7 or 1,5,9.")
@click.option("--ws", "ws_path", default=None, help="Render these latents instead: .npz with 'w' [N, num_ws, w_dim].")
@latent_options
@click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const", show_default=True)
@click.option("--grid", is_flag=True, help="Also write grid.png with all images.")
@click.option("--grid-cols", type=int, default=None, help="Columns of grid.png (implies --grid).")
@batch_device_options
@click.option("--outdir", required=True, help="Where to write seedNNNN.png (or wNNNN.png for --ws).")
def command(network_path, seeds, ws_path, truncation_psi, truncation_cutoff, class_idx, noise_mode, grid,
            grid_cols, batch_size, device, outdir):
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
        G = load_generator(network_path, device=device)
        if ws_path is not None:
            if truncation_psi != 1 or truncation_cutoff is not None or class_idx is not None:
                raise CliError("--trunc, --trunc-cutoff and --class apply to seeds; --ws renders the latents as given")
            ws = load_ws(ws_path, G)
            images = render_ws(G, ws, noise_mode, batch_size, progress=True)
            names, prefix = list(range(len(images))), "w"
        else:
            if truncation_cutoff is not None and not 0 <= truncation_cutoff <= G.num_ws:
                raise CliError(f"--trunc-cutoff must be in 0..{G.num_ws} for this network")
            images = generate_images(G, seed_list, truncation_psi, truncation_cutoff, class_idx, noise_mode,
                                     batch_size, progress=True)
            names, prefix = seed_list, "seed"
        paths = write_images(images, names, outdir, grid=grid or grid_cols is not None, grid_cols=grid_cols,
                             prefix=prefix)
        click.echo(f"wrote {len(paths)} images to {outdir}")
