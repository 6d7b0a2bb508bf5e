"""addcow_ref: the reference implementation of the add-cow disk image format.

The public API is re-exported here; the layout lives in ``schema.py``, the rules in
``spec/`` (loaded through ``rules.py``).
"""

from __future__ import annotations

from . import bitmap
from .create import create
from .errors import (
    AddCowError,
    BackingFileError,
    FormatError,
    ImageFileError,
    ReadOnlyError,
    TruncatedError,
    UnsupportedFeatureError,
)
from .image import AddCowImage, Extent, open_image
from .legacy import upgrade_v1
from .model import HeaderV1, HeaderV2, parse_header, parse_header_v1

#: ``addcow_ref.open(path, mode)`` is ``open_image``.
open = open_image

__version__ = "0.1.0"

__all__ = [
    "AddCowError",
    "AddCowImage",
    "BackingFileError",
    "Extent",
    "FormatError",
    "HeaderV1",
    "HeaderV2",
    "ImageFileError",
    "ReadOnlyError",
    "TruncatedError",
    "UnsupportedFeatureError",
    "__version__",
    "bitmap",
    "create",
    "open",
    "open_image",
    "parse_header",
    "parse_header_v1",
    "upgrade_v1",
]
