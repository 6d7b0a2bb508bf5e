"""Mutant ``resize-grow-exposes-backing``: growing the disk leaves the new clusters unallocated,
so whatever the backing file holds past the old end shows through instead of zeros
(RESIZE-GROW; QEMU fixed the same bug for overlays in 5.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.mutants.base import v2_header
from addcow_ref.format.bitmap import clear_bit_range

__all__ = ["ResizeGrowExposesBacking"]


class ResizeGrowExposesBacking(ReferenceAdapter):
    name = "resize-grow-exposes-backing"
    breaks = "RESIZE-GROW"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grown: list[tuple[int, int]] = []  # [start, end) byte ranges added by a resize

    def resize(self, image: Any, size: int) -> None:
        old = image.virtual_size
        super().resize(image, size)
        if size > old:
            self.grown.append((old, size))

    def write(self, image: Any, offset: int, data: bytes) -> None:
        super().write(image, offset, data)
        # A later write allocates its clusters for real: forget them.
        end = offset + len(data)
        self.grown = [(lo, hi) for lo, hi in self.grown if hi <= offset or lo >= end]

    def cmd_apply(self, path: str, ops_path: str) -> int:
        status = super().cmd_apply(path, ops_path)
        p = Path(path)
        with p.open("r+b") as f:
            data = bytearray(f.read())
            h = v2_header(data)
            if h is None or not self.grown:
                return status
            lo_b = int(h.bitmap_offset)
            bitmap = bytearray(data[lo_b : lo_b + h.bitmap_length])
            bits = int(h.cluster_bits)
            for lo, hi in self.grown:
                first = -(-lo >> bits)  # the first cluster that starts in the new range
                last = min(-(-hi >> bits), h.cluster_count)
                if last > first:
                    clear_bit_range(bitmap, first, last - first)
            f.seek(lo_b)
            f.write(bitmap)
        return status
