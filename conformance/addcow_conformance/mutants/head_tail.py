"""Mutant ``head-tail-copy-skipped``: a write into an unallocated cluster writes only the new
bytes and sets the bit, leaving whatever the image file held in the rest of the cluster instead
of the backing file's data (WRITE-COW-HEAD-TAIL)."""

from __future__ import annotations

from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter

__all__ = ["HeadTailCopySkipped"]


class HeadTailCopySkipped(ReferenceAdapter):
    name = "head-tail-copy-skipped"
    breaks = "WRITE-COW-HEAD-TAIL"

    def write(self, image: Any, offset: int, data: bytes) -> None:
        size = image.cluster_size
        first = offset - offset % size
        end = min(offset + len(data) + (-(offset + len(data))) % size, image.virtual_size)
        stale: list[tuple[int, bytes]] = []
        path = image.image_path
        with open(path, "rb") as f:
            pos = first
            while pos < end:
                n = min(size, end - pos)
                allocated, _ = image.is_allocated(pos, n)
                if not allocated:
                    f.seek(pos)
                    stale.append((pos, f.read(n).ljust(n, b"\0")))
                pos += n
        super().write(image, offset, data)
        image.flush()
        # Put back what the image file held around the new bytes: the head and tail were
        # never copied from the backing file.
        with open(path, "r+b") as f:
            for pos, old in stale:
                for lo, hi in ((pos, max(pos, offset)), (min(pos + len(old), offset + len(data)),
                                                          pos + len(old))):
                    if hi > lo:
                        f.seek(lo)
                        f.write(old[lo - pos : hi - pos])
