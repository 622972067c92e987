"""Helpers shared by the CLI commands: error reporting, NVIDIA-style option spellings."""
from __future__ import annotations

import contextlib
from typing import Iterator

import click

from ..errors import UserInputError
from ..io.fetch import network_source, resolve_network
from ..runtime.compile import COMPILE_MODES

# What every --network option reads (io.load.load_network; docs/pretrained.md lists the sources).
NETWORK_FILES = ("our .safetensors export, an NVIDIA .pkl (PyTorch snapshot or TensorFlow pickle) or a "
                 "rosinality .pt checkpoint; or an http(s) URL, hf://OWNER/REPO/FILE or a `stylegan pretrained` "
                 "name of one (downloaded once into the cache)")


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


def _stack(*decorators):
    def apply(fn):
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn
    return apply


# Options shared by the commands that render from seeds (generate, mix, video, noise).
latent_options = _stack(
    click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi."),
    click.option("--trunc-cutoff", "truncation_cutoff", type=int, default=None, help="Truncate only the first N ws."),
    click.option("--class", "class_idx", type=int, default=None, help="Class label (conditional networks)."),
)
batch_device_options = _stack(
    click.option("--batch", "batch_size", type=int, default=8, show_default=True, help="Images per forward pass."),
    click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ..."),
)


def bool_option(*param_decls, help: str, default=False, **kwargs):
    """A boolean option spelled either way: ours (`--mirror`) or NVIDIA's (`--mirror=1`, `--mirror 0`, `=true`).

    param_decls: click option names, e.g. "--mirror".
    help: one line for --help.
    default: the value without the option (None: 'auto', the command decides).
    kwargs: more click.option arguments.
    """
    return click.option(*param_decls, type=click.BOOL, is_flag=False, flag_value=True, default=default,
                        show_default=default is not None, metavar="[BOOL]", help=help, **kwargs)


# Options of the commands that render with a generator: the inference path (runtime/choice.py chooses 'auto').
channels_last_option = bool_option(
    "--channels-last", default=None,
    help="Channels-last (NHWC) layout (StyleGAN2/v1); default: where a quick probe measures it faster.")
path_options = _stack(
    click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
                 help="auto: bf16 only where the CPU has it natively, it is faster in a quick probe and holds "
                      "quality."),
    channels_last_option,
)


compile_option = click.option(
    "--compile", "compile_mode", type=click.Choice(["auto", "off", *COMPILE_MODES]), default="auto",
    show_default=True,
    help="torch.compile the synthesis network for the batch size (tens of seconds at the start; a last, partial "
         "batch runs eagerly); auto: where the toolchain works and the job pays the compile time back (jobs of "
         "minutes; never StyleGAN3).")


def say_path(line: str) -> None:
    """The one line naming a tool's inference path (stderr: stdout carries the tool's results)."""
    click.echo(line, err=True)


def comma_list(value) -> tuple:
    """Split 'a,b,c' into ('a', 'b', 'c'); '', None and NVIDIA's 'none' give ()."""
    if value is None or value.strip().lower() in ("", "none"):
        return ()
    return tuple(v.strip() for v in value.split(",") if v.strip())


# --network / --resume values are resolved by io.fetch: a path stays, a URL, hf:// address or catalog name becomes
# the downloaded file. --cache-dir is eager, so click handles it before the --network callback reads it from the
# context of the same command line.
_CACHE_DIR_KEY = "stylegan.cache_dir"


def _remember_cache_dir(ctx, param, value):
    ctx.meta[_CACHE_DIR_KEY] = value
    return value


cache_dir_option = click.option(
    "--cache-dir", default=None, metavar="DIR", is_eager=True, expose_value=False, callback=_remember_cache_dir,
    help="Cache root for downloaded networks (URLs, names): DIR/networks [$STYLEGAN_CACHE or ~/.cache/stylegan].")


def network_file(value, flag: str, *, download: bool = True):
    """A --network/--resume value -> a local path (URLs, hf:// and catalog names downloaded once into the cache;
    download=False only checks the value, for dry runs). Bad addresses and failed downloads: a CliError."""
    if value is None:
        return None
    ctx = click.get_current_context(silent=True)
    try:
        if not download:
            network_source(value)
            return value
        return resolve_network(value, cache_dir=ctx.meta.get(_CACHE_DIR_KEY) if ctx is not None else None)
    except UserInputError as exc:
        raise CliError(f"{flag} {exc}") from None


def resolve_network_param(ctx, param, value):
    """click callback of a network option or argument: see network_file."""
    if ctx.resilient_parsing:
        return value
    return network_file(value, param.opts[0] if isinstance(param, click.Option) else param.human_readable_name)


def network_option(required: bool = True, help: str = f"Network: {NETWORK_FILES}.", cache_dir: bool = True):
    """--network (the value the command sees is a local file) and, unless cache_dir=False, --cache-dir."""
    option = click.option("--network", "network_path", required=required, callback=resolve_network_param, help=help)
    return _stack(option, cache_dir_option) if cache_dir else option
