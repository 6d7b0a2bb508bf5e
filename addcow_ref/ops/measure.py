"""How much space an add-cow disk needs (``addcow measure``, as ``qemu-img measure``).

An add-cow disk is two files: the add-cow file (header, names, one bit per cluster) and the raw
image file. The add-cow file's size comes from the format layer itself: the header and name
area a new image gets (:func:`addcow_ref.ops.create.build_metadata`) plus the bitmap length of
its geometry. The raw image file is sparse: ``required`` counts the clusters that hold data,
``fully-allocated`` the whole virtual size. Names shorter than a few KiB do not change the
result, since the bitmap starts at a fixed aligned offset after them.
"""

from __future__ import annotations

import dataclasses

from addcow_ref.engine.image import open_image
from addcow_ref.format.constants import DEFAULT_CLUSTER_BITS, FORMAT_ADD_COW, SECTOR_SIZE
from addcow_ref.format.errors import AddCowError
from addcow_ref.ops.create import build_metadata
from addcow_ref.ops.guest import source_format
from addcow_ref.ops.qemu import qemu_info, qemu_map

__all__ = ["Measurement", "data_extents", "measure"]

#: The image file name measured with (its length only matters past a few KiB).
_NOMINAL_IMAGE_NAME = b"disk.raw"


@dataclasses.dataclass(frozen=True)
class Measurement:
    """The sizes of a standalone add-cow disk: ``required`` and ``fully_allocated`` are totals
    over both files, as qemu-img reports one number each."""

    virtual_size: int
    cluster_size: int
    add_cow_file: int
    image_file_required: int
    image_file_fully_allocated: int

    @property
    def required(self) -> int:
        return self.add_cow_file + self.image_file_required

    @property
    def fully_allocated(self) -> int:
        return self.add_cow_file + self.image_file_fully_allocated


def data_extents(src: str, fmt: str | None) -> tuple[int, list[tuple[int, int]]]:
    """The virtual size of ``src`` and its ranges that hold data (any layer of its chain)."""
    fmt = source_format(src, fmt)
    if fmt == FORMAT_ADD_COW:
        with open_image(src) as img:
            return int(img.virtual_size), [(e.start, e.length) for e in img.iter_map()
                                           if e.data]
    size = qemu_info(src, fmt).virtual_size
    return size, [(e.start, e.length) for e in qemu_map(src, fmt) if e.data]


def measure(*, size: int | None = None, source: str | None = None,
            source_format_name: str | None = None,
            cluster_bits: int = DEFAULT_CLUSTER_BITS) -> Measurement:
    """Measure a new image of ``size`` bytes, or one holding the guest disk of ``source``."""
    extents: list[tuple[int, int]] = []
    if source is not None:
        size, extents = data_extents(source, source_format_name)
    if size is None:
        raise ValueError("give a size or a source")
    size = -(-size // SECTOR_SIZE) * SECTOR_SIZE
    try:
        header, _prefix = build_metadata(size=size, image_name=_NOMINAL_IMAGE_NAME,
                                         backing_name=None, backing_format=None,
                                         cluster_bits=cluster_bits, bitmap_offset=None)
    except AddCowError as e:
        e.file = source or "<new image>"
        raise
    clusters = 0
    last = -1  # the last cluster already counted: extents are sorted
    for start, length in extents:
        first, end = start >> cluster_bits, (start + length - 1) >> cluster_bits
        first = max(first, last + 1)
        if end >= first:
            clusters += end - first + 1
            last = end
    required = min(clusters << cluster_bits, size)
    return Measurement(virtual_size=size, cluster_size=1 << cluster_bits,
                       add_cow_file=int(header.bitmap_offset) + header.bitmap_length,
                       image_file_required=required, image_file_fully_allocated=size)
