"""``addcow create``: a new image, with qemu-img's ``-b``/``-F``/``-o`` conventions.

``-o`` takes qemu-img's comma-separated ``key=value`` format options (``-o help`` lists them);
the command-line options win over their ``-o`` twins. A backing file always needs its format
(``-F``): add-cow never probes one, but a ``-F`` that the backing file's first bytes contradict,
or an image file name that would hide existing data, is refused unless ``--force``
(:func:`addcow_ref.ops.create.create_problems`). The image is opened once made, so a backing
chain that loops back to it is refused and leaves no file behind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click

from addcow_ref.cli.errors import UserError, about, open_named
from addcow_ref.cli.params import SIZE
from addcow_ref.format.constants import (
    BACKING_FORMATS,
    FORMAT_ADD_COW,
    MAX_CLUSTER_BITS,
    MIN_CLUSTER_BITS,
)
from addcow_ref.format.text import printable
from addcow_ref.ops.info import image_info

__all__ = ["create", "default_image_name"]

_CREATE_OPTIONS = {
    "cluster_bits": f"log2 of the cluster size, {MIN_CLUSTER_BITS}..{MAX_CLUSTER_BITS} "
    "(default 16)",
    "cluster_size": "the cluster size, a power of two (alternative to cluster_bits)",
    "bitmap_offset": "where the bitmap starts, a multiple of 4096 (larger leaves room for names)",
    "image_file": "same as --image-file",
    "backing_file": "same as -b",
    "backing_fmt": "same as -F",
}


def _parse_create_options(specs: Sequence[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    for spec in specs:
        for item in spec.split(","):
            if not item:
                continue
            key, sep, value = item.partition("=")
            key = key.strip()
            if key == "help" and not sep:
                opts["help"] = ""
                continue
            if key not in _CREATE_OPTIONS:
                raise click.BadParameter(
                    f"unknown option {key!r} (known: {', '.join(_CREATE_OPTIONS)}; -o help)",
                    param_hint="'-o'",
                )
            if not sep:
                raise click.BadParameter(f"option {key!r} needs a value", param_hint="'-o'")
            opts[key] = value
    return opts


def _cluster_bits_from(opts: dict[str, str]) -> int | None:
    bits: int | None = None
    if "cluster_bits" in opts:
        try:
            bits = int(opts["cluster_bits"], 0)
        except ValueError:
            raise click.BadParameter(
                f"cluster_bits={opts['cluster_bits']!r} is not an integer", param_hint="'-o'"
            ) from None
    if "cluster_size" in opts:
        size = SIZE.convert(opts["cluster_size"], None, None)
        if size <= 0 or size & (size - 1):
            raise click.BadParameter(
                f"cluster_size={opts['cluster_size']!r} is not a power of two", param_hint="'-o'"
            )
        if bits is not None and bits != size.bit_length() - 1:
            raise click.BadParameter(
                "cluster_bits and cluster_size disagree", param_hint="'-o'"
            )
        bits = size.bit_length() - 1
    return bits


def default_image_name(file: str) -> str:
    """The raw image file's name when ``--image-file`` is not given: ``disk.add-cow`` ->
    ``disk.raw`` next to it (a name relative to the add-cow file's directory, as stored)."""
    base = os.path.basename(file)
    for ext in (".add-cow", ".addcow"):
        if base.endswith(ext) and len(base) > len(ext):
            return base[: -len(ext)] + ".raw"
    return base + ".raw"


@click.command()
@click.option("-f", "fmt", type=click.Choice([FORMAT_ADD_COW]), default=FORMAT_ADD_COW,
              help="Image format; accepted for qemu-img habits, add-cow is the only one.")
@click.option("-b", "--backing", "backing_file", metavar="BACKING",
              help="Backing file name, stored as given (relative names resolve against "
                   "FILE's directory).")
@click.option("-F", "--backing-format", "backing_format",
              type=click.Choice(sorted(BACKING_FORMATS)),
              help="Format of the backing file; required with -b (add-cow never probes).")
@click.option("-o", "options", multiple=True, metavar="OPT=VAL[,...]",
              help="Format options, comma-separated: cluster_bits=N, cluster_size=SIZE, "
                   "bitmap_offset=SIZE, image_file=NAME, backing_file=NAME, backing_fmt=FMT "
                   "('-o help' explains them).")
@click.option("--image-file", "image_file", metavar="NAME",
              help="Name of the raw image file, stored as given (default: FILE with .raw "
                   "instead of .add-cow); created if missing.")
@click.option("--force", is_flag=True,
              help="Create even over a non-empty or symlinked --image-file (its data is "
                   "hidden), or with a -F that the backing file's magic contradicts.")
@click.argument("file", type=click.Path(dir_okay=False), required=False, metavar="FILE")
@click.argument("size", type=SIZE, required=False)
def create(
    fmt: str,
    backing_file: str | None,
    backing_format: str | None,
    options: tuple[str, ...],
    image_file: str | None,
    force: bool,
    file: str | None,
    size: int | None,
) -> None:
    """Create the add-cow image FILE of SIZE bytes (default: the backing file's size).

    '-o help' lists the format options and needs no FILE, as with qemu-img.
    """
    opts = _parse_create_options(options)
    if "help" in opts:
        for key, text in _CREATE_OPTIONS.items():
            click.echo(f"{key:<14} {text}")
        return
    if file is None:
        raise click.UsageError("Missing argument 'FILE'.")
    backing_file = backing_file or opts.get("backing_file")
    backing_format = backing_format or opts.get("backing_fmt")
    image_file = image_file or opts.get("image_file") or default_image_name(file)
    if backing_format is not None and backing_format not in BACKING_FORMATS:
        raise click.BadParameter(
            f"backing format {backing_format!r} is not one of {', '.join(sorted(BACKING_FORMATS))}",
            param_hint="'-F'",
        )
    if backing_file and not backing_format:
        raise click.UsageError(
            "a backing file needs its format: add -F raw or -F add-cow "
            "(add-cow never guesses a backing file's format)"
        )
    if backing_format and not backing_file:
        raise click.UsageError("-F given without a backing file (-b)")
    if size is None and not backing_file:
        raise click.UsageError("SIZE is required when there is no backing file")
    cluster_bits = _cluster_bits_from(opts)
    bitmap_offset = SIZE.convert(opts["bitmap_offset"], None, None) if "bitmap_offset" in opts \
        else None

    from addcow_ref.ops.create import create as create_image
    from addcow_ref.ops.create import create_problems

    if not force:
        with about(file):
            problems = create_problems(file, image_file=image_file, backing_file=backing_file,
                                       backing_format=backing_format)
        if problems:
            raise UserError(f"{printable(file)}: not created: {'; '.join(problems)}")
    kwargs: dict[str, Any] = {
        "size": size,
        "image_file": image_file,
        "backing_file": backing_file,
        "backing_format": backing_format,
        "bitmap_offset": bitmap_offset,
        "verify": True,
    }
    if cluster_bits is not None:
        kwargs["cluster_bits"] = cluster_bits
    with about(file):
        create_image(file, **kwargs)
    with open_named(file) as img, about(file):
        info = image_info(img)
    parts = [f"Formatting '{printable(file)}', fmt={FORMAT_ADD_COW}", f"size={info.virtual_size}"]
    if info.backing_file:
        parts += [f"backing_file={printable(info.backing_file)}",
                  f"backing_fmt={info.backing_format}"]
    parts += [f"image_file={printable(info.image_file)}", f"cluster_bits={info.cluster_bits}"]
    click.echo(" ".join(parts))
