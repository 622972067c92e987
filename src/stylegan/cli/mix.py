"""`stylegan mix`: the style-mixing figure of the StyleGAN paper (figure 3)."""
from __future__ import annotations

import click

from ..io.load import load_generator
from ..networks.synthesis import NOISE_MODES
from ..tools.generate import parse_range_list
from ..io.images import save_image
from ..tools.mixing import style_mixing_grid
from ..runtime.choice import prepare_inference
from ..tools.transform import apply_transform, parse_translate
from .common import (CliError, batch_device_options, compile_option, latent_options, network_option, path_options,
                     say_path, user_errors)


@click.command("mix")
@network_option()
@click.option("--rows", "row_seeds", required=True, help="Seeds of the row sources, e.g. 85,100,75.")
@click.option("--cols", "col_seeds", required=True, help="Seeds of the column sources, e.g. 55,821,1789.")
@click.option("--styles", default="coarse", show_default=True,
              help="Layers taken from the column source: coarse, middle, fine, 0-6, coarse,middle, ...")
@latent_options
@click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const", show_default=True)
@click.option("--translate", default=None, metavar="X,Y",
              help="StyleGAN3 only: translate the output by X,Y image widths (gen_images.py); default: as stored.")
@click.option("--rotate", type=float, default=None, metavar="DEG",
              help="StyleGAN3 only: rotate the output by DEG degrees (gen_images.py); default: as stored.")
@batch_device_options
@path_options
@compile_option
@click.option("--out", "out_path", required=True, help="PNG file to write.")
def command(network_path, row_seeds, col_seeds, styles, truncation_psi, truncation_cutoff, class_idx, noise_mode,
            translate, rotate, batch_size, device, precision, channels_last, compile_mode, out_path):
    """Style-mixing grid: cell (r, c) is row seed r with the --styles layers taken from column seed c."""
    with user_errors():
        rows = parse_range_list(row_seeds, what="row seeds")
        cols = parse_range_list(col_seeds, what="column seeds")
        if batch_size < 1:
            raise CliError("--batch must be at least 1")
        shift = parse_translate(translate) if translate is not None else None
        G = load_generator(network_path, device=device)
        apply_transform(G, shift, rotate)
        cells = len(rows) * len(cols) + len(rows) + len(cols)
        path = prepare_inference(G, batch_size, cells, precision, channels_last, compile=compile_mode,
                                 say=say_path)
        with path.autocast():
            grid = style_mixing_grid(G, rows, cols, styles, truncation_psi=truncation_psi, noise_mode=noise_mode,
                                     class_idx=class_idx, truncation_cutoff=truncation_cutoff, batch_size=batch_size)
        save_image(grid, out_path)
        click.echo(f"wrote {out_path} ({len(rows)} rows x {len(cols)} columns)")
