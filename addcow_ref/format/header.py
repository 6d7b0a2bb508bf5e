"""Decoded headers and the values derived from them (spec: "Header", "COW bitmap", "v1").

A header is a frozen dataclass with one typed attribute per field of its ``schema.py`` struct
(``int`` for the ``IntNNub`` fields, ``bytes`` for the ``Bytes(n)`` ones), so a misspelt field is
a type error rather than a silent ``AttributeError`` at run time. The attribute list repeats the
schema's field names; ``tests/addcow_ref/test_header_model.py`` compares them with the field
table (names, order, Python types), so a field added to the schema without the model fails the
tests. Derived values (``cluster_size``, ``cluster_count``, ``bitmap_length``...) are properties.

Parsing goes through the field table generated from the schema (``fieldtable.py``), so reading
a header does not import construct; building one (``build()``) uses the schema's
struct itself, which is loaded then.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Self

from addcow_ref.format import fieldtable
from addcow_ref.format.constants import (
    HEADER_LENGTH_V1,
    HEADER_LENGTH_V2,
    SECTOR_SIZE,
    V1_CLUSTER_BITS,
)
from addcow_ref.format.errors import FormatError, TruncatedError
from addcow_ref.format.layout import FieldValue, HeaderTable, decode_header, field_info, field_table

if TYPE_CHECKING:
    from construct import Struct

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

#: Marks a dataclass attribute of a header that is not a field of its schema (v1's virtual size,
#: which comes from the image file).
NOT_A_FIELD = {"schema_field": False}


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


class _SchemaStruct:
    """A header class's ``_struct``: the schema's construct struct of its ``_table``, imported
    on first use (``HeaderV2._struct`` is ``schema.HEADER_V2`` as before). It sits on the base
    class, which is no dataclass: ``@dataclass`` reads every attribute its class annotates, and
    would import the schema at once."""

    def __get__(self, obj: object, owner: type[_Header]) -> Struct:
        return owner._table.schema()


class _Header:
    """Common behaviour of the v1 and v2 header records."""

    #: The field table generated from the schema struct (what parsing and lookups use).
    _table: ClassVar[HeaderTable]
    if TYPE_CHECKING:
        _struct: ClassVar[Struct]
    else:
        _struct = _SchemaStruct()

    @classmethod
    def field_names(cls) -> list[str]:
        """The schema's field names, in on-disk order."""
        return [f.name for f in field_table(cls._table)]

    @classmethod
    def from_values(cls, values: Mapping[str, Any], **extra: Any) -> Self:
        """A header from a mapping of every field's value (as ``construct`` parses them).

        Keys starting with ``_`` (construct's ``_io``) are ignored; a missing or unknown field
        is a ``TypeError`` naming it.
        """
        names = cls.field_names()
        missing = [n for n in names if n not in values]
        if missing:
            raise TypeError(f"header values lack {', '.join(missing)}")
        unknown = sorted(k for k in values if k not in names and not k.startswith("_"))
        if unknown:
            raise TypeError(f"no such header field(s): {', '.join(unknown)}")
        return cls(**{n: values[n] for n in names}, **extra)

    def as_dict(self) -> dict[str, FieldValue]:
        """The raw field values, in schema order."""
        return {n: getattr(self, n) for n in self.field_names()}

    def replace(self, **changes: Any) -> Self:
        """A copy with the named fields changed; an unknown name is a ``TypeError``."""
        unknown = set(changes) - set(self.field_names())
        if unknown:
            raise TypeError(f"no such header field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def build(self) -> bytes:
        """The header's bytes, exactly ``sizeof`` of its schema long."""
        from construct import ConstructError, Container  # building is not on the start-up path

        try:
            return bytes(self._struct.build(Container(self.as_dict())))
        except (ConstructError, TypeError, ValueError) as e:
            raise FormatError(f"cannot build header: {e}") from None

    def _geometry(self) -> tuple[int, int]:
        """``(virtual_size, cluster_bits)``: where each version keeps them differs."""
        raise NotImplementedError

    @property
    def cluster_size(self) -> int:
        return 1 << self._geometry()[1]

    @property
    def cluster_count(self) -> int:
        return cluster_count_for(*self._geometry())

    @property
    def bitmap_length(self) -> int:
        return bitmap_length_for(*self._geometry())


@dataclasses.dataclass(frozen=True)
class HeaderV2(_Header):
    """A version 2 header; see ``schema.HEADER_V2`` for what each field means."""

    _table: ClassVar[HeaderTable] = fieldtable.HEADER_V2

    magic: bytes
    version: int
    header_length: int
    incompatible_features: int
    compatible_features: int
    autoclear_features: int
    virtual_size: int
    bitmap_offset: int
    cluster_bits: int
    reserved1: bytes
    image_name_offset: int
    image_name_length: int
    backing_name_offset: int
    backing_name_length: int
    image_format: bytes
    backing_format: bytes
    reserved2: bytes

    def _geometry(self) -> tuple[int, int]:
        return self.virtual_size, self.cluster_bits

    @property
    def has_backing(self) -> bool:
        return bool(self.backing_name_offset or self.backing_name_length)

    @property
    def image_format_name(self) -> str:
        return decode_format(self.image_format)

    @property
    def backing_format_name(self) -> str:
        return decode_format(self.backing_format)


@dataclasses.dataclass(frozen=True)
class HeaderV1(_Header):
    """A legacy version 1 header. Its cluster size is fixed and its virtual size comes from the
    image file's length, so ``virtual_size`` needs :meth:`with_image_length` first."""

    _table: ClassVar[HeaderTable] = fieldtable.HEADER_V1
    cluster_bits: ClassVar[int] = V1_CLUSTER_BITS
    bitmap_offset: ClassVar[int] = HEADER_LENGTH_V1
    header_length: ClassVar[int] = HEADER_LENGTH_V1

    magic: bytes
    version: int
    backing_file: bytes
    image_file: bytes
    reserved: bytes
    #: The image file's length rounded down to a sector, once known; not part of the header's
    #: bytes, so neither compared nor shown.
    known_virtual_size: int | None = dataclasses.field(
        default=None, kw_only=True, compare=False, repr=False, metadata=NOT_A_FIELD)

    def _geometry(self) -> tuple[int, int]:
        return self.virtual_size, V1_CLUSTER_BITS

    @property
    def virtual_size(self) -> int:
        if self.known_virtual_size is None:
            raise ValueError("a v1 header's virtual size comes from its image file; "
                             "call with_image_length() first")
        return self.known_virtual_size

    def with_image_length(self, image_length: int) -> HeaderV1:
        return dataclasses.replace(
            self, known_virtual_size=image_length - image_length % SECTOR_SIZE)

    @property
    def image_name(self) -> bytes:
        return self.image_file.split(b"\0", 1)[0]

    @property
    def backing_name(self) -> bytes:
        return self.backing_file.split(b"\0", 1)[0]


def _read_exact(data_or_file: bytes | bytearray | memoryview | BinaryIO, size: int,
                file: str | None) -> bytes:
    if isinstance(data_or_file, (bytes, bytearray, memoryview)):
        data = bytes(data_or_file[:size])
    else:
        data = data_or_file.read(size)
    if len(data) < size:
        raise TruncatedError(
            f"file is {len(data)} bytes long, shorter than the {size}-byte header",
            file=file, offset=len(data), rule_id="HDR-COMPLETE")
    return data


def read_version(data: bytes) -> int | None:
    """The version field of a header prefix, or None if the prefix is too short."""
    info = field_info(fieldtable.HEADER_V2, "version")
    if len(data) < info.end:
        return None
    return int.from_bytes(data[info.offset:info.end], "big")


def parse_header(data: bytes | BinaryIO, *, file: str | None = None) -> HeaderV2:
    """Parse the 128-byte fixed v2 header. Only truncation is an error here: rule checks are
    ``validate.py``'s, so a checker can see every field of a broken header."""
    raw = _read_exact(data, HEADER_LENGTH_V2, file)
    return HeaderV2.from_values(decode_header(fieldtable.HEADER_V2, raw))


def parse_header_v1(data: bytes | BinaryIO, *, file: str | None = None) -> HeaderV1:
    """Parse the 2560-byte v1 header (virtual size still unknown: see ``with_image_length``)."""
    raw = _read_exact(data, HEADER_LENGTH_V1, file)
    return HeaderV1.from_values(decode_header(fieldtable.HEADER_V1, raw))


def build_header(**values: Any) -> bytes:
    """Build v2 header bytes from every field's value (``HeaderV2.from_values(values)``); to
    name only the fields that differ from the defaults, use ``forge.forge_v2``."""
    return HeaderV2.from_values(values).build()

