"""The `stylegan` command: a group of small commands, each mapping flags onto the library."""
from __future__ import annotations

import os
import sys
from typing import List, Optional

import click

from ..errors import UserInputError
from . import convert, generate, summary


@click.group(context_settings=dict(help_option_names=["-h", "--help"]))
@click.version_option(package_name="stylegan")
def cli() -> None:
    """StyleGAN, StyleGAN2 and StyleGAN2-ADA in pure PyTorch."""


def _register() -> None:
    from . import (
        bench,
        dataset,
        demo,
        directions,
        edit,
        export,
        metrics,
        mix,
        noise,
        pretrained,
        project,
        serve,
        train,
        video,
    )
    for module in (summary, convert, generate, dataset, train, metrics, mix, video, noise, project, export, serve,
                   bench, demo, directions, edit, pretrained):
        cli.add_command(module.command)


_register()


def run(argv: Optional[List[str]] = None) -> int:
    """Run the CLI and return its exit code; bad input prints one line `error: ...` and returns 2."""
    try:
        result = cli.main(args=argv, prog_name="stylegan", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except UserInputError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    return result if isinstance(result, int) else 0


# PyTorch backs CPU tensors of 2 MB or more with transparent huge pages when this is set (read at its first such
# allocation): a fresh activation tensor then costs a few page faults instead of thousands, which made StyleGAN3
# inference 1.6-2.2x and StyleGAN2 1.0-1.2x faster on a CPU (docs/performance.md, "Huge pages"). The command line
# sets it for its own process; a value the user set wins (0 turns it off); library users set it themselves.
HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"


def main() -> None:
    os.environ.setdefault(HUGE_PAGES_ENV, "1")
    sys.exit(run())


if __name__ == "__main__":
    main()
