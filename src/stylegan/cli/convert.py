"""`stylegan convert`: any network file we read -> our safetensors export, or a rosinality .pt checkpoint."""
from __future__ import annotations

from pathlib import Path

import click

from ..io.export import save_network
from ..io.load import load_network
from .common import CliError, cache_dir_option, resolve_network_param, user_errors

TARGETS = ("stylegan", "rosinality")


def _rosinality_note(info: dict) -> str:
    """How rosinality's code builds the written networks."""
    call = f"Generator({info['size']}, {info['style_dim']}, {info['n_mlp']}"
    if info["channel_multiplier"] is not None:
        return f"rosinality's model.py builds it as {call}, channel_multiplier={info['channel_multiplier']})"
    table = ", ".join(f"{res}: {ch}" for res, ch in sorted(info["channels"].items()))
    return (f"rosinality's model.py builds it as {call}) only after its channels table (Generator and "
            f"Discriminator) is edited to {{{table}}}; no channel_multiplier gives these channels")


@click.command("convert")
@click.argument("src", type=str, callback=resolve_network_param)
@click.argument("dest", type=str)
@click.option("--to", "target", type=click.Choice(TARGETS), default="stylegan", show_default=True,
              help="stylegan: our .safetensors export. rosinality: a rosinality/stylegan2-pytorch .pt checkpoint "
                   "(g_ema, latent_avg, and g, d where SRC has them), as its convert_weight.py writes.")
@click.option("--allow-conv-clamp", is_flag=True,
              help="--to rosinality: write networks with conv_clamp even where dropping the clamp (rosinality's "
                   "networks never clamp) changes the images of the measured seeds by more than 1/255.")
@click.option("--clamp-seeds", type=click.IntRange(min=1), default=None,
              help="--to rosinality: how many seeds (0..N-1) measure what dropping conv_clamp changes "
                   "[default: up to 4096, fewer for big networks].")
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists.")
@cache_dir_option
def command(src, dest, target, allow_conv_clamp, clamp_seeds, force):
    """Convert SRC (an NVIDIA .pkl: PyTorch snapshot or TensorFlow (G, D, Gs) pickle; a rosinality .pt checkpoint;
    or an export; or an http(s) URL, hf://OWNER/REPO/FILE or a `stylegan pretrained` name of one) to DEST. A
    TensorFlow pickle's Gs becomes G_ema."""
    with user_errors():
        if Path(dest).exists() and not force:
            raise CliError(f"{dest} exists; pass --force to overwrite it")
        for flag, given in (("--allow-conv-clamp", allow_conv_clamp), ("--clamp-seeds", clamp_seeds is not None)):
            if given and target != "rosinality":
                raise CliError(f"{flag} applies to --to rosinality only")
        nets = load_network(src)
        networks = {role: nets[role] for role in ("G", "G_ema", "D") if role in nets}
        if target == "rosinality":
            from ..io.rosinality import save_rosinality
            G = nets.get("G")
            G = G if G is not nets["G_ema"] else None  # an export holding one generator gives it as both
            info = save_rosinality(dest, nets["G_ema"], D=nets.get("D"), G=G, allow_conv_clamp=allow_conv_clamp,
                                   clamp_seeds=clamp_seeds)
            for effect in info["clamp_effects"]:
                click.echo(f"conv_clamp: {effect}")
            keys = ["g_ema", "latent_avg"] + (["g"] if G is not None else []) + (["d"] if "D" in nets else [])
            click.echo(f"wrote {dest}: {', '.join(keys)}; {_rosinality_note(info)}")
            return
        extra = {k: v for k, v in nets.items() if k not in networks}
        save_network(dest, networks, extra=extra)
        click.echo(f"wrote {dest}: {', '.join(networks)}" + (f"; {', '.join(sorted(extra))}" if extra else ""))
