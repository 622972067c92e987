"""`stylegan pretrained`: the networks NVIDIA published (io.catalog), which of them are cached, and downloads.

    stylegan pretrained                      # every name: generation, resolution, dataset, size and cache state
    stylegan pretrained ffhq --urls          # names containing 'ffhq', with their official addresses
    stylegan pretrained --download stylegan3-t-ffhqu-256x256   # fetch now (e.g. before going offline)
"""
from __future__ import annotations

import click

from ..io import catalog
from ..io.fetch import cache_path, fetch, network_cache
from .common import CliError, user_errors

COLUMNS = ("name", "generation", "resolution", "dataset", "size", "cached")


def _size(nbytes: int) -> str:
    return f"{nbytes / 2 ** 20:,.0f} MB" if nbytes >= 2 ** 20 else f"{nbytes / 1024:,.0f} KB"


def _rows(entries, cache_dir, urls: bool):
    for entry in entries:
        path = cache_path(entry.url, cache_dir)
        cached = path.is_file()
        row = [entry.name, entry.generation, entry.resolution, entry.dataset,
               _size(path.stat().st_size) if cached else "-", "yes" if cached else "no"]
        if urls:
            row.append(entry.url)
        yield row


def _table(rows, header) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in (header, *rows)]
    return "\n".join(lines)


@click.command("pretrained")
@click.argument("names", nargs=-1)
@click.option("--urls", is_flag=True, help="Add the official address of each network.")
@click.option("--download", is_flag=True, help="Download the NAMES given (exact names) now, and print their files.")
@click.option("--cache-dir", default=None, metavar="DIR",
              help="Cache root: DIR/networks [$STYLEGAN_CACHE or ~/.cache/stylegan].")
def command(names, urls, download, cache_dir):
    """List NVIDIA's published networks that --network (and train --resume) take by name, or download some.

    NAMES filter the list (a name contains any of them); with --download they must be exact names. Sizes are
    shown for cached files: no size or checksum is recorded in the catalog (docs/pretrained.md says why)."""
    with user_errors():
        if download:
            if not names:
                raise CliError("--download needs the NAMES to fetch (`stylegan pretrained` lists them)")
            entries = []
            for name in names:
                entry = catalog.find_pretrained(name)
                if entry is None:
                    close = catalog.similar_names(name)
                    hint = f"; did you mean {' or '.join(close)}?" if close else "; `stylegan pretrained` lists them"
                    raise CliError(f"no network named {name!r}{hint}")
                entries.append(entry)
            for entry in entries:
                click.echo(f"{entry.name}: {fetch(entry.url, sha256=entry.sha256, cache_dir=cache_dir)}")
            return
        entries = [e for e in catalog.CATALOG if not names or any(n in e.name or n in e.aliases for n in names)]
        if not entries:
            raise CliError(f"no network name contains {' or '.join(map(repr, names))}; `stylegan pretrained` "
                           f"lists them all")
        header = COLUMNS + (("url",) if urls else ())
        click.echo(_table(list(_rows(entries, cache_dir, urls)), header))
        click.echo(f"\n{len(entries)} networks; downloads are kept in {network_cache(cache_dir)}")
