"""``addcow info`` and ``addcow map``: the read-only views of an image, in qemu-img's human and
JSON forms.

The records and their rendering live below the tools (:mod:`addcow_ref.ops.info`,
:mod:`addcow_ref.ops.chain`, :mod:`addcow_ref.ops.mapping`), shared with anything else that
prints or compares them; this module only opens the image and picks the form. What only
``map`` or ``--backing-chain`` uses is imported by them: ``addcow info`` on one image is a
start-up cost, and ``tests/test_import_set.py`` holds it to what it uses.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from addcow_ref.cli.errors import about, fail, open_named
from addcow_ref.cli.humanize import format_size
from addcow_ref.cli.params import CONFINE, FORCE_SHARE, OUTPUT, SIZE
from addcow_ref.format.constants import FORMAT_ADD_COW
from addcow_ref.ops.info import ImageInfo, image_info, render_info, render_info_json

if TYPE_CHECKING:
    from addcow_ref.ops.chain import ChainLevel

__all__ = ["FORMAT_OPTION", "info", "map_"]

#: ``-f add-cow``, accepted by every image command for qemu-img habits.
FORMAT_OPTION = click.option(
    "-f", "fmt", type=click.Choice([FORMAT_ADD_COW]), default=FORMAT_ADD_COW,
    help="Image format; accepted for qemu-img habits, add-cow is the only one.")


@click.command()
@FORMAT_OPTION
@click.option("--backing-chain", "whole_chain", is_flag=True,
              help="Show every level of the backing chain, top first (JSON: a list).")
@OUTPUT
@FORCE_SHARE
@CONFINE
@click.argument("file", type=click.Path(dir_okay=False))
def info(fmt: str, whole_chain: bool, output: str, force_share: bool, confine: str | None,
         file: str) -> None:
    """Show the header and allocation summary of FILE.

    \b
    Examples:
      addcow info disk.add-cow
      addcow info --backing-chain --output=json top.add-cow
    """
    if whole_chain:
        from addcow_ref.ops.chain import backing_chain, render_chain, render_chain_json
    with open_named(file, force_share=force_share, confine=confine) as img, about(file):
        if whole_chain:
            levels = backing_chain(img)
        else:
            record = image_info(img)
    if whole_chain:
        click.echo(render_chain_json(levels) if output == "json"
                   else render_chain(levels, size_text=format_size))
    elif output == "json":
        click.echo(render_info_json(record))
    else:
        click.echo(render_info(record, size_text=format_size))


def _chain_names(levels: list[ChainLevel]) -> list[str]:
    """The file of each depth of the chain the human map names: the raw image file, the
    backing file (as stored), then each deeper backing file by its path."""
    top = levels[0]
    assert isinstance(top, ImageInfo)
    names = [top.image_file]
    if top.backing_file:
        names.append(top.backing_file)
        names += [lv.filename for lv in levels[2:]]
    return names


@click.command(name="map")
@FORMAT_OPTION
@click.option("--start-offset", type=SIZE, default=0, show_default=True,
              help="First guest byte to map.")
@click.option("--max-length", type=SIZE, default=None,
              help="Map at most this many bytes (default: up to the end of the disk).")
@OUTPUT
@FORCE_SHARE
@CONFINE
@click.argument("file", type=click.Path(dir_okay=False))
def map_(fmt: str, start_offset: int, max_length: int | None, output: str, force_share: bool,
         confine: str | None, file: str) -> None:
    """Show where each byte range of FILE's guest disk comes from.

    A range whose file holds a hole there (a punched cluster, a sparse backing file) reads as
    zeros and is reported so (JSON: "zero": true, "data": false), as qemu-img map does.

    \b
    Examples:
      addcow map disk.add-cow
      addcow map --output=json --start-offset 1M --max-length 64K disk.add-cow
    """
    from addcow_ref.format.text import printable
    from addcow_ref.ops.chain import backing_chain
    from addcow_ref.ops.holes import LayerFiles, split_extents
    from addcow_ref.ops.mapping import iter_map_entries, iter_render_map, write_image_map_json

    with open_named(file, force_share=force_share, confine=confine) as img, about(file):
        size = int(img.virtual_size)
        if start_offset > size:
            raise fail(file, f"--start-offset is past the end of the disk ({size} bytes)",
                       offset=start_offset)
        length = size - start_offset if max_length is None else min(max_length,
                                                                      size - start_offset)
        with LayerFiles(img) as files:
            if output == "json":
                write_image_map_json(img, files.files, sys.stdout, start_offset, length)
            else:
                entries = iter_map_entries(split_extents(img.iter_map(start_offset, length),
                                                         files.files))
                names = [printable(n) for n in _chain_names(backing_chain(img))]
                for line in iter_render_map(entries, names):
                    click.echo(line)
