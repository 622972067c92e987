"""Helpers shared by the CLI commands: error reporting."""
from __future__ import annotations

import contextlib
from typing import Iterator

import click

from ..errors import UserInputError


class CliError(click.ClickException):
    """One line on stderr and exit code 2, no traceback."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn library UserInputErrors into CliErrors (one line, exit code 2)."""
    try:
        yield
    except UserInputError as exc:
        raise CliError(str(exc)) from None
