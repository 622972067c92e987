"""`stylegan demo`: what `make demo` runs."""
from __future__ import annotations

import click

from .common import user_errors


@click.command("demo")
@click.option("--outdir", default="demo-out", show_default=True, help="Where to put data, run and samples.")
@click.option("--minutes", type=float, default=10.0, show_default=True, help="Training time budget.")
@click.option("--kimg", type=float, default=None, help="Optional cap on training length.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--plain", is_flag=True, help="Train on the default path (no compile, float32, NCHW).")
def command(outdir, minutes, kimg, seed, plain):
    """Train the `cpu` preset on Fashion-MNIST 32x32 for a few minutes and write samples and a report."""
    with user_errors():
        from ..tools.demo import run_demo
        run_demo(outdir, minutes=minutes, kimg=kimg, seed=seed, fast=not plain)
