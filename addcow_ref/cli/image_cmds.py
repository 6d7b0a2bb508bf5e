"""``addcow resize``, ``hydrate`` and ``upgrade``: the commands that change a whole image in
place.

Each opens the image read-write (``upgrade`` rewrites the metadata file atomically), does one
library call and prints one line saying what changed, or nothing with ``-q``; each takes
``-f add-cow``, as every image command does, for qemu-img habits.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from addcow_ref.cli.errors import about, fail, open_named
from addcow_ref.cli.humanize import format_size, parse_size
from addcow_ref.cli.inspect_cmds import FORMAT_OPTION
from addcow_ref.format.header import read_version
from addcow_ref.format.text import printable
from addcow_ref.ops.info import image_info

__all__ = ["hydrate", "parse_resize", "resize", "upgrade"]

_QUIET = click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")


def parse_resize(text: str, current: int) -> int:
    """The new size for ``resize``: absolute, ``+SIZE`` (grow by) or ``-SIZE`` (shrink by)."""
    sign = text[:1]
    if sign in "+-" and sign:
        delta = parse_size(text[1:])
        return current + delta if sign == "+" else current - delta
    return parse_size(text)


@click.command(context_settings={"ignore_unknown_options": True})
@FORMAT_OPTION
@_QUIET
@click.option("--shrink", is_flag=True,
              help="Allow shrinking: the clusters past the new end are dropped.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("size", metavar="[+|-]SIZE")
def resize(fmt: str, quiet: bool, shrink: bool, file: str, size: str) -> None:
    """Change FILE's virtual size to SIZE, or by +SIZE / -SIZE.

    Growing makes the new clusters allocated zeros (old backing data never shows through);
    shrinking needs --shrink, as with qemu-img, because it drops data.
    """
    with open_named(file, "r+") as img, about(file):
        current = int(img.virtual_size)
        try:
            new_size = parse_resize(size, current)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="'SIZE'") from None
        if new_size < 0:
            raise fail(file, f"cannot shrink below 0 bytes (the disk is {current} bytes)")
        if new_size < current and not shrink:
            raise click.UsageError(
                f"shrinking {file} from {current} to {new_size} bytes drops data; "
                "add --shrink to confirm"
            )
        img.resize(new_size)
        img.flush()
    if not quiet:
        click.echo(f"Image resized: {current} -> {new_size} bytes "
                   f"({format_size(new_size)})")


def _tqdm_progress(total: int, desc: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
               file=sys.stderr, dynamic_ncols=True, leave=True)

    def update(done: int, total_now: int) -> None:
        if total_now != bar.total:
            bar.total = total_now
        if done > bar.n:
            bar.update(done - bar.n)

    return update, bar.close


@click.command()
@FORMAT_OPTION
@_QUIET
@click.option("-p", "--progress", is_flag=True, help="Show a progress bar on stderr.")
@click.argument("file", type=click.Path(dir_okay=False))
def hydrate(fmt: str, quiet: bool, progress: bool, file: str) -> None:
    """Copy every cluster still read from the backing file into FILE's raw image file.

    Afterwards the raw image file is a standalone disk (the all_allocated feature is set).
    """
    with open_named(file, "r+") as img, about(file):
        callback: Callable[[int, int], None] | None = None
        close: Callable[[], None] = lambda: None  # noqa: E731
        if progress:
            callback, close = _tqdm_progress(int(img.virtual_size), "hydrating")
        try:
            img.hydrate(progress=callback)
        finally:
            close()
        img.flush()
        image_file = image_info(img).image_file
    if not quiet:
        click.echo(f"hydrated {printable(file)}: the raw file {printable(image_file)} now holds "
                   "the whole disk")


@click.command()
@FORMAT_OPTION
@_QUIET
@click.argument("file", type=click.Path(dir_okay=False))
def upgrade(fmt: str, quiet: bool, file: str) -> None:
    """Convert a version 1 (2012 patch) image to version 2, in place and atomically."""
    from addcow_ref import upgrade_v1

    with about(file), open(file, "rb") as f:
        version = read_version(f.read(12))
    if version == 2:
        if not quiet:
            click.echo(f"{printable(file)} is already version 2; nothing to do")
        return
    with about(file):
        upgrade_v1(file)
    if not quiet:
        click.echo(f"upgraded {printable(file)} from version 1 to version 2")
