"""Export of an add-cow image as a thin qcow2 overlay (``addcow convert IMAGE -O qcow2 OUT``).

The qcow2 file is created by ``qemu-img create -b BACKING`` and only the image's allocated
clusters are written into it, through ``qemu-io`` (``write -s FILE`` for data, ``write -z`` for
an allocated cluster of zeros, which must still hide the backing file's bytes): the result holds
a few clusters for a few written clusters, where converting the served disk would copy the whole
guest. Without a backing file (``-B ''``, or an image that has none) the export is a standalone
qcow2 of every extent that holds data. qemu cannot read add-cow, so an image whose backing file
is add-cow needs ``-B`` naming a copy qemu reads.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator

from addcow_ref.engine.image import AddCowImage, open_image
from addcow_ref.format.constants import FORMAT_ADD_COW, FORMAT_RAW
from addcow_ref.format.errors import AddCowError
from addcow_ref.ops.qemu import file_name, run_tool

__all__ = ["EXPORT_BATCH", "EXPORT_PIECE", "ExportResult", "export_qcow2"]

#: Largest single qemu-io write.
EXPORT_PIECE = 4 << 20
#: Bytes of data staged in temporary files per qemu-io run.
EXPORT_BATCH = 64 << 20

#: qcow2's cluster size range (qemu's ``cluster_size`` option), which add-cow's equals.
_QCOW2_CLUSTER_BITS = range(9, 22)


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What an export wrote: ``data_bytes`` in ``data_writes`` writes, plus ``zero_bytes``
    written as qcow2 zero clusters; ``backing`` is the backing name stored in the qcow2."""

    path: str
    backing: str | None
    data_writes: int
    data_bytes: int
    zero_bytes: int


def _default_backing(img: AddCowImage, out: str) -> tuple[str, str] | None:
    from addcow_ref.engine.backing import resolve_name

    d = img.descriptor
    if d.backing_name is None:
        return None
    fmt = d.backing_format or FORMAT_RAW
    path = resolve_name(img.path, d.backing_name)
    if fmt == FORMAT_ADD_COW:
        raise AddCowError(f"the backing file {path} is add-cow, which qemu cannot read: pass "
                          "-B with a raw copy of it and -F raw, or -B '' for a standalone qcow2",
                          file=img.path)
    # stored in the qcow2 as given: ./ keeps a hostile "proto:..." name a file (file_name)
    return file_name(os.path.relpath(path, os.path.dirname(os.path.abspath(out)))), fmt


def _pieces(img: AddCowImage, backed: bool) -> Iterator[tuple[int, int]]:
    """The ranges to write: allocated ones over a backing file, data ones standalone."""
    for e in img.iter_map():
        if e.allocated if backed else e.data:
            for pos in range(e.start, e.start + e.length, EXPORT_PIECE):
                yield pos, min(EXPORT_PIECE, e.start + e.length - pos)


def export_qcow2(image: str, out: str, *, backing: str | None = None,
                 backing_format: str | None = None,
                 progress: Callable[[int, int], None] | None = None) -> ExportResult:
    """Write the guest disk of the add-cow ``image`` to the new qcow2 overlay ``out``.

    ``backing`` None uses the image's own (raw) backing file, named relative to ``out``; ``""``
    makes a standalone qcow2; any other name is stored as given, read as ``backing_format``.
    """
    if os.path.exists(out):
        raise AddCowError("destination already exists; remove it first", file=out)
    with open_image(image) as img:
        chosen: tuple[str, str] | None
        if backing is None:
            chosen = _default_backing(img, out)
        elif backing == "":
            chosen = None
        else:
            if not backing_format:
                raise AddCowError("-B needs its format (-F); formats are never probed",
                                  file=out)
            chosen = (backing, backing_format)
        create = ["qemu-img", "create", "-q", "-f", "qcow2"]
        if img.cluster_bits in _QCOW2_CLUSTER_BITS:
            create += ["-o", f"cluster_size={img.cluster_size}"]
        if chosen is not None:
            create += ["-b", chosen[0], "-F", chosen[1]]
        run_tool([*create, file_name(out), str(int(img.virtual_size))], file=out)
        try:
            result = _write_pieces(img, out, chosen is not None, progress)
        except BaseException:
            os.unlink(out)
            raise
    return dataclasses.replace(result, backing=chosen[0] if chosen else None)


def _write_pieces(img: AddCowImage, out: str, backed: bool,
                  progress: Callable[[int, int], None] | None) -> ExportResult:
    pieces = list(_pieces(img, backed))
    total = sum(n for _, n in pieces)
    done = writes = data_bytes = zero_bytes = 0
    tmpdir = tempfile.mkdtemp(prefix="addcow-export-")
    try:
        commands: list[str] = []
        staged = 0
        for pos, n in pieces:
            data = img.read(pos, n)
            if data.count(0) == n:
                if backed:  # zeros must still hide the backing file's bytes
                    commands.append(f"write -q -z {pos} {n}")
                    zero_bytes += n
            else:
                piece = os.path.join(tmpdir, f"{len(commands)}.bin")
                with open(piece, "wb") as f:
                    f.write(data)
                commands.append(f"write -q -s {piece} {pos} {n}")
                staged += n
                writes += 1
                data_bytes += n
            done += n
            if staged >= EXPORT_BATCH:
                _run_qemu_io(out, commands)
                commands, staged = [], 0
                _clear(tmpdir)
            if progress:
                progress(done, total)
        if commands:
            _run_qemu_io(out, commands)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return ExportResult(path=out, backing=None, data_writes=writes, data_bytes=data_bytes,
                        zero_bytes=zero_bytes)


def _clear(directory: str) -> None:
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))


def _run_qemu_io(out: str, commands: list[str]) -> None:
    argv = ["qemu-io", "-f", "qcow2"]
    for c in commands:
        argv += ["-c", c]
    stdout = run_tool([*argv, file_name(out)], file=out)
    # qemu-io reports a failed command on stdout and may still exit 0.
    bad = [line for line in stdout.splitlines() if "failed" in line.lower()]
    if bad:
        raise AddCowError(f"qemu-io: {bad[0]}", file=out)
