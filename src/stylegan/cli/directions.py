"""`stylegan directions`: find editing directions in W (SeFa, GANSpace, label boundaries) and save them as .npz.

    stylegan directions --network net.safetensors --method sefa --layers coarse --out sefa.npz
    stylegan directions --network net.safetensors --method ganspace --num 10000 --components 20 --out pca.npz
    stylegan directions --network net.safetensors --method labels --feature-net fmnist --num 2000 --out lab.npz

See docs/editing.md; `stylegan edit` applies the result.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..io.load import load_generator
from ..tools.directions import METHODS, VALUE_NAMES, Directions, ganspace, label_directions, sefa
from ..tools.generate import parse_range_list
from .common import CliError, network_option, user_errors

DEFAULT_NUM = {"ganspace": 10000, "labels": 2000}


@click.command("directions")
@network_option()
@click.option("--method", type=click.Choice(METHODS), required=True,
              help="sefa: eigenvectors of the style weights (closed form); ganspace: PCA of sampled w; labels: a "
                   "boundary per class (conditional network, or --feature-net's predictions).")
@click.option("--layers", default="all", show_default=True,
              help="ws indices: all, coarse, middle, fine, 0-5, 3 (sefa: the style affines factorized; every "
                   "method: the default range `stylegan edit` applies the directions to).")
@click.option("--num", type=int, default=None,
              help="Sampled w (ganspace: 10000, labels: 2000 by default; sefa samples nothing).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the samples (ganspace, labels).")
@click.option("--components", type=int, default=None,
              help="ganspace: components kept (default: 32, or w_dim if smaller).")
@click.option("--class", "class_list", default=None,
              help="labels: the classes to fit, e.g. 0,3-5 (default: every class with enough samples).")
@click.option("--feature-net", default=None,
              help="labels: label samples by this classifier's prediction (e.g. fmnist) instead of the network's "
                   "own classes.")
@click.option("--top", type=int, default=10, show_default=True, help="Rows of the table printed.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--out", "out_path", required=True, help="The .npz file to write.")
def command(network_path, method, layers, num, seed, components, class_list, feature_net, top, device, out_path):
    """Find latent directions in W and write them (with the network's fingerprint) to an .npz file."""
    with user_errors():
        if method != "labels" and (class_list is not None or feature_net is not None):
            raise CliError("--class and --feature-net belong to --method labels")
        if method != "ganspace" and components is not None:
            raise CliError(f"--components belongs to --method ganspace ({method} returns "
                           f"{'all w_dim directions' if method == 'sefa' else 'one direction per class'})")
        if method == "sefa" and num is not None:
            raise CliError("--num: sefa samples nothing (it factorizes the weights); drop it")
        if num is not None and num < 2:
            raise CliError("--num must be at least 2")
        if top < 0:
            raise CliError("--top must be at least 0")
        if Path(out_path).is_dir():
            raise CliError(f"--out {out_path} is a folder; give the .npz file to write")
        classes = parse_range_list(class_list, what="classes", max_value=10 ** 6) if class_list else None
        G = load_generator(network_path, device=device)
        if method == "sefa":
            directions = sefa(G, layers)
        elif method == "ganspace":
            directions = ganspace(G, num=num or DEFAULT_NUM[method], seed=seed, layers=layers, components=components)
        else:
            directions = label_directions(G, classes=classes, feature_net=feature_net,
                                          num=num or DEFAULT_NUM[method], seed=seed, layers=layers)
        directions.save(out_path)
        click.echo(describe(directions, top))
        click.echo(f"wrote {out_path}")


def describe(directions: Directions, top: Optional[int] = 10) -> str:
    """A table of the first `top` components and their values (labels: with the class of each).

    directions: what to describe.
    top:        rows shown (None: all).
    """
    d = directions
    count = d.num_components if top is None else min(top, d.num_components)
    layers = ",".join(str(i) for i in d.layers)
    lines = [f"{d.method}: {d.num_components} directions in W for network {d.fingerprint}, layers {layers}"]
    is_labels = d.method == "labels"
    header = f"{'component':>9}  " + (f"{'class':>5}  " if is_labels else "") + VALUE_NAMES[d.method]
    lines.append(header)
    for k in range(count):
        value = f"{d.values[k]:.4f}"
        label = f"{d.params['classes'][k]:>5}  " if is_labels else ""
        lines.append(f"{k:>9}  {label}{value}")
    if count < d.num_components:
        lines.append(f"{'...':>9}  ({d.num_components - count} more)")
    if d.method == "ganspace":
        lines.append(f"explained in all {d.num_components}: {d.values.sum():.4f}")
    return "\n".join(lines)
