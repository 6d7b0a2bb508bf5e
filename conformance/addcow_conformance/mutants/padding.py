"""Mutant ``padding-bits-refused``: an implementation that treats set padding bits (the bits of
the last bitmap byte past ``cluster_count``) as a corrupt image and refuses it, where a reader
MUST ignore them: they are the trace of an interrupted grow or shrink (BMP-PADDING, reader duty
``ignore``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.mutants.base import v2_header
from addcow_ref.format.bitmap import padding_mask
from addcow_ref.format.constants import HEADER_LENGTH_V1, VERSION_1
from addcow_ref.format.errors import FormatError
from addcow_ref.format.header import read_version
from addcow_ref.format.layout import field_info
from addcow_ref.format.schema import HEADER_V1

__all__ = ["PaddingBitsRefused"]

#: A v1 image has 64 KiB clusters; its cluster count comes from the image file's length.
_V1_CLUSTER = 1 << 16


def _last_byte_and_count(path: Path, data: bytes) -> tuple[int, int] | None:
    """The last bitmap byte and the cluster count, for a v1 or v2 file; None if unknown."""
    h = v2_header(data)
    if h is not None:
        at = int(h.bitmap_offset) + h.bitmap_length - 1
        return (data[at], h.cluster_count) if h.bitmap_length and at < len(data) else None
    if read_version(data[:16]) != VERSION_1 or len(data) <= HEADER_LENGTH_V1:
        return None
    field = field_info(HEADER_V1, "image_file")
    name = data[field.offset:field.end].split(b"\0", 1)[0]
    try:
        size = (path.parent / name.decode()).stat().st_size // 512 * 512
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    count = -(-size // _V1_CLUSTER)
    length = -(-count // 8)
    at = HEADER_LENGTH_V1 + length - 1
    return (data[at], count) if length and at < len(data) else None


class PaddingBitsRefused(ReferenceAdapter):
    name = "padding-bits-refused"
    breaks = "BMP-PADDING"

    def open(self, path: str, mode: str = "r") -> Any:
        p = Path(path)
        found = _last_byte_and_count(p, p.read_bytes())
        if found is not None and found[0] & padding_mask(found[1]):
            # The mistake: padding bits are judged instead of ignored.
            raise FormatError("padding bits of the last bitmap byte are set", file=path,
                              field="bitmap", rule_id="BMP-PADDING")
        return super().open(path, mode)
