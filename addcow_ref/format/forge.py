"""Forge add-cow headers field by field, by name (spec: "Header", "v1").

Tests, vector generators, fuzz seeds, benchmarks and the writer itself need headers that differ
from the default in a few fields, and sometimes a file with one field changed in place. Written
out by hand, each of them held a full copy of the header; here they start from the defaults
declared in ``schema.py`` and name only what differs. Every value goes through
``layout.encode_field``, so a forged header and a patched field encode exactly as the schema
says, and a wrong name or a value that does not fit is a
:class:`~addcow_ref.format.errors.FieldError` naming the field.

Byte fields shorter than their width are NUL-padded (every byte field of the format is a
NUL-padded name, a NUL-padded format or reserved zeros), so ``image_format=b"raw"`` is enough.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from construct import Struct

from addcow_ref.format.constants import HEADER_LENGTH_V2, VERSION_1
from addcow_ref.format.errors import FieldError, TruncatedError
from addcow_ref.format.header import HeaderV1, HeaderV2, parse_header, parse_header_v1
from addcow_ref.format.layout import FieldInfo, encode_field, field_info, field_table
from addcow_ref.format.schema import HEADER_V1, HEADER_V2, FieldValue

__all__ = [
    "FieldView",
    "coerce",
    "defaults",
    "detect_struct",
    "fields_of",
    "forge_v1",
    "forge_v2",
    "list_fields",
    "lookup",
    "name_fields",
    "read_header",
    "set_field",
]


@dataclasses.dataclass(frozen=True)
class FieldView:
    """One field of a concrete header, for inspection: where it lies and what it holds."""

    name: str
    offset: int
    size: int
    ctype: str
    value: FieldValue

    @property
    def is_integer(self) -> bool:
        return isinstance(self.value, int)


def defaults(struct: Struct) -> dict[str, FieldValue]:
    """Every field's schema default, in on-disk order: the default header of ``struct``."""
    return {f.name: f.default for f in field_table(struct)}


def lookup(struct: Struct, name: str, *, file: str | None = None) -> FieldInfo:
    """The field ``name`` of ``struct``; an unknown name is a
    :class:`~addcow_ref.format.errors.FieldError` that lists the known fields."""
    try:
        return field_info(struct, name)
    except KeyError:
        known = ", ".join(f.name for f in field_table(struct))
        raise FieldError(f"no header field {name!r} (fields: {known})", file=file,
                         field=name) from None


def coerce(struct: Struct, name: str, value: FieldValue, *, file: str | None = None) -> bytes:
    """The bytes of field ``name`` holding ``value``; short byte values are NUL-padded.

    :class:`~addcow_ref.format.errors.FieldError` names the field (and ``file`` and the field's
    offset, when given) for an unknown name, a value of the wrong type, an integer out of range
    or bytes too long.
    """
    info = lookup(struct, name, file=file)
    if isinstance(value, (bytes, bytearray)) and not info.is_integer:
        value = bytes(value).ljust(info.size, b"\0")
    try:
        return encode_field(struct, name, value)
    except FieldError as e:
        raise FieldError(e.message, file=file, offset=e.offset, field=name) from None


