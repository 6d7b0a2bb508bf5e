"""Mutant ``padding-bits-ignored``: masks the bits past the last cluster instead of checking
them, so a bitmap with padding bits set is accepted (BMP-PADDING)."""

from __future__ import annotations

from pathlib import Path

from addcow_ref.bitmap import padding_mask

from .base import MetadataMutant, v2_header

__all__ = ["PaddingBitsIgnored"]


class PaddingBitsIgnored(MetadataMutant):
    name = "padding-bits-ignored"
    breaks = "BMP-PADDING"

    def rewrite(self, data: bytearray, original: Path) -> None:
        h = v2_header(data)
        if h is None or h.bitmap_length == 0:
            return
        last = int(h.bitmap_offset) + h.bitmap_length - 1
        if last < len(data):
            data[last] &= ~padding_mask(h.cluster_count) & 0xFF
