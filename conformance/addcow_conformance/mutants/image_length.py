"""Mutant ``image-length-refused``: refuses an image whose image file is longer than
``virtual_size``, taking the extra bytes for corruption, where a reader MUST ignore them
(IMG-LENGTH is a SHOULD with reader duty ``ignore``)."""

from __future__ import annotations

import os
from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_ref.format.errors import FormatError

__all__ = ["ImageLengthRefused"]


class ImageLengthRefused(ReferenceAdapter):
    name = "image-length-refused"
    breaks = "IMG-LENGTH"

    def open(self, path: str, mode: str = "r") -> Any:
        image = super().open(path, mode)
        try:
            length = os.stat(image.image_path).st_size
        except (AttributeError, OSError):
            return image
        if length > int(image.virtual_size):
            image.close()
            raise FormatError(f"image file is {length} bytes, longer than the disk",
                              file=path, field="virtual_size", rule_id="IMG-LENGTH")
        return image
