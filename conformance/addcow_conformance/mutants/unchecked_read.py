"""Mutant ``unallocated-read-unchecked``: ``info`` and ``map`` refuse an invalid image, but a
``read`` of clusters whose bits are 0 is answered from the backing file (zeros where it is
missing or ends) without the image's checks, as a reader that serves unallocated ranges straight
from the bitmap might (READ-DUTY: a reader refuses the image, whatever it is asked).

On a valid image the reference opens it and answers every read itself, so only a refusal plan
that reads an unallocated range of an invalid image tells this mutant from the reference.
"""

from __future__ import annotations

import os
from pathlib import Path

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.mutants.base import get_field
from addcow_conformance.protocol import EXIT_OK
from addcow_ref.format.constants import HEADER_LENGTH_V2, MAGIC, VERSION_2
from addcow_ref.format.errors import AddCowError

__all__ = ["UnallocatedReadUnchecked"]

#: Reads spanning more clusters than this take the reference's path (the mutant stays quick).
_MAX_CLUSTERS = 1 << 16


def _int(data: bytes, name: str) -> int:
    return int.from_bytes(get_field(data, name), "big")


def _unchecked(path: str, offset: int, length: int) -> bytes | None:
    """The guest bytes as the bitmap and the raw backing file give them, unvalidated; None when
    the range touches an allocated cluster or the header is not even version 2."""
    data = Path(path).read_bytes()
    if len(data) < HEADER_LENGTH_V2 or data[:len(MAGIC)] != MAGIC:
        return None
    if _int(data, "version") != VERSION_2:
        return None
    size, shift = _int(data, "virtual_size"), _int(data, "cluster_bits")
    bitmap = _int(data, "bitmap_offset")
    if not length or offset + length > size or shift > 63:
        return None
    first, last = offset >> shift, (offset + length - 1) >> shift
    if last - first > _MAX_CLUSTERS:
        return None
    for cluster in range(first, last + 1):
        at = bitmap + cluster // 8
        if at < len(data) and data[at] >> (cluster % 8) & 1:
            return None
    name_at, name_length = _int(data, "backing_name_offset"), _int(data, "backing_name_length")
    name = data[name_at:name_at + name_length] if name_length else b""
    chunk = b""
    if name and b"\0" not in name:
        try:
            with (Path(path).parent / os.fsdecode(name)).open("rb") as f:
                f.seek(offset)
                chunk = f.read(length)
        except OSError:
            chunk = b""  # the mistake again: a missing backing file reads as zeros
    return chunk.ljust(length, b"\0")


class UnallocatedReadUnchecked(ReferenceAdapter):
    name = "unallocated-read-unchecked"
    breaks = "READ-DUTY"

    def cmd_read(self, path: str, offset: int, length: int) -> int:
        try:
            self.open(path).close()
        except AddCowError:
            # The mistake: the range needs only the backing file, so the refusal is skipped.
            data = _unchecked(path, offset, length)
            if data is None:
                raise
            self.out.write(data)
            return EXIT_OK
        return super().cmd_read(path, offset, length)
