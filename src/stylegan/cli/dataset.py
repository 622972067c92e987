"""`stylegan dataset`: convert images, MNIST idx files, CIFAR-10, TF-era .tfrecords or LSUN LMDB into a training zip.

Maps flags to `stylegan.data.dataset_tool.convert_dataset` and nothing else.

Examples:
    stylegan dataset --source photos/ --dest photos256.zip --resolution 256 --transform center-crop
    stylegan dataset --source /usr/share/datasets/fashion-mnist --dest fmnist32.zip   # 28x28 padded to 32x32
    stylegan dataset --source cifar-10-python.tar.gz --dest cifar10.zip
    stylegan dataset --source datasets/ffhq --dest ffhq.zip          # TF-era folder: its highest resolution
    stylegan dataset --source lsun/cat_lmdb --dest cat256.zip --transform center-crop --resolution 256

NVIDIA's dataset_tool.py spellings work as written: `--source=... --dest=... --resolution=256x256
--transform=center-crop|center-crop-wide --max-images=N` (stylegan3) and `--width=256 --height=256
--resize-filter=box` (stylegan2-ada-pytorch). Training images are square, so WxH must have W == H.
"""
from __future__ import annotations

import click

from stylegan.cli.common import CliError
from stylegan.data.dataset_tool import RESIZE_FILTERS, TRANSFORMS, convert_dataset
from stylegan.errors import UserInputError


class _Resolution(click.ParamType):
    """N or NxN (NVIDIA's `--resolution=256x256`); non-square sizes are refused with the reason."""

    name = "resolution"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        width, sep, height = text.partition("x")
        try:
            width, height = int(width), int(height if sep else width)
        except ValueError:
            self.fail(f"{value!r} is not a size; give N or NxN, e.g. 256 or 256x256", param, ctx)
        if width != height:
            self.fail(f"{value}: training images are square; give NxN with equal sides (and --transform "
                      f"center-crop-wide to keep a wide image's full width)", param, ctx)
        return width


def _side(resolution, width, height):
    """One side from --resolution or NVIDIA's --width/--height (stylegan2-ada-pytorch)."""
    sides = {v for v in (resolution, width, height) if v is not None}
    if len(sides) > 1:
        raise CliError(f"--resolution/--width/--height disagree ({', '.join(map(str, sorted(sides)))}); training "
                       f"images are square, give one side")
    return sides.pop() if sides else None


@click.command("dataset")
@click.option("--source", "sources", required=True, multiple=True, metavar="SRC",
              help="Folder or zip of images, MNIST idx files (folder, or images + labels files: repeat --source; "
                   "28x28 gets a 2-pixel black border to 32x32, as NVIDIA's tool), the CIFAR-10 python archive, "
                   "a TF-era .tfrecords folder (its highest resolution, labels from NAME-rxx.labels) or file, or an "
                   "LSUN LMDB folder (needs stylegan[lmdb]).")
@click.option("--dest", required=True, metavar="OUT.zip", help="Dataset zip to write.")
@click.option("--resolution", type=_Resolution(), default=None, metavar="N|NxN",
              help="Output side, a power of two (default: keep); NVIDIA's 256x256 works too.")
@click.option("--width", type=int, default=None, metavar="N", help="NVIDIA's stylegan2-ada spelling: output width.")
@click.option("--height", type=int, default=None, metavar="N", help="NVIDIA's stylegan2-ada spelling: output height.")
@click.option("--transform", type=click.Choice(TRANSFORMS), default=None, help="How to make non-square images square.")
@click.option("--labels-from-folders", is_flag=True, help="Label each image by its top-level folder name.")
@click.option("--max-images", type=int, default=None, metavar="N", help="Write at most N images.")
@click.option("--resize-filter", type=click.Choice(sorted(RESIZE_FILTERS)), default="lanczos", show_default=True,
              help="Resampling filter.")
@click.option("--keep-alpha", is_flag=True, help="Store RGBA (4 channels) instead of compositing on white.")
@click.option("--force", is_flag=True, help="Overwrite OUT.zip if it exists.")
def command(sources, dest, resolution, width, height, transform, labels_from_folders, max_images, resize_filter,
            keep_alpha, force):
    """Convert images into a training dataset zip (NVIDIA StyleGAN2-ADA layout)."""
    resolution = _side(resolution, width, height)
    def warn_skip(name: str, reason: str) -> None:
        click.echo(f"warning: skipped {name}: {reason}", err=True)

    try:
        summary = convert_dataset(
            list(sources) if len(sources) > 1 else sources[0],
            dest,
            resolution=resolution,
            transform=transform,
            labels_from_folders=labels_from_folders,
            max_images=max_images,
            resize_filter=resize_filter,
            rgba="keep" if keep_alpha else "composite",
            force=force,
            progress=True,
            on_skip=warn_skip,
        )
    except UserInputError as e:
        raise CliError(str(e)) from None
    click.echo(str(summary))
