"""Views derived from ``schema.py``: field offsets, sizes, defaults and constraints.

The spec's field tables, the checker's finding offsets and the vector generator's
"set field X to Y" mutations all come from :func:`field_table`, so none of them holds a second
copy of the layout. :func:`encode_field` and :func:`decode_field` turn one field's value into its
bytes and back through the field's own construct subcon, so a forger that patches a single field
encodes it exactly as a whole-header build would.

Every function here takes either a schema struct or a :class:`HeaderTable`: the same table,
generated from the struct into ``fieldtable.py`` (``tablegen.py``; a test fails when the two
disagree). The table needs no ``construct``, whose import costs more than the rest of a small
image's check, so the start-up path of ``addcow-check`` and ``addcow info`` (read the header,
look up offsets, evaluate the single-field checks) never loads it; construct is imported here
only when a struct is handed in or a field is encoded.
"""

from __future__ import annotations

import dataclasses
import struct as _pystruct
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from addcow_ref.format.errors import FieldError

if TYPE_CHECKING:
    from construct import Struct

#: A field value as construct parses it: integers for ``IntNNub``, bytes for ``Bytes(n)``
#: (``schema.FieldValue``, repeated here so that this module does not import the schema).
FieldValue = int | bytes

#: A single-field rule over the raw header values, true when the rule holds: a construct
#: ``this`` expression in the schema, the Python function generated from it in the table. The
#: values are ``Any``: each field's type (int or bytes) is the schema's, per field.
FieldCheck = Callable[[Mapping[str, Any]], Any]

__all__ = [
    "FieldCheck",
    "FieldInfo",
    "HeaderTable",
    "decode_field",
    "decode_header",
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
    #: The construct subcon (None in a generated :class:`HeaderTable`: encode and decode then
    #: go through the schema's struct of the same name).
    subcon: Any = dataclasses.field(compare=False, repr=False)
    checks: Mapping[str, FieldCheck] = dataclasses.field(compare=False, repr=False)

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


class HeaderTable:
    """The field table of one schema struct, as ``tablegen.py`` generated it into
    ``fieldtable.py``: usable wherever a struct is, without importing construct.

    ``name`` is the struct's name in ``schema.py`` (``HEADER_V2``): :meth:`schema` returns that
    struct, for what only construct does (encoding one field).
    """

    def __init__(self, name: str, fields: tuple[FieldInfo, ...]) -> None:
        self.name = name
        self.fields = fields
        self.size = sum(f.size for f in fields)
        self._by_name = {f.name: f for f in fields}
        self._unpack = _pystruct.Struct(">" + "".join(_struct_code(f) for f in fields))

    def __repr__(self) -> str:
        return f"HeaderTable({self.name!r}, {len(self.fields)} fields)"

    def schema(self) -> Struct:
        """The construct struct this table was generated from."""
        from addcow_ref.format import schema  # construct is paid for only here

        found: Struct = getattr(schema, self.name)
        return found


def _struct_code(info: FieldInfo) -> str:
    """The :mod:`struct` code of a field of the table (big-endian unsigned, or raw bytes)."""
    if info.is_integer:
        return {1: "B", 2: "H", 4: "I", 8: "Q"}[info.size]
    return f"{info.size}s"


def decode_header(table: HeaderTable, data: bytes) -> dict[str, FieldValue]:
    """Every field's value from exactly ``table.size`` bytes, in table order, as the schema's
    struct parses them (``tests/addcow_ref/test_fieldtable.py`` compares the two)."""
    if len(data) != table.size:
        raise ValueError(f"{table.name} is {table.size} bytes long, not {len(data)}")
    values: tuple[FieldValue, ...] = table._unpack.unpack(data)
    return dict(zip((f.name for f in table.fields), values, strict=True))


def _ctype(subcon: Any) -> str:
    from construct import Bytes, FormatField

    if isinstance(subcon, FormatField):
        return f"uint{subcon.sizeof() * 8}be"
    if isinstance(subcon, Bytes):
        return f"u8[{subcon.sizeof()}]"
    raise TypeError(f"unsupported subcon in a header schema: {subcon!r}")


#: Tables already derived, by the identity of their (module-level, immutable) struct: the
#: reference derives offsets on every open and header write, and walking the struct each time
#: cost more than the I/O.
_TABLES: dict[int, tuple[Struct, tuple[FieldInfo, ...]]] = {}


def field_table(struct: Struct | HeaderTable) -> list[FieldInfo]:
    """Return every field of ``struct`` with its byte offset, in declaration order."""
    if isinstance(struct, HeaderTable):
        return list(struct.fields)
    cached = _TABLES.get(id(struct))
    if cached is None or cached[0] is not struct:
        cached = (struct, tuple(_derive_table(struct)))
        _TABLES[id(struct)] = cached
    return list(cached[1])


def _derive_table(struct: Struct) -> list[FieldInfo]:
    from construct import Renamed

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


def field_info(struct: Struct | HeaderTable, name: str) -> FieldInfo:
    """Return the :class:`FieldInfo` of ``name``; ``KeyError`` names the missing field."""
    if isinstance(struct, HeaderTable):
        try:
            return struct._by_name[name]
        except KeyError:
            raise KeyError(f"no field {name!r} in this header schema") from None
    for info in field_table(struct):
        if info.name == name:
            return info
    raise KeyError(f"no field {name!r} in this header schema")


def offset_of(struct: Struct | HeaderTable, name: str) -> int:
    return field_info(struct, name).offset


def span_of(struct: Struct | HeaderTable, first: str, last: str) -> tuple[int, int]:
    """Offset and length of the bytes from field ``first`` through field ``last``: a finding
    about a pair such as a name's offset and length covers both fields."""
    start, end = field_info(struct, first).offset, field_info(struct, last).end
    if end <= start:
        raise ValueError(f"field {last!r} does not follow field {first!r}")
    return start, end - start


def encode_field(struct: Struct | HeaderTable, name: str, value: FieldValue) -> bytes:
    """The bytes of field ``name`` holding ``value``, built by the field's own subcon.

    :class:`~addcow_ref.format.errors.FieldError` (a ``ValueError``) names the field and its
    offset when ``value`` does not fit: an integer out of the field's range, bytes of another
    length, a value of the wrong type.
    """
    if isinstance(struct, HeaderTable):
        struct = struct.schema()
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


def decode_field(struct: Struct | HeaderTable, name: str, data: bytes) -> FieldValue:
    """The value of field ``name`` from exactly its bytes (``FieldError`` on another length)."""
    if isinstance(struct, HeaderTable):
        struct = struct.schema()
    info = field_info(struct, name)
    if len(data) != info.size:
        raise FieldError(f"is {info.size} bytes long, not {len(data)}",
                         offset=info.offset, field=name)
    value = info.subcon.parse(data)
    assert isinstance(value, (int, bytes))
    return value