def _forge(struct: Struct, overrides: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    values = defaults(struct)
    for name, value in overrides.items():
        raw = coerce(struct, name, value)
        info = field_info(struct, name)
        values[name] = int.from_bytes(raw, "big") if info.is_integer else raw
    return values


def forge_v2(**overrides: FieldValue) -> HeaderV2:
    """A v2 header: the schema defaults with the named fields overridden.

    >>> forge_v2(virtual_size=1 << 20, image_name_length=9).cluster_count
    16
    """
    return HeaderV2.from_values(_forge(HEADER_V2, overrides))


def forge_v1(*, known_virtual_size: int | None = None, **overrides: FieldValue) -> HeaderV1:
    """A v1 header: the schema defaults with the named fields overridden (names NUL-padded:
    ``forge_v1(image_file=b"v1.raw")``)."""
    return HeaderV1.from_values(_forge(HEADER_V1, overrides),
                                known_virtual_size=known_virtual_size)


def name_fields(image_name: bytes, backing_name: bytes | None = None, *,
                start: int = HEADER_LENGTH_V2) -> dict[str, int]:
    """The four v2 name fields for names packed at ``start`` (default: right after the fixed
    header), image name first and the backing name right after it; no backing name gives
    offset and length 0 (NAME-BACKING-PAIR). This is the layout ``ops/create.py`` writes."""
    return {
        "image_name_offset": start,
        "image_name_length": len(image_name),
        "backing_name_offset": start + len(image_name) if backing_name else 0,
        "backing_name_length": len(backing_name) if backing_name else 0,
    }


def detect_struct(data: bytes, *, file: str | None = None) -> Struct:
    """The schema of a header prefix by its version field: v1 for version 1, else v2 (a file
    with a broken version is still read as v2, so its fields can be inspected and repaired)."""
    info = field_info(HEADER_V2, "version")
    if len(data) < info.end:
        raise TruncatedError(f"file is {len(data)} bytes long, too short to hold the version "
                             f"field (bytes {info.offset}..{info.end - 1})", file=file,
                             offset=len(data), field="version", rule_id="HDR-COMPLETE")
    version = int.from_bytes(data[info.offset:info.end], "big")
    return HEADER_V1 if version == VERSION_1 else HEADER_V2


def read_header(path: str | os.PathLike[str]) -> HeaderV2 | HeaderV1:
    """Parse the header of the file at ``path``, v1 or v2 by its version field; no rule is
    checked (only truncation is an error), so a broken header can still be inspected."""
    file = os.fspath(path)
    with open(file, "rb") as f:
        data = f.read(max(HEADER_V1.sizeof(), HEADER_V2.sizeof()))
    if detect_struct(data, file=file) is HEADER_V1:
        return parse_header_v1(data, file=file)
    return parse_header(data, file=file)


def fields_of(header: HeaderV2 | HeaderV1) -> list[FieldView]:
    """Every field of ``header`` with its offset, size and value, in on-disk order."""
    values = header.as_dict()
    return [FieldView(f.name, f.offset, f.size, f.ctype, values[f.name])
            for f in field_table(header._struct)]


def list_fields(path: str | os.PathLike[str]) -> list[FieldView]:
    """:func:`fields_of` the header of the file at ``path``."""
    return fields_of(read_header(path))


def set_field(path: str | os.PathLike[str], name: str, value: FieldValue, *,
              struct: Struct | None = None) -> FieldView:
    """Overwrite field ``name`` of the file at ``path`` in place and return it as written.

    Exactly the field's bytes are written, at its offset; nothing else of the file changes.
    The schema is detected from the version field unless ``struct`` is given (to rewrite the
    version field itself of a v1 file as v2, say). Everything is checked before the file is
    opened for writing, and the bytes go out in one ``pwrite``: every header field lies in the
    first 4 KiB of the file, so the write lands whole or not at all in the page cache.
    """
    file = os.fspath(path)
    with open(file, "rb") as f:
        head = f.read(max(HEADER_V1.sizeof(), HEADER_V2.sizeof()))
    struct = struct if struct is not None else detect_struct(head, file=file)
    info = lookup(struct, name, file=file)
    raw = coerce(struct, name, value, file=file)
    if len(head) < info.end:
        raise TruncatedError(f"file is {len(head)} bytes long; field {name} ends at byte "
                             f"{info.end}", file=file, offset=info.offset, field=name)
    fd = os.open(file, os.O_WRONLY)
    try:
        written = os.pwrite(fd, raw, info.offset)
        if written != len(raw):
            os.pwrite(fd, head[info.offset:info.end], info.offset)
            raise OSError(f"{file}: short write of field {name} ({written} of {len(raw)} "
                          "bytes); the old value was restored")
        os.fsync(fd)
    finally:
        os.close(fd)
    stored: FieldValue = int.from_bytes(raw, "big") if info.is_integer else raw
    return FieldView(name, info.offset, info.size, info.ctype, stored)
