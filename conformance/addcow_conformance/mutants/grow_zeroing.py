"""Mutant ``grow-without-zeroing``: grows the disk by rewriting the header and setting the new
bits, but never zeroes the image file over the new part, so bytes an image file held past the
old end (a file longer than the disk) show through as guest data (RESIZE-GROW)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter

__all__ = ["GrowWithoutZeroing"]


class GrowWithoutZeroing(ReferenceAdapter):
    name = "grow-without-zeroing"
    breaks = "RESIZE-GROW"

    def resize(self, image: Any, size: int) -> None:
        old = int(image.virtual_size)
        path = Path(image.image_path)
        stale = b""
        if size > old:
            with path.open("rb") as f:
                f.seek(old)
                stale = f.read(size - old)
        super().resize(image, size)
        if stale:
            # The mistake: what the file held past the old end is left in place.
            image.flush()
            with path.open("r+b") as f:
                f.seek(old)
                f.write(stale)
