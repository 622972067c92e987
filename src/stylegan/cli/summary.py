"""`stylegan summary`: per-layer tables of G and D for a preset or a network file."""
from __future__ import annotations

import click
import torch

from ..networks.summary import discriminator_summary, generator_summary
from ..presets import ARCHITECTURES, PRESET_NAMES, resolve_preset, with_stylegan1
from .common import NETWORK_FILES, CliError, network_option, user_errors


@click.command("summary")
@click.option("--cfg", type=click.Choice(PRESET_NAMES), default="stylegan2", show_default=True, help="Preset.")
@click.option("--arch", type=click.Choice(ARCHITECTURES), default="stylegan2", show_default=True,
              help="stylegan1 builds the v1 networks with the preset's sizes (stylegan2 preset = official FFHQ v1).")
@click.option("--resolution", type=int, default=None, help="Image resolution (power of two). Default 1024 for presets.")
@click.option("--channels", type=int, default=3, show_default=True, help="Image channels.")
@click.option("--classes", type=int, default=0, show_default=True, help="Number of classes (0 = unconditional).")
@network_option(required=False, help=f"Summarise this network instead: {NETWORK_FILES}.")
@click.option("--batch", type=int, default=4, show_default=True, help="Batch size of the traced pass.")
def command(cfg, arch, resolution, channels, classes, network_path, batch):
    """Print parameter, buffer and output-shape tables for G and D."""
    with user_errors():
        if batch < 1:
            raise CliError("--batch must be at least 1")
        if network_path is not None:
            from ..io.load import load_network
            nets = load_network(network_path)
            G, D = nets["G_ema"], nets.get("D")
        else:
            res = resolution or 1024
            config = resolve_preset(cfg, res)
            net = (with_stylegan1(config, res) if arch == "stylegan1" else config).network
            from ..networks.registry import build_network
            with torch.device("meta"):  # shapes only: no memory, no compute
                G = build_network(net.generator_class, net.generator_kwargs(res, channels, classes))
                D = build_network(net.discriminator_class, net.discriminator_kwargs(res, channels, classes))
        click.echo(generator_summary(G, batch))
        if D is not None:
            click.echo("")
            click.echo(discriminator_summary(D, batch))
