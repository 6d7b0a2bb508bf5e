"""Views derived from ``schema.py``: field offsets, sizes, defaults and constraints.

The spec's field tables, the checker's finding offsets and the vector generator's
"set field X to Y" mutations all come from :func:`field_table`, so none of them holds a second
copy of the layout. :func:`encode_field` and :func:`decode_field` turn one field's value into its
bytes and back through the field's own construct subcon, so a forger that patches a single field
encodes it exactly as a whole-header build would.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from construct import Bytes, FormatField, Renamed, Struct

from addcow_ref.format.errors import FieldError
from addcow_ref.format.schema import FieldValue

__all__ = [
    "FieldInfo",
    "decode_field",
    "encode_field",
    "field_info",
    "field_table",
    "offset_of",
    "span_of",
]


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One header field as the spec table shows it."""

    name: str
    offset: int
    size: int
    ctype: str
    doc: str
    rules: tuple[str, ...]
    constraint: str
    default: FieldValue
    subcon: Any = dataclasses.field(compare=False, repr=False)
    checks: dict[str, Any] = dataclasses.field(compare=False, repr=False)

    @property
    def is_integer(self) -> bool:
        return self.ctype.startswith("uint")

    @property
    def python_type(self) -> type[int] | type[bytes]:
        """The type construct parses this field to: ``int`` or ``bytes``."""
        return int if self.is_integer else bytes

    @property
    def end(self) -> int:
        return self.offset + self.size


def _ctype(subcon: Any) -> str:
    if isinstance(subcon, FormatField):
        return f"uint{subcon.sizeof() * 8}be"
    if isinstance(subcon, Bytes):
        return f"u8[{subcon.sizeof()}]"
    raise TypeError(f"unsupported subcon in a header schema: {subcon!r}")


#: Tables already derived, by the identity of their (module-level, immutable) struct: the
#: reference derives offsets on every open and header write, and walking the struct each time
#: cost more than the I/O.
_TABLES: dict[int, tuple[Struct, tuple[FieldInfo, ...]]] = {}


def field_table(struct: Struct) -> list[FieldInfo]:
    """Return every field of ``struct`` with its byte offset, in declaration order."""
    cached = _TABLES.get(id(struct))
    if cached is None or cached[0] is not struct:
        cached = (struct, tuple(_derive_table(struct)))
        _TABLES[id(struct)] = cached
    return list(cached[1])


def _derive_table(struct: Struct) -> list[FieldInfo]:
    out: list[FieldInfo] = []
    offset = 0
    for sc in struct.subcons:
        assert isinstance(sc, Renamed), "schema fields are declared with schema.field()"
        size = sc.sizeof()
        out.append(FieldInfo(
            name=sc.name, offset=offset, size=size, ctype=_ctype(sc.subcon),
            doc=sc.docs, rules=getattr(sc, "rules", ()),
            constraint=getattr(sc, "constraint", ""), default=sc.default,
            subcon=sc.subcon, checks=getattr(sc, "checks", {}),
        ))
        offset += size
    return out


def field_info(struct: Struct, name: str) -> FieldInfo:
    """Return the :class:`FieldInfo` of ``name``; ``KeyError`` names the missing field."""
    for info in field_table(struct):
        if info.name == name:
            return info
    raise KeyError(f"no field {name!r} in this header schema")


def offset_of(struct: Struct, name: str) -> int:
    return field_info(struct, name).offset


def span_of(struct: Struct, first: str, last: str) -> tuple[int, int]:
    """Offset and length of the bytes from field ``first`` through field ``last``: a finding
    about a pair such as a name's offset and length covers both fields."""
    start, end = field_info(struct, first).offset, field_info(struct, last).end
    if end <= start:
        raise ValueError(f"field {last!r} does not follow field {first!r}")
    return start, end - start


def encode_field(struct: Struct, name: str, value: FieldValue) -> bytes:
    """The bytes of field ``name`` holding ``value``, built by the field's own subcon.

    :class:`~addcow_ref.format.errors.FieldError` (a ``ValueError``) names the field and its
    offset when ``value`` does not fit: an integer out of the field's range, bytes of another
    length, a value of the wrong type.
    """
    info = field_info(struct, name)
    problem = None
    if not isinstance(value, info.python_type) or isinstance(value, bool):
        problem = f"wants {info.python_type.__name__}, not {type(value).__name__}"
    elif isinstance(value, int) and not 0 <= value < 1 << (8 * info.size):
        problem = (f"value {value} does not fit in {info.size} bytes "
                   f"(0..{(1 << (8 * info.size)) - 1})")
    elif isinstance(value, bytes) and len(value) != info.size:
        problem = f"is {info.size} bytes long, not {len(value)}"
    if problem is not None:
        raise FieldError(problem, offset=info.offset, field=name)
    return bytes(info.subcon.build(value))


def decode_field(struct: Struct, name: str, data: bytes) -> FieldValue:
    """The value of field ``name`` from exactly its bytes (``FieldError`` on another length)."""
    info = field_info(struct, name)
    if len(data) != info.size:
        raise FieldError(f"is {info.size} bytes long, not {len(data)}",
                         offset=info.offset, field=name)
    value = info.subcon.parse(data)
    assert isinstance(value, (int, bytes))
    return value
