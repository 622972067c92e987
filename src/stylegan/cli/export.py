"""`stylegan export`: the generator as an ONNX or TorchScript model (inputs z, psi[, c]; output images).

StyleGAN3: the export renders the input transform the network holds; --translate/--rotate replace it first, as
gen_images.py does (tools/transform.py). Without them the stored transform is exported as it is.
"""
from __future__ import annotations

import click

from ..io.load import load_generator
from ..tools.export import DEFAULT_OPSET, FORMATS, export_generator, verify_export
from ..tools.transform import apply_transform, parse_translate
from .common import CliError, network_option, user_errors


@click.command("export")
@network_option()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="onnx", show_default=True)
@click.option("--out", "out_path", required=True, help="Output file (.onnx or .pt).")
@click.option("--batch", "batch_size", type=int, default=2, show_default=True,
              help="Batch of the traced example (the exported model runs any batch).")
@click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True, help="ONNX opset version.")
@click.option("--trunc-cutoff", "truncation_cutoff", type=int, default=None,
              help="Truncate only the first N ws (fixed in the export; psi stays an input).")
@click.option("--translate", default=None, metavar="X,Y",
              help="StyleGAN3 only: translate the output by X,Y image widths (gen_images.py); default: as stored.")
@click.option("--rotate", type=float, default=None, metavar="DEG",
              help="StyleGAN3 only: rotate the output by DEG degrees (gen_images.py); default: as stored.")
@click.option("--verify", is_flag=True, help="Run the export (onnxruntime / torch.jit) and print its max error.")
def command(network_path, fmt, out_path, batch_size, opset, truncation_cutoff, translate, rotate, verify):
    """Export the generator with inputs z [N, z_dim], psi [N] (and c [N, c_dim] for conditional networks)."""
    with user_errors():
        if batch_size < 1:
            raise CliError("--batch must be at least 1")
        shift = parse_translate(translate) if translate is not None else None
        G = load_generator(network_path)
        apply_transform(G, shift, rotate)
        export_generator(G, out_path, fmt, batch_size=batch_size, opset=opset, truncation_cutoff=truncation_cutoff)
        inputs = "z, psi" + (", c" if G.c_dim else "")
        click.echo(f"wrote {out_path} ({fmt}; inputs {inputs}; output images [N, {G.img_channels}, "
                   f"{G.img_resolution}, {G.img_resolution}])")
        if verify:
            err = verify_export(G, out_path, fmt, seeds=range(3), truncation_cutoff=truncation_cutoff)
            click.echo(f"max abs difference vs PyTorch (3 seeds, psi 0.7): {err:.3g}")
