"""Decoded headers and the values derived from them (spec: "Header", "COW bitmap", "v1").

A header object wraps the raw values parsed by ``schema.py`` and adds derived properties
(``cluster_size``, ``cluster_count``, ``bitmap_length``...). Field names are not repeated here:
attribute access is delegated to the parsed values, so a field added to the schema appears on the
object without touching this file.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, BinaryIO

from construct import ConstructError, Container, Struct

from addcow_ref.format.constants import (
    HEADER_LENGTH_V1,
    HEADER_LENGTH_V2,
    SECTOR_SIZE,
    V1_CLUSTER_BITS,
)
from addcow_ref.format.errors import FormatError, TruncatedError
from addcow_ref.format.layout import field_table
from addcow_ref.format.schema import HEADER_V1, HEADER_V2

__all__ = [
    "HeaderV1",
    "HeaderV2",
    "bitmap_length_for",
    "build_header",
    "cluster_count_for",
    "decode_format",
    "parse_header",
    "parse_header_v1",
    "read_version",
]


def cluster_count_for(virtual_size: int, cluster_bits: int) -> int:
    """Number of clusters of a disk: the last one may be partial.

    Safe on unvalidated headers: a ``cluster_bits`` of 2**32 - 1 must not build a giant integer.
    """
    if cluster_bits >= 64:
        return 1 if virtual_size else 0
    return -(-virtual_size // (1 << cluster_bits))


def bitmap_length_for(virtual_size: int, cluster_bits: int) -> int:
    """Exact bitmap size in bytes: ``ceil(ceil(virtual_size / cluster_size) / 8)``."""
    return -(-cluster_count_for(virtual_size, cluster_bits) // 8)


def decode_format(raw: bytes) -> str:
    """The text of a NUL-padded format field (stops at the first NUL; non-ASCII is escaped)."""
    return raw.split(b"\0", 1)[0].decode("ascii", "backslashreplace")


class _Header:
    """Common behaviour of the v1 and v2 header wrappers."""

    _struct: Struct

    def __init__(self, values: Mapping[str, Any]) -> None:
        names = [f.name for f in field_table(self._struct)]
        missing = [n for n in names if n not in values]
        if missing:
            raise TypeError(f"header values lack {', '.join(missing)}")
        self._values: dict[str, Any] = {n: values[n] for n in names}

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, _Header) and type(other) is type(self)
                and other._values == self._values)

    def __hash__(self) -> int:
        return hash(tuple(self._values.items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({inner})"

    def as_dict(self) -> dict[str, Any]:
        """The raw field values, in schema order."""
        return dict(self._values)

    def replace(self, **changes: Any) -> Any:
        unknown = set(changes) - set(self._values)
        if unknown:
            raise TypeError(f"no such header field(s): {', '.join(sorted(unknown))}")
        return type(self)({**self._values, **changes})

    def build(self) -> bytes:
        """The header's bytes, exactly ``sizeof`` of its schema long."""
        try:
            return bytes(self._struct.build(Container(self._values)))
        except (ConstructError, TypeError, ValueError) as e:
            raise FormatError(f"cannot build header: {e}") from None

    @property
    def cluster_size(self) -> int:
        return 1 << int(self.cluster_bits)

    @property
    def cluster_count(self) -> int:
        return cluster_count_for(int(self.virtual_size), int(self.cluster_bits))

    @property
    def bitmap_length(self) -> int:
        return bitmap_length_for(int(self.virtual_size), int(self.cluster_bits))


class HeaderV2(_Header):
    """A version 2 header; see ``schema.HEADER_V2`` for the fields."""

    _struct = HEADER_V2

    @property
    def has_backing(self) -> bool:
        return bool(self.backing_name_offset or self.backing_name_length)

    @property
    def image_format_name(self) -> str:
        return decode_format(self.image_format)

    @property
    def backing_format_name(self) -> str:
        return decode_format(self.backing_format)


class HeaderV1(_Header):
    """A legacy version 1 header. Its cluster size is fixed and its virtual size comes from the
    image file's length, so ``virtual_size`` must be supplied by the caller."""

    _struct = HEADER_V1
    cluster_bits = V1_CLUSTER_BITS
    bitmap_offset = HEADER_LENGTH_V1
    header_length = HEADER_LENGTH_V1

    def __init__(self, values: Mapping[str, Any], virtual_size: int | None = None) -> None:
        super().__init__(values)
        self.__dict__["_virtual_size"] = virtual_size

    @property
    def virtual_size(self) -> int:
        vs = self.__dict__["_virtual_size"]
        if vs is None:
            raise ValueError("a v1 header's virtual size comes from its image file; "
                             "call with_image_length() first")
        return int(vs)

    def with_image_length(self, image_length: int) -> HeaderV1:
        return HeaderV1(self._values, image_length - image_length % SECTOR_SIZE)

    @property
    def image_name(self) -> bytes:
        return bytes(self.image_file).split(b"\0", 1)[0]

    @property
    def backing_name(self) -> bytes:
        return bytes(self.backing_file).split(b"\0", 1)[0]


def _read_exact(f: BinaryIO, size: int, file: str | None) -> bytes:
    data = f.read(size)
    if len(data) < size:
        raise TruncatedError(
            f"file is {len(data)} bytes long, shorter than the {size}-byte header",
            file=file, offset=len(data), rule_id="HDR-COMPLETE")
    return data


def read_version(data: bytes) -> int | None:
    """The version field of a header prefix, or None if the prefix is too short."""
    if len(data) < 12:
        return None
    return int.from_bytes(data[8:12], "big")


def parse_header(data: bytes | BinaryIO, *, file: str | None = None) -> HeaderV2:
    """Parse the 128-byte fixed v2 header. Only truncation is an error here: rule checks are
    ``validate.py``'s, so a checker can see every field of a broken header."""
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    raw = _read_exact(f, HEADER_LENGTH_V2, file)
    values = HEADER_V2.parse(raw)
    return HeaderV2({k: v for k, v in values.items() if not k.startswith("_")})


def parse_header_v1(data: bytes | BinaryIO, *, file: str | None = None) -> HeaderV1:
    """Parse the 2560-byte v1 header (virtual size still unknown: see ``with_image_length``)."""
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    raw = _read_exact(f, HEADER_LENGTH_V1, file)
    values = HEADER_V1.parse(raw)
    return HeaderV1({k: v for k, v in values.items() if not k.startswith("_")})


def build_header(**values: Any) -> bytes:
    """Build v2 header bytes from field values (``HeaderV2(values).build()``)."""
    return HeaderV2(values).build()

