"""`stylegan edit`: move latents along a direction from `stylegan directions` and render each strength.

    stylegan edit --network net.safetensors --seeds 1-4 --directions sefa.npz --component 0 \\
        --strengths -3,0,3 --layers coarse --outdir out/edit
    stylegan edit --network net.safetensors --ws out/proj/projected_w_face.npz --directions sefa.npz ...

Writes one PNG per (row, strength), grid.png (rows = seeds or ws rows, columns = strengths) and edited_ws.npz,
which `stylegan generate --ws` renders (row-major: row r, strength s is entry r * S + s).
"""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..io.load import load_generator
from ..networks.synthesis import NOISE_MODES
from ..tools.directions import Directions
from ..tools.edit import edit_grid, parse_strengths, resolve_layers
from ..tools.generate import check_batch_size, parse_range_list, seed_ws
from ..io.images import make_grid, save_image
from ..tools.ws_io import load_ws, save_ws
from .common import CliError, network_option, user_errors

EDITED_WS = "edited_ws.npz"


@click.command("edit")
@network_option()
@click.option("--seeds", default=None, help="Edit the ws of these seeds, e.g. 0-3 or 1,5,9.")
@click.option("--ws", "--projected-w", "ws_path", default=None,
              help="Edit these latents instead: .npz with 'w' [N, num_ws, w_dim] (e.g. from stylegan project).")
@click.option("--directions", "directions_path", required=True, help="An .npz from `stylegan directions`.")
@click.option("--component", type=int, default=0, show_default=True, help="Which direction (0 = the first).")
@click.option("--strengths", default="-3,0,3", show_default=True,
              help="Distances in W along the direction, one column each.")
@click.option("--layers", default=None,
              help="ws indices to edit: all, coarse, middle, fine, 0-5, 3 (default: the directions' own layers).")
@click.option("--trunc", "--truncation-psi", "truncation_psi", type=float, default=1.0, show_default=True,
              help="Truncation psi of the seeds' ws.")
@click.option("--trunc-cutoff", "truncation_cutoff", type=int, default=None, help="Truncate only the first N ws.")
@click.option("--class", "class_idx", type=int, default=None, help="Class label of the seeds (conditional networks).")
@click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const", show_default=True)
@click.option("--batch", "batch_size", type=int, default=8, show_default=True, help="Images per forward pass.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--outdir", required=True, help="Where to write the images, grid.png and edited_ws.npz.")
def command(network_path, seeds, ws_path, directions_path, component, strengths, layers, truncation_psi,
            truncation_cutoff, class_idx, noise_mode, batch_size, device, outdir):
    """Edit the ws of seeds (or of an .npz) along one direction at several strengths."""
    with user_errors():
        if (seeds is None) == (ws_path is None):
            raise CliError("give either --seeds or --ws (one of them)")
        if ws_path is not None and (truncation_psi != 1 or truncation_cutoff is not None or class_idx is not None):
            raise CliError("--trunc, --trunc-cutoff and --class apply to seeds; --ws edits the latents as given")
        check_batch_size(batch_size)
        values = parse_strengths(strengths)
        seed_list = parse_range_list(seeds) if seeds is not None else None
        out = Path(outdir)
        if out.exists() and not out.is_dir():
            raise CliError(f"--outdir {outdir} exists and is not a folder")
        directions = Directions.load(directions_path)
        directions.vector(component)  # range check before loading the network
        G = load_generator(network_path, device=device)
        directions.check_network(G)
        chosen = resolve_layers(G, directions, layers)
        if ws_path is not None:
            ws = load_ws(ws_path, G)
            names, prefix = list(range(ws.shape[0])), "w"
        else:
            ws = seed_ws(G, seed_list, truncation_psi, truncation_cutoff, class_idx)
            names, prefix = seed_list, "seed"
        images, edited = edit_grid(G, ws, directions, component, values, layers=chosen, noise_mode=noise_mode,
                                   batch_size=batch_size)
        for idx, image in enumerate(images):
            row, col = divmod(idx, len(values))
            save_image(image, out / f"{prefix}{names[row]:04d}_{values[col]:+g}.png")
        save_image(make_grid(images, cols=len(values)), out / "grid.png")
        save_ws(out / EDITED_WS, edited, strengths=np.array(values), component=np.array(component),
                layers=np.array(chosen))
        click.echo(f"wrote {len(images)} images, grid.png ({len(names)} rows x {len(values)} strengths) and "
                   f"{EDITED_WS} to {outdir}")
