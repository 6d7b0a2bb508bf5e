"""Mutant ``backing-eof-garbage``: unallocated ranges that no backing file covers (past its end,
or no backing file at all) read as leftover buffer contents instead of zeros
(READ-PAST-BACKING-EOF)."""

from __future__ import annotations

from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter

__all__ = ["BackingEofGarbage"]

GARBAGE = 0xAA


class BackingEofGarbage(ReferenceAdapter):
    name = "backing-eof-garbage"
    breaks = "READ-PAST-BACKING-EOF"

    def read(self, image: Any, offset: int, length: int) -> bytes:
        data = bytearray(super().read(image, offset, length))
        if not length:
            return bytes(data)
        for e in image.map(offset, length):
            if not e.allocated and not getattr(e, "data", True):
                lo, hi = e.start - offset, e.start + e.length - offset
                data[lo:hi] = bytes([GARBAGE]) * (hi - lo)
        return bytes(data)
