"""`stylegan convert`: official NVIDIA snapshot (or an export) -> our safetensors export."""
from __future__ import annotations

from pathlib import Path

import click

from ..io.export import save_network
from ..io.load import load_network
from .common import CliError, user_errors


@click.command("convert")
@click.argument("src", type=str)
@click.argument("dest", type=str)
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists.")
def command(src, dest, force):
    """Convert SRC (an NVIDIA .pkl snapshot or an export) to a .safetensors export at DEST."""
    with user_errors():
        if Path(dest).exists() and not force:
            raise CliError(f"{dest} exists; pass --force to overwrite it")
        nets = load_network(src)
        networks = {role: nets[role] for role in ("G", "G_ema", "D") if role in nets}
        extra = {k: v for k, v in nets.items() if k not in networks}
        save_network(dest, networks, extra=extra)
        click.echo(f"wrote {dest}: {', '.join(networks)}" + (f"; {', '.join(sorted(extra))}" if extra else ""))
