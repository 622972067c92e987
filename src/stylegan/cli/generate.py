"""`stylegan generate`: images from seeds."""
from __future__ import annotations

import click

from ..io.load import load_generator
from ..networks.synthesis import NOISE_MODES
from ..tools.generate import generate_images, parse_range_list, write_images
from .common import CliError, user_errors


@click.command("generate")
@click.option("--network", "network_path", required=True, help="Network file (.safetensors export or NVIDIA .pkl).")
@click.option("--seeds", required=True, help="Seeds, e.g. 0-7 or 1,5,9.")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--trunc-cutoff", "truncation_cutoff", type=int, default=None, help="Truncate only the first N ws.")
@click.option("--class", "class_idx", type=int, default=None, help="Class label (conditional networks).")
@click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const", show_default=True)
@click.option("--grid", is_flag=True, help="Also write grid.png with all images.")
@click.option("--batch", "batch_size", type=int, default=8, show_default=True, help="Images per forward pass.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--outdir", required=True, help="Where to write seedNNNN.png.")
def command(network_path, seeds, truncation_psi, truncation_cutoff, class_idx, noise_mode, grid, batch_size,
            device, outdir):
    """Generate images for a list of seeds (the same seed gives the same image as NVIDIA's gen_images.py)."""
    with user_errors():
        seed_list = parse_range_list(seeds)
        if batch_size < 1:
            raise CliError("--batch must be at least 1")
        G = load_generator(network_path, device=device)
        if truncation_cutoff is not None and not 0 <= truncation_cutoff <= G.num_ws:
            raise CliError(f"--trunc-cutoff must be in 0..{G.num_ws} for this network")
        images = generate_images(G, seed_list, truncation_psi, truncation_cutoff, class_idx, noise_mode, batch_size)
        paths = write_images(images, seed_list, outdir, grid=grid)
        click.echo(f"wrote {len(paths)} images to {outdir}")
