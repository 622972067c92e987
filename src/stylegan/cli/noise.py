"""`stylegan noise`: the stochastic-variation figure of the StyleGAN paper (figure 4)."""
from __future__ import annotations

import click

from ..io.load import load_generator
from ..tools.generate import parse_range_list
from ..io.images import save_image
from ..tools.noise import noise_figure
from .common import CliError, batch_device_options, latent_options, network_option, user_errors


@click.command("noise")
@network_option()
@click.option("--seeds", required=True, help="Seeds, one row each, e.g. 1,2.")
@click.option("--samples", "num_samples", type=int, default=4, show_default=True, help="Noise draws shown per row.")
@click.option("--std-samples", "num_std", type=int, default=100, show_default=True,
              help="Noise draws the per-pixel standard deviation is taken over.")
@click.option("--layers", default=None, help="Keep noise only in these layers: coarse, middle, fine, 0-3, ... "
                                             "(default: all).")
@latent_options
@click.option("--noise-seed", type=int, default=0, show_default=True, help="Seed of the noise draws.")
@batch_device_options
@click.option("--out", "out_path", required=True, help="PNG file to write.")
def command(network_path, seeds, num_samples, num_std, layers, truncation_psi, truncation_cutoff, class_idx,
            noise_seed, batch_size, device, out_path):
    """Stochastic variation: per seed, the image under several noise draws and the per-pixel std (white = most)."""
    with user_errors():
        seed_list = parse_range_list(seeds)
        if batch_size < 1:
            raise CliError("--batch must be at least 1")
        G = load_generator(network_path, device=device)
        figure = noise_figure(G, seed_list, num_samples=num_samples, num_std=num_std, layers=layers,
                              truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                              class_idx=class_idx, noise_seed=noise_seed, batch_size=batch_size)
        save_image(figure, out_path)
        click.echo(f"wrote {out_path} ({len(seed_list)} rows: {num_samples} noise draws + std over {num_std})")
