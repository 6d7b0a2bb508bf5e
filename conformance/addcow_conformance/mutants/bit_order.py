"""Mutant ``bit-order-reversed``: reads bitmap bytes most significant bit first (BMP-BIT-ORDER).

Cluster ``i`` is bit ``i & 7`` of byte ``i >> 3``, LSB first; an implementation that numbers
bits MSB first sees every byte mirrored.
"""

from __future__ import annotations

from pathlib import Path

from addcow_conformance.mutants.base import MetadataMutant, v2_header

__all__ = ["BitOrderReversed"]

_MIRROR = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


class BitOrderReversed(MetadataMutant):
    name = "bit-order-reversed"
    breaks = "BMP-BIT-ORDER"

    def rewrite(self, data: bytearray, original: Path) -> None:
        h = v2_header(data)
        if h is None:
            return
        lo = int(h.bitmap_offset)
        hi = min(len(data), lo + h.bitmap_length)
        data[lo:hi] = data[lo:hi].translate(_MIRROR)

    def restore(self, data: bytearray, original: Path) -> None:
        self.rewrite(data, original)  # mirroring is its own inverse
