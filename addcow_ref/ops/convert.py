"""Thin import of any image qemu reads into a new add-cow overlay (``addcow convert SRC DST -b
BASE -F FMT``).

A cluster of the new overlay is allocated only where the source differs from BASE, or where the
source itself reports the range allocated above its own backing file (``qemu-img map``
depth 0): importing a qcow2 overlay of BASE gives an add-cow overlay of BASE holding the same
clusters, and importing a whole raw disk or an NBD export gives only the clusters that changed,
not every cluster. The source is read through :mod:`addcow_ref.ops.guest` (qemu-img for every
format but add-cow and raw), the comparison with BASE through the new overlay's own reads,
which answer BASE's bytes until a cluster is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable

from addcow_ref.engine.backing import resolve_name
from addcow_ref.engine.image import AddCowImage, open_image
from addcow_ref.format.constants import DEFAULT_CLUSTER_BITS, FORMAT_ADD_COW, SECTOR_SIZE
from addcow_ref.format.errors import AddCowError
from addcow_ref.ops.create import create
from addcow_ref.ops.guest import GuestSource, open_guest, source_format
from addcow_ref.ops.qemu import qemu_info, qemu_map

__all__ = ["CONVERT_CHUNK", "ImportResult", "Progress", "import_image"]

#: Bytes compared (and held) at a time.
CONVERT_CHUNK = 4 << 20

#: ``(bytes done, total)``.
Progress = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """What an import wrote: ``allocated_clusters`` of ``cluster_count``, of which
    ``forced_clusters`` came from the source's own map (depth 0) rather than a difference."""

    path: str
    virtual_size: int
    allocated_clusters: int
    cluster_count: int
    forced_clusters: int


def _depth0_clusters(src: str, fmt: str | None, cluster_bits: int,
                     count: int) -> bytearray | None:
    """One flag per cluster that the source holds above its own backing file (depth 0 of its
    map), or None when the source has no backing file (then its map says nothing about BASE)."""
    if fmt == FORMAT_ADD_COW:
        with open_image(src) as img:
            if img.descriptor.backing_name is None:
                return None
            extents = [(e.start, e.length) for e in img.iter_map() if e.allocated]
    else:
        if qemu_info(src, fmt).backing_filename is None:
            return None
        extents = [(e.start, e.length) for e in qemu_map(src, fmt)
                   if e.depth == 0 and e.present]
    flags = bytearray(count)
    for start, length in extents:
        first, last = start >> cluster_bits, (start + length - 1) >> cluster_bits
        flags[first:min(last + 1, count)] = b"\1" * (min(last + 1, count) - first)
    return flags


def _copy_differences(src: GuestSource, img: AddCowImage, forced: bytearray | None,
                      progress: Progress | None) -> None:
    size, cb = int(img.virtual_size), img.cluster_bits
    csize = 1 << cb
    step = max(csize, CONVERT_CHUNK // csize * csize)
    for pos in range(0, size, step):
        n = min(step, size - pos)
        new, old = src.read(pos, n), img.read(pos, n)
        first = pos >> cb
        hits = forced is not None and any(forced[first:first + -(-n // csize)])
        if new != old or hits:
            run_start: int | None = None
            for off in range(0, n + csize, csize):
                differs = off < n and (
                    new[off:off + csize] != old[off:off + csize]
                    or (forced is not None and bool(forced[first + off // csize])))
                if differs and run_start is None:
                    run_start = off
                elif not differs and run_start is not None:
                    end = min(off, n)
                    img.write(pos + run_start, new[run_start:end])
                    run_start = None
        if progress:
            progress(pos + n, size)


def import_image(src: str, dst: str, *, src_format: str | None, backing_file: str | None,
                 backing_format: str | None, image_file: str,
                 cluster_bits: int = DEFAULT_CLUSTER_BITS,
                 progress: Progress | None = None) -> ImportResult:
    """Create the add-cow overlay ``dst`` of ``backing_file`` holding the guest disk of ``src``
    (see the module docstring); ``image_file`` is the new raw image file's name. Without a
    backing file the new image holds every cluster of ``src`` that is not all zeros."""
    if os.path.exists(dst):
        raise AddCowError("destination already exists; remove it first", file=dst)
    fmt = source_format(src, src_format)
    raw_existed = os.path.exists(resolve_name(dst, image_file))
    with open_guest(src, fmt) as guest:
        size = guest.size
        if size % SECTOR_SIZE:
            raise AddCowError(f"source is {size} bytes, not a multiple of {SECTOR_SIZE}",
                              file=src)
        create(dst, size=size, image_file=image_file, backing_file=backing_file,
               backing_format=backing_format, cluster_bits=cluster_bits)
        try:
            with open_image(dst, "r+") as img:
                count = int(img.descriptor.cluster_count)
                forced = _depth0_clusters(src, fmt, cluster_bits, count)
                if progress:
                    progress(0, size)
                _copy_differences(guest, img, forced, progress)
                img.flush()
                allocated = img.allocated_clusters()
        except BaseException:
            _remove_new(dst, None if raw_existed else image_file)
            raise
    return ImportResult(path=dst, virtual_size=size, allocated_clusters=allocated,
                        cluster_count=count,
                        forced_clusters=0 if forced is None else forced.count(1))


def _remove_new(dst: str, image_file: str | None) -> None:
    """A failed import leaves no half-filled overlay behind (and a raw file it created)."""
    for path in ([resolve_name(dst, image_file)] if image_file else []) + [dst]:
        with contextlib.suppress(OSError):
            os.unlink(path)
