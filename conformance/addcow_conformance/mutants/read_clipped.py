"""Mutant ``read-clipped``: a read that reaches past ``virtual_size`` returns the bytes up to
the end of the disk instead of being refused, as a POSIX ``pread`` of a file would (READ-RANGE)."""

from __future__ import annotations

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.protocol import EXIT_OK

__all__ = ["ReadClipped"]


class ReadClipped(ReferenceAdapter):
    name = "read-clipped"
    breaks = "READ-RANGE"

    def cmd_read(self, path: str, offset: int, length: int) -> int:
        with self.open(path) as image:
            size = int(image.virtual_size)
        # The mistake: clip to the disk instead of refusing.
        end = min(offset + length, size)
        if end <= offset:
            return EXIT_OK
        return super().cmd_read(path, offset, end - offset)
