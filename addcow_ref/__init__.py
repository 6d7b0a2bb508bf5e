"""addcow_ref: the reference implementation of the add-cow disk image format.

The public API is re-exported here; the layout lives in ``schema.py``, the rules in
``spec/`` (loaded through ``rules.py``).
"""

from __future__ import annotations

from .errors import (
    AddCowError,
    BackingFileError,
    FormatError,
    ImageFileError,
    ReadOnlyError,
    TruncatedError,
    UnsupportedFeatureError,
)
from .model import HeaderV1, HeaderV2, parse_header, parse_header_v1

__version__ = "0.1.0"

__all__ = [
    "AddCowError",
    "BackingFileError",
    "FormatError",
    "HeaderV1",
    "HeaderV2",
    "ImageFileError",
    "ReadOnlyError",
    "TruncatedError",
    "UnsupportedFeatureError",
    "__version__",
    "parse_header",
    "parse_header_v1",
]
