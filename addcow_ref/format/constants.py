"""Numeric constants of the add-cow format (spec: "Header", "Feature bits").

Feature masks are derived by OR-ing the members of each flag class, never retyped, so adding a
feature bit in one place updates every reader, writer and checker (see ``spec/features.rst``).
"""

from __future__ import annotations

import enum
import functools
import operator

MAGIC = b"ADD_COW\xff"
VERSION_1 = 1
VERSION_2 = 2

HEADER_LENGTH_V2 = 128
HEADER_LENGTH_V1 = 2560
V1_NAME_FIELD_LENGTH = 1024
V1_CLUSTER_BITS = 16

SECTOR_SIZE = 512
BITMAP_ALIGNMENT = 4096
DEFAULT_BITMAP_OFFSET = 4096
MIN_CLUSTER_BITS = 9
MAX_CLUSTER_BITS = 21
DEFAULT_CLUSTER_BITS = 16
MAX_VIRTUAL_SIZE = (1 << 63) - 1
FORMAT_FIELD_LENGTH = 16

#: Backing chains deeper than this are refused (spec rule BACK-DEPTH).
MAX_CHAIN_DEPTH = 64

FORMAT_RAW = "raw"
FORMAT_ADD_COW = "add-cow"
IMAGE_FORMATS = frozenset({FORMAT_RAW})
BACKING_FORMATS = frozenset({FORMAT_RAW, FORMAT_ADD_COW})


class IncompatibleFeature(enum.IntFlag):
    """Bits a reader must understand to open the image. None are defined in v2.0."""


class CompatibleFeature(enum.IntFlag):
    """Bits a reader may ignore."""

    ALL_ALLOCATED = 1 << 0


class AutoclearFeature(enum.IntFlag):
    """Bits a writer that does not know them must clear. None are defined in v2.0."""


def _mask(flags: type[enum.IntFlag]) -> int:
    return functools.reduce(operator.or_, (int(m) for m in flags), 0)


KNOWN_INCOMPATIBLE_FEATURES = _mask(IncompatibleFeature)
KNOWN_COMPATIBLE_FEATURES = _mask(CompatibleFeature)
KNOWN_AUTOCLEAR_FEATURES = _mask(AutoclearFeature)
