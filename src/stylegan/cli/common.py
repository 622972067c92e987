"""Helpers shared by the CLI commands: error reporting and argument parsing."""
from __future__ import annotations

import click


class CliError(click.ClickException):
    """One line on stderr and exit code 2, no traceback."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)
