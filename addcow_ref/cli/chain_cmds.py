"""``addcow commit`` and ``addcow rebase``: the commands that move data between an image and its
backing file, or change which backing file it has.

The operations and their crash-safe orders are in :mod:`addcow_ref.ops.commit` and
:mod:`addcow_ref.ops.rebase`; this module reads qemu-img's options and prints one line.
"""

from __future__ import annotations

import dataclasses
import json

import click

from addcow_ref.cli.convert_cmd import progress_bar
from addcow_ref.cli.errors import about
from addcow_ref.cli.inspect_cmds import FORMAT_OPTION
from addcow_ref.cli.params import OUTPUT
from addcow_ref.format.constants import BACKING_FORMATS
from addcow_ref.format.text import printable

__all__ = ["commit", "rebase"]

_PROGRESS = click.option("-p", "--progress", is_flag=True, help="Show a progress bar on stderr.")
_QUIET = click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")


@click.command()
@FORMAT_OPTION
@click.option("-d", "keep", is_flag=True,
              help="Keep the overlay as it is (do not empty it after the commit).")
@_PROGRESS
@_QUIET
@OUTPUT
@click.argument("file", type=click.Path(dir_okay=False))
def commit(fmt: str, keep: bool, progress: bool, quiet: bool, output: str, file: str) -> None:
    """Write every allocated cluster of FILE into its backing file (raw or add-cow).

    Then, unless -d, empty FILE: its bits are cleared and its raw image file's blocks freed,
    so every cluster reads from the backing file again. Crash-safe order: all data is written
    into the backing file and made durable (fsync) before any bit of FILE is cleared; the bits
    are cleared by atomically replacing FILE's add-cow file; the image file is punched last.

    \b
    Examples:
      addcow commit disk.add-cow        # base gets the changes, disk is empty again
      addcow commit -d -p disk.add-cow  # keep disk's clusters, show progress
    """
    from addcow_ref.ops.commit import commit as commit_image

    callback, close = progress_bar(progress, "committing")
    try:
        with about(file):
            result = commit_image(file, keep=keep, progress=callback)
    finally:
        close()
    if output == "json":
        click.echo(json.dumps(dataclasses.asdict(result), indent=4))
    elif not quiet:
        tail = "; the overlay was kept" if keep else "; the overlay is now empty"
        click.echo(f"Image committed: {result.clusters} clusters ({result.bytes} bytes) into "
                   f"{printable(str(result.backing))}{tail}")


@click.command()
@FORMAT_OPTION
@click.option("-b", "backing", required=True, metavar="NEW",
              help="The new backing file, stored as given (relative to FILE's directory); "
                   "'' drops the backing file.")
@click.option("-F", "backing_format", type=click.Choice(sorted(BACKING_FORMATS)),
              help="Format of NEW; required unless -b ''.")
@click.option("-u", "unsafe", is_flag=True,
              help="Unsafe: change only the name (NEW must hold the same data as the old "
                   "backing file, e.g. after a move).")
@_PROGRESS
@_QUIET
@OUTPUT
@click.argument("file", type=click.Path(dir_okay=False))
def rebase(fmt: str, backing: str, backing_format: str | None, unsafe: bool, progress: bool,
           quiet: bool, output: str, file: str) -> None:
    """Make NEW the backing file of FILE, keeping FILE's guest disk unchanged.

    Clusters where the old and the new backing file differ are first copied into FILE from
    the old chain, then the name is changed atomically. With -b '' FILE is hydrated and
    stands alone.

    \b
    Examples:
      addcow rebase -b new-base.raw -F raw disk.add-cow
      addcow rebase -u -b /moved/base.raw -F raw disk.add-cow   # the base was moved
      addcow rebase -b '' disk.add-cow                          # drop the backing file
    """
    from addcow_ref.ops.rebase import rebase as rebase_image

    if backing and not backing_format:
        raise click.UsageError("a backing file needs its format: add -F raw or -F add-cow "
                               "(add-cow never guesses a backing file's format)")
    if not backing and backing_format:
        raise click.UsageError("-F given with -b '' (no backing file)")
    callback, close = progress_bar(progress, "rebasing")
    try:
        with about(file):
            result = rebase_image(file, backing, backing_format, unsafe=unsafe,
                                  progress=callback)
    finally:
        close()
    if output == "json":
        click.echo(json.dumps(dataclasses.asdict(result), indent=4))
    elif not quiet:
        if result.backing is None:
            what = "hydrated; no backing file" if result.hydrated else "no backing file"
        else:
            what = (f"backing file {printable(str(result.backing))} ({result.backing_format}), "
                    f"{result.copied_clusters} clusters copied from the old chain")
        click.echo(f"Image rebased: {printable(str(file))}: {what}")
