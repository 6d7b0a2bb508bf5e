"""addcow_ref: the reference implementation of the add-cow disk image format.

The package is layered, each layer importing only those below it: :mod:`addcow_ref.format`
(the layout, its rules and the header model), :mod:`addcow_ref.engine` (opening images and
copy-on-write I/O), :mod:`addcow_ref.ops` (create, upgrade) and :mod:`addcow_ref.cli` (the
tools). The public API is re-exported here, loaded on first use so that importing one layer
(the checker needs only the format layer) does not pay for the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from addcow_ref.engine.image import AddCowImage, Extent, open_image
    from addcow_ref.format import bitmap
    from addcow_ref.format.errors import (
        AddCowError,
        BackingFileError,
        FormatError,
        ImageFileError,
        ReadOnlyError,
        TruncatedError,
        UnsupportedFeatureError,
    )
    from addcow_ref.format.header import HeaderV1, HeaderV2, parse_header, parse_header_v1
    from addcow_ref.ops.create import create
    from addcow_ref.ops.upgrade import upgrade_v1

    open = open_image

__version__ = "0.1.0"

#: Where each public name lives: ``name -> (module, attribute)``.
_EXPORTS: dict[str, tuple[str, str]] = {
    "AddCowError": ("addcow_ref.format.errors", "AddCowError"),
    "AddCowImage": ("addcow_ref.engine.image", "AddCowImage"),
    "BackingFileError": ("addcow_ref.format.errors", "BackingFileError"),
    "Extent": ("addcow_ref.engine.image", "Extent"),
    "FormatError": ("addcow_ref.format.errors", "FormatError"),
    "HeaderV1": ("addcow_ref.format.header", "HeaderV1"),
    "HeaderV2": ("addcow_ref.format.header", "HeaderV2"),
    "ImageFileError": ("addcow_ref.format.errors", "ImageFileError"),
    "ReadOnlyError": ("addcow_ref.format.errors", "ReadOnlyError"),
    "TruncatedError": ("addcow_ref.format.errors", "TruncatedError"),
    "UnsupportedFeatureError": ("addcow_ref.format.errors", "UnsupportedFeatureError"),
    "bitmap": ("addcow_ref.format.bitmap", ""),
    "create": ("addcow_ref.ops.create", "create"),
    #: ``addcow_ref.open(path, mode)`` is ``open_image``.
    "open": ("addcow_ref.engine.image", "open_image"),
    "open_image": ("addcow_ref.engine.image", "open_image"),
    "parse_header": ("addcow_ref.format.header", "parse_header"),
    "parse_header_v1": ("addcow_ref.format.header", "parse_header_v1"),
    "upgrade_v1": ("addcow_ref.ops.upgrade", "upgrade_v1"),
}

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


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use (PEP 562) and cache the name here."""
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'addcow_ref' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attr:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
