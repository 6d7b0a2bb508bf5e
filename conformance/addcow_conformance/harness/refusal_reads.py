"""The reads the harness makes of an image that must be refused.

An invalid vector's manifest entry says only that the image must be refused (``expect.refusal``):
it gives no disk size, no map and no probes, since a conforming reader never gets that far. But
"refuse the image" (READ-DUTY) means every call on it, and an implementation may check the
image only in the calls that need the whole header (``info``, ``map``) and answer a ``read``
from the bitmap and the backing file without those checks, or check the backing file only when
a read reaches it. So the refusal plan also reads, and it reads where such an implementation is
most likely to answer: a range whose bitmap bit is 0, which a reader serves from the backing file
or as zeros.

The range comes from the vector's own bytes, decoded here as far as they go (the image is
invalid, so any field may be nonsense; nothing is validated, and the judgement never depends on
the reference implementation):

* version 2: ``virtual_size``, ``cluster_bits`` and ``bitmap_offset`` from the header, then the
  first cluster whose bit is 0 (a bitmap byte past the end of a short file counts as 0, as
  nothing there says the cluster is allocated);
* version 1: the disk is the image file's length rounded down to 512, the clusters are 64 KiB
  and the bitmap starts at byte 2560 (spec/legacy.rst); the image file is found by the name in
  the header, in the image's directory.

Where that gives no unallocated cluster (every bit is 1) the plan reads the first and the last
byte of the disk instead; where it gives no disk size at all (no add-cow magic, an unknown
version, a v1 image file that is missing) it reads the first byte only, since offset 0 is the one
offset inside every non-empty disk. A disk of size 0 gets no read: no range lies inside it, and a
read past the end is refused for READ-RANGE, which would say nothing about the image. Every range
lies inside the disk the header declares, so a refusal of it is for the image, not the range.
"""

from __future__ import annotations

import os
from pathlib import Path

from addcow_conformance.records import ByteRange
from addcow_ref.format.bitmap import find_bit
from addcow_ref.format.constants import (
    HEADER_LENGTH_V1,
    HEADER_LENGTH_V2,
    MAGIC,
    SECTOR_SIZE,
    V1_CLUSTER_BITS,
)
from addcow_ref.format.fieldtable import HEADER_V1, HEADER_V2
from addcow_ref.format.layout import field_info

__all__ = ["MAX_READ", "SCAN_LIMIT", "refusal_reads"]

#: At most this many bytes per read: enough to reach the backing file, small enough to be quick.
MAX_READ = 512
#: Bitmap bytes scanned for a 0 bit before giving up (then the first and last byte are read).
SCAN_LIMIT = 1 << 20
#: The largest ``cluster_bits`` that still gives a cluster offset (2^63 is past every disk).
_MAX_SHIFT = 63


def _int(header: bytes, name: str) -> int:
    """An integer field of the version 2 header (magic and version sit at the same offsets in
    version 1)."""
    info = field_info(HEADER_V2, name)
    return int.from_bytes(header[info.offset:info.end], "big")


def _first_zero_bit(path: Path, bitmap_offset: int, clusters: int) -> int | None:
    """The first cluster below ``clusters`` whose bit is 0 in the file (bytes past its end count
    as 0), or None when the first ``SCAN_LIMIT`` bytes hold no 0 bit for a cluster."""
    need = min((clusters + 7) // 8, SCAN_LIMIT)
    with path.open("rb") as f:
        f.seek(bitmap_offset)
        data = f.read(need).ljust(need, b"\0")
    nbits = min(clusters, need * 8)
    cluster = find_bit(data, 0, nbits, False)
    return cluster if cluster < nbits else None


def _reads(path: Path, size: int, cluster_bits: int, bitmap_offset: int) -> list[ByteRange]:
    if size <= 0:
        return []
    if cluster_bits > _MAX_SHIFT:
        # No cluster but the first exists; its bit decides nothing we could find.
        return _ends(size)
    clusters = -(-size >> cluster_bits)
    cluster = _first_zero_bit(path, bitmap_offset, clusters)
    if cluster is None:
        return _ends(size)
    start = cluster << cluster_bits
    return [{"offset": start, "length": min(MAX_READ, 1 << cluster_bits, size - start)}]


def _ends(size: int) -> list[ByteRange]:
    first: ByteRange = {"offset": 0, "length": 1}
    return [first] if size == 1 else [first, {"offset": size - 1, "length": 1}]


def _v1_image_size(path: Path, header: bytes) -> int | None:
    info = field_info(HEADER_V1, "image_file")
    name = header[info.offset:info.end].split(b"\0", 1)[0]
    if not name:
        return None
    image = path.parent / os.fsdecode(name)
    try:
        return image.stat().st_size
    except (OSError, ValueError):
        return None


def refusal_reads(path: Path) -> list[ByteRange]:
    """The guest ranges to read from the image at ``path``, which must be refused (see the
    module docstring for how they are chosen)."""
    first_byte: list[ByteRange] = [{"offset": 0, "length": 1}]
    try:
        with path.open("rb") as f:
            header = f.read(HEADER_LENGTH_V1)
    except OSError:
        return first_byte
    if len(header) < HEADER_LENGTH_V2 or header[:len(MAGIC)] != MAGIC:
        return first_byte
    version = _int(header, "version")
    if version == 2:
        return _reads(path, _int(header, "virtual_size"),
                      _int(header, "cluster_bits"),
                      _int(header, "bitmap_offset"))
    if version == 1 and len(header) == HEADER_LENGTH_V1:
        image_size = _v1_image_size(path, header)
        if image_size is None:
            return first_byte
        size = image_size // SECTOR_SIZE * SECTOR_SIZE
        return _reads(path, size, V1_CLUSTER_BITS, HEADER_LENGTH_V1)
    return first_byte
