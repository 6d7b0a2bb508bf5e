"""``addcow convert``: thin import of any image qemu reads, and thin export to qcow2.

The work is in :mod:`addcow_ref.ops.convert` (import) and :mod:`addcow_ref.ops.export`
(export); this module reads the options the way ``qemu-img convert`` spells them and prints
one summary line (or JSON).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import click

from addcow_ref.cli.create_cmd import default_image_name
from addcow_ref.cli.errors import about
from addcow_ref.cli.image_cmds import _tqdm_progress
from addcow_ref.cli.params import OUTPUT
from addcow_ref.format.constants import BACKING_FORMATS, DEFAULT_CLUSTER_BITS, FORMAT_ADD_COW
from addcow_ref.format.text import printable

__all__ = ["convert", "progress_bar"]


def progress_bar(enabled: bool, desc: str) -> tuple[Callable[[int, int], None] | None,
                                                    Callable[[], None]]:
    """A tqdm progress callback on stderr (and its closer) when ``enabled``, else nothing; the
    total is learnt from the first call."""
    if not enabled:
        return None, lambda: None
    return _tqdm_progress(0, desc)


def _echo(quiet: bool, output: str, record: object, line: str) -> None:
    if output == "json":
        assert dataclasses.is_dataclass(record)
        assert not isinstance(record, type)
        click.echo(json.dumps(dataclasses.asdict(record), indent=4))
    elif not quiet:
        click.echo(line)


@click.command()
@click.option("-f", "src_format", metavar="FMT",
              help="Format of SRC (qcow2, vmdk, raw, add-cow, ...); without it add-cow is "
                   "recognised by its magic and qemu-img probes the rest.")
@click.option("-O", "out_format", type=click.Choice([FORMAT_ADD_COW, "qcow2"]),
              default=FORMAT_ADD_COW, show_default=True, help="Format of DST.")
@click.option("-b", "-B", "--backing", "backing", metavar="BASE",
              help="Backing file of DST, stored as given. For add-cow output only the ranges "
                   "that differ from BASE become allocated; for qcow2 output the default is "
                   "SRC's own backing file, and '' makes a standalone qcow2.")
@click.option("-F", "--backing-format", "backing_format", metavar="FMT",
              help="Format of BASE (raw or add-cow for add-cow output; any qemu format for "
                   "qcow2 output); required with -b.")
@click.option("--image-file", metavar="NAME",
              help="Raw image file of an add-cow DST (default: DST with .raw).")
@click.option("-p", "--progress", is_flag=True, help="Show a progress bar on stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@OUTPUT
@click.argument("src")
@click.argument("dst", type=click.Path(dir_okay=False))
def convert(src_format: str | None, out_format: str, backing: str | None,
            backing_format: str | None, image_file: str | None, progress: bool, quiet: bool,
            output: str, src: str, dst: str) -> None:
    """Convert SRC (any image qemu-img reads, or an NBD URI) to DST, thin.

    To add-cow (the default): DST becomes an overlay of BASE in which only the clusters that
    differ from BASE, or that SRC holds above its own backing file, are allocated. To qcow2
    (-O qcow2, SRC an add-cow image): a qcow2 overlay holding only SRC's allocated clusters.

    \b
    Examples:
      addcow convert -f qcow2 -b base.raw -F raw vm.qcow2 vm.add-cow
      addcow convert -f raw -b base.raw -F raw nbd+unix:///?socket=/tmp/s vm.add-cow
      addcow convert -O qcow2 vm.add-cow vm.qcow2          # backed by vm's base.raw
      addcow convert -O qcow2 -B '' vm.add-cow flat.qcow2  # standalone
    """
    callback, close = progress_bar(progress, "converting")
    try:
        if out_format == FORMAT_ADD_COW:
            _import(src, dst, src_format, backing, backing_format, image_file, callback,
                    quiet, output)
        else:
            _export(src, dst, src_format, backing, backing_format, callback, quiet, output)
    finally:
        close()


def _import(src: str, dst: str, src_format: str | None, backing: str | None,
            backing_format: str | None, image_file: str | None,
            callback: Callable[[int, int], None] | None, quiet: bool, output: str) -> None:
    from addcow_ref.ops.convert import import_image

    if backing and backing_format not in BACKING_FORMATS:
        raise click.UsageError("an add-cow backing file needs -F raw or -F add-cow "
                               "(add-cow never guesses a backing file's format)")
    if backing_format and not backing:
        raise click.UsageError("-F given without a backing file (-b)")
    with about(dst):
        result = import_image(src, dst, src_format=src_format, backing_file=backing or None,
                              backing_format=backing_format if backing else None,
                              image_file=image_file or default_image_name(dst),
                              cluster_bits=DEFAULT_CLUSTER_BITS, progress=callback)
    share = 100 * result.allocated_clusters / result.cluster_count if result.cluster_count else 0
    _echo(quiet, output, result,
          f"converted {printable(src)} to {printable(dst)}: {result.allocated_clusters} of "
          f"{result.cluster_count} clusters allocated ({share:.1f}%)")


def _export(src: str, dst: str, src_format: str | None, backing: str | None,
            backing_format: str | None, callback: Callable[[int, int], None] | None,
            quiet: bool, output: str) -> None:
    from addcow_ref.ops.export import export_qcow2

    if src_format not in (None, FORMAT_ADD_COW):
        raise click.UsageError("-O qcow2 exports an add-cow image: SRC must be add-cow (-f "
                               "add-cow); qemu-img convert handles the other formats")
    if backing and not backing_format:
        raise click.UsageError("-B needs the format of the backing file (-F)")
    with about(src):
        result = export_qcow2(src, dst, backing=backing, backing_format=backing_format,
                              progress=callback)
    where = f"over {printable(str(result.backing))}" if result.backing else "standalone"
    _echo(quiet, output, result,
          f"exported {printable(src)} to {printable(dst)} ({where}): {result.data_bytes} bytes "
          f"of data in {result.data_writes} writes, {result.zero_bytes} bytes of zeros")
