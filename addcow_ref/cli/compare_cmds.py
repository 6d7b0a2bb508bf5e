"""``addcow compare`` and ``addcow measure``: qemu-img's two reporting verbs over add-cow.

``compare`` keeps ``qemu-img compare``'s exit statuses (0 identical, 1 different, 2 an error)
and its messages, so a script that tests one tests the other; ``measure`` prints qemu-img's two
lines (``required size``, ``fully allocated size``) and then add-cow's two files.
"""

from __future__ import annotations

import dataclasses
import json

import click

from addcow_ref.cli.convert_cmd import progress_bar
from addcow_ref.cli.create_cmd import _cluster_bits_from, _parse_create_options
from addcow_ref.cli.errors import about, handle_error
from addcow_ref.cli.params import OUTPUT, SIZE
from addcow_ref.format.constants import DEFAULT_CLUSTER_BITS
from addcow_ref.format.errors import AddCowError

__all__ = ["EX_COMPARE_ERROR", "compare", "measure"]

#: ``qemu-img compare``'s status for an image that cannot be opened or read (1 means
#: "different" there, so errors cannot use the usual 1).
EX_COMPARE_ERROR = 2


@click.command()
@click.option("-f", "fmt_a", metavar="FMT", help="Format of A (add-cow, raw, qcow2, ...).")
@click.option("-F", "fmt_b", metavar="FMT", help="Format of B.")
@click.option("-s", "--strict", is_flag=True,
              help="Strict: images of different sizes differ (default: the extra part must "
                   "read as zeros).")
@click.option("-p", "--progress", is_flag=True, help="Show a progress bar on stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; the exit status tells.")
@OUTPUT
@click.argument("a")
@click.argument("b")
@click.pass_context
def compare(ctx: click.Context, fmt_a: str | None, fmt_b: str | None, strict: bool,
            progress: bool, quiet: bool, output: str, a: str, b: str) -> None:
    """Compare the guest disks of A and B, images of any format qemu-img reads.

    Exit status as qemu-img compare: 0 identical, 1 different, 2 an error. The first
    difference is named as qemu-img names it, by the start of its 512-byte sector; JSON
    output also gives the exact byte.

    \b
    Examples:
      addcow compare disk.add-cow disk.qcow2
      addcow compare -f add-cow -F raw disk.add-cow flat.raw && echo same
    """
    from addcow_ref.ops.compare import compare_images

    callback, close = progress_bar(progress, "comparing")
    try:
        with about(a):
            result = compare_images(a, b, fmt_a=fmt_a, fmt_b=fmt_b, strict=strict,
                                    progress=callback)
    except (AddCowError, OSError) as e:
        handle_error(e)  # the one line every addcow error is
        ctx.exit(EX_COMPARE_ERROR)
    finally:
        close()
    if output == "json":
        click.echo(json.dumps(dataclasses.asdict(result), indent=4))
    elif not quiet:
        if result.size_mismatch:
            click.echo("Strict mode: Image size mismatch!" if strict
                       else "Warning: Image size mismatch!")
        if result.offset is not None:
            click.echo(f"Content mismatch at offset {result.offset}!")
        elif result.identical:
            click.echo("Images are identical.")
    ctx.exit(0 if result.identical else 1)


@click.command()
@click.option("--size", "size", type=SIZE, default=None, help="Virtual size of a new disk.")
@click.option("-f", "src_format", metavar="FMT", help="Format of SRC.")
@click.option("-O", "out_format", type=click.Choice(["add-cow"]), default="add-cow",
              help="Output format; accepted for qemu-img habits, add-cow is the only one.")
@click.option("-o", "options", multiple=True, metavar="OPT=VAL[,...]",
              help="cluster_bits=N or cluster_size=SIZE, as for create.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing (the exit status tells).")
@OUTPUT
@click.argument("src", required=False)
def measure(size: int | None, src_format: str | None, out_format: str,
            options: tuple[str, ...], quiet: bool, output: str, src: str | None) -> None:
    """Show the space an add-cow disk of --size bytes, or holding SRC, needs.

    "required" counts the add-cow file plus the clusters that hold data (the raw image file is
    sparse); "fully allocated" the add-cow file plus the whole virtual size.

    \b
    Examples:
      addcow measure --size 10G
      addcow measure --output=json -f qcow2 vm.qcow2
    """
    from addcow_ref.ops.measure import measure as measure_disk

    if (size is None) == (src is None):
        raise click.UsageError("give exactly one of --size SIZE and SRC")
    bits = _cluster_bits_from(_parse_create_options(options)) or DEFAULT_CLUSTER_BITS
    with about(src or "<new image>"):
        m = measure_disk(size=size, source=src, source_format_name=src_format,
                         cluster_bits=bits)
    if output == "json":
        click.echo(json.dumps({"required": m.required, "fully-allocated": m.fully_allocated,
                               "add-cow-file": m.add_cow_file,
                               "image-file-required": m.image_file_required,
                               "image-file-fully-allocated": m.image_file_fully_allocated,
                               "cluster-size": m.cluster_size}, indent=4))
    elif not quiet:
        click.echo(f"required size: {m.required}")
        click.echo(f"fully allocated size: {m.fully_allocated}")
        click.echo(f"add-cow file size: {m.add_cow_file}")
        click.echo(f"image file required size: {m.image_file_required}")
        click.echo(f"image file fully allocated size: {m.image_file_fully_allocated}")
