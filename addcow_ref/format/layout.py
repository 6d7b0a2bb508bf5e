"""Views derived from ``schema.py``: field offsets, sizes and constraints.

The spec's field tables, the checker's finding offsets and the vector generator's
"set field X to Y" mutations all come from :func:`field_table`, so none of them holds a second
copy of the layout.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from construct import Bytes, FormatField, Renamed, Struct

__all__ = ["FieldInfo", "field_info", "field_table", "offset_of"]


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
    checks: dict[str, Any] = dataclasses.field(compare=False, repr=False)

    @property
    def is_integer(self) -> bool:
        return self.ctype.startswith("uint")


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
            constraint=getattr(sc, "constraint", ""), checks=getattr(sc, "checks", {}),
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
