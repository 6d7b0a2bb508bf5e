"""The on-disk layout of add-cow headers: the single source of truth (spec: "Header", "v1").

Every header field is declared here exactly once, with its width, byte order, documentation and
the rule IDs that constrain it. Parsing, building, the spec's field tables, the checker's field
offsets and the vector generator's mutations are all derived from these structs (``layout.py``).

Only raw types sit on the parse path (integers and fixed-size byte strings): construct types that
stop at the first violation (``Const``, ``Check``, ``PaddedString``) or hide it (``FlagsEnum``,
``Padding``) would make a checker blind to every later field. Constraints that a single field can
express ride on the field as a ``checks`` entry and are evaluated by ``validate.py``.

Each field also carries its ``default``: together they are the default header that
``forge.py`` starts from when it builds a header from a few named values, so neither the writer
(``ops/create.py``) nor a test or vector generator spells out every field again. Constraint
prose is formatted from ``constants.py``, never retyped.
"""

from __future__ import annotations

import enum
from typing import Any

from construct import Bytes, Int32ub, Int64ub, Renamed, Struct, this

from addcow_ref.format.constants import (
    BITMAP_ALIGNMENT,
    DEFAULT_BITMAP_OFFSET,
    DEFAULT_CLUSTER_BITS,
    FORMAT_ADD_COW,
    FORMAT_FIELD_LENGTH,
    FORMAT_RAW,
    HEADER_LENGTH_V1,
    HEADER_LENGTH_V2,
    MAGIC,
    MAX_CLUSTER_BITS,
    MAX_VIRTUAL_SIZE,
    MIN_CLUSTER_BITS,
    SECTOR_SIZE,
    V1_NAME_FIELD_LENGTH,
    VERSION_1,
    VERSION_2,
    AutoclearFeature,
    CompatibleFeature,
    IncompatibleFeature,
)

__all__ = ["HEADER_V1", "HEADER_V2", "FieldValue", "field"]

#: A field value as construct parses it: integers for ``IntNNub``, bytes for ``Bytes(n)``.
FieldValue = int | bytes


def field(
    name: str,
    subcon: Any,
    doc: str,
    *,
    default: FieldValue | None = None,
    rules: tuple[str, ...] = (),
    checks: dict[str, Any] | None = None,
    constraint: str = "",
) -> Renamed:
    """Declare one header field.

    The rule IDs, the machine-checkable ``checks`` (rule ID -> construct ``this`` expression over
    the raw header, true when the rule holds) and their human wording ``constraint`` travel with
    the field, so the spec table, the validator and the checker cannot disagree about which rule
    guards which bytes. Every key of ``checks`` is also listed in ``rules``.

    ``default`` is the field's value in a freshly forged header (``forge.py``); omitted, it is
    zero (all-zero bytes for a byte field). The defaults of all fields together are the one
    declaration of "the default header": every writer and test forger starts from them.
    """
    checks = dict(checks or {})
    missing = set(checks) - set(rules)
    if missing:
        raise ValueError(f"field {name}: checks for rules not listed in rules: {sorted(missing)}")
    if default is None:
        default = bytes(subcon.sizeof()) if isinstance(subcon, Bytes) else 0
    if len(subcon.build(default)) != subcon.sizeof():
        raise ValueError(f"field {name}: default {default!r} is not {subcon.sizeof()} bytes")
    r = Renamed(subcon, newname=name, newdocs=doc)
    r.rules = tuple(rules)
    r.checks = checks
    r.constraint = constraint
    r.default = default
    return r


def _padded(text: str, length: int = FORMAT_FIELD_LENGTH) -> bytes:
    return text.encode("ascii").ljust(length, b"\0")


def _literal(text: str) -> str:
    return f"``{text}``"


#: The magic as the spec shows it: hex bytes, then the text with the non-ASCII byte escaped.
_MAGIC_PROSE = f"{MAGIC.hex(' ')} ({_literal(MAGIC.decode('ascii', 'backslashreplace'))})"
#: The v1 name fields hold at most this many bytes: at least one NUL pads every name.
_V1_NAME_MAX = V1_NAME_FIELD_LENGTH - 1
#: The v1 reserved field pads magic, version and the two names to the v1 header length.
_V1_RESERVED_LENGTH = HEADER_LENGTH_V1 - (len(MAGIC) + 4 + 2 * V1_NAME_FIELD_LENGTH)


def _bits(flags: type[enum.IntFlag]) -> str:
    """The defined bits of a feature word, as the field table lists them."""
    return ", ".join(f"bit {int(m).bit_length() - 1} {(m.name or '').lower()}"
                     for m in flags) or "none defined in 2.0"


HEADER_V2 = Struct(
    field("magic", Bytes(len(MAGIC)), "File signature, identical in v1 and v2.",
          rules=("HDR-MAGIC",), checks={"HDR-MAGIC": this.magic == MAGIC},
          default=MAGIC, constraint=_MAGIC_PROSE),
    field("version", Int32ub, "Format version.",
          rules=("HDR-VERSION",),
          checks={"HDR-VERSION": this.version == VERSION_2},
          default=VERSION_2, constraint=str(VERSION_2)),
    field("header_length", Int32ub,
          "Size of the fixed header in bytes; the name area starts here. Readers skip fields "
          f"they do not know between byte {HEADER_LENGTH_V2} and header_length.",
          rules=("HDR-LENGTH-MIN", "HDR-LENGTH-BOUND", "READ-HEADER-EXTENSION",
                 "HDR-LENGTH-MULTIPLE", "HDR-EXTENSION-KEEP"),
          checks={"HDR-LENGTH-MIN": this.header_length >= HEADER_LENGTH_V2},
          default=HEADER_LENGTH_V2, constraint=f">= {HEADER_LENGTH_V2} and <= bitmap_offset"),
    field("incompatible_features", Int64ub,
          "Feature bits a reader must understand; unknown bit set: refuse the image.",
          rules=("FEAT-INCOMPAT-UNKNOWN",),
          constraint=f"no unknown bit ({_bits(IncompatibleFeature)})"),
    field("compatible_features", Int64ub,
          "Feature bits a reader may ignore. Bit 0: all_allocated.",
          rules=("FEAT-COMPAT-UNKNOWN", "FEAT-ALL-ALLOCATED", "FEAT-ALL-ALLOCATED-SET",
                 "FEAT-COMPAT-KEEP", "READ-BACKING-SKIP"),
          constraint=_bits(CompatibleFeature)),
    field("autoclear_features", Int64ub,
          "Feature bits a writer that does not know them must clear when it modifies the image.",
          rules=("FEAT-AUTOCLEAR-UNKNOWN", "FEAT-AUTOCLEAR-DURABLE"),
          constraint=_bits(AutoclearFeature)),
    field("virtual_size", Int64ub, "Guest disk size in bytes.",
          rules=("HDR-VIRTUAL-SIZE-ALIGN", "HDR-VIRTUAL-SIZE-MAX", "IMG-SIZE", "IMG-LENGTH"),
          checks={"HDR-VIRTUAL-SIZE-ALIGN": this.virtual_size % SECTOR_SIZE == 0,
                  "HDR-VIRTUAL-SIZE-MAX": this.virtual_size <= MAX_VIRTUAL_SIZE},
          constraint=f"multiple of {SECTOR_SIZE}, below 2^{MAX_VIRTUAL_SIZE.bit_length()}"),
    field("bitmap_offset", Int64ub, "Offset of the COW bitmap; the name area ends here.",
          rules=("HDR-BITMAP-OFFSET-ALIGN", "HDR-BITMAP-OFFSET-MIN"),
          checks={"HDR-BITMAP-OFFSET-ALIGN": this.bitmap_offset % BITMAP_ALIGNMENT == 0,
                  "HDR-BITMAP-OFFSET-MIN": this.bitmap_offset >= BITMAP_ALIGNMENT},
          default=DEFAULT_BITMAP_OFFSET,
          constraint=(f"multiple of {BITMAP_ALIGNMENT}, >= {BITMAP_ALIGNMENT} "
                      f"(default {DEFAULT_BITMAP_OFFSET})")),
    field("cluster_bits", Int32ub, "log2 of the cluster size.",
          rules=("HDR-CLUSTER-BITS",),
          checks={"HDR-CLUSTER-BITS": (this.cluster_bits >= MIN_CLUSTER_BITS)
                  & (this.cluster_bits <= MAX_CLUSTER_BITS)},
          default=DEFAULT_CLUSTER_BITS,
          constraint=(f"{MIN_CLUSTER_BITS}..{MAX_CLUSTER_BITS} (default {DEFAULT_CLUSTER_BITS}: "
                      f"{(1 << DEFAULT_CLUSTER_BITS) >> 10} KiB)")),
    field("reserved1", Bytes(4), "Reserved.",
          rules=("HDR-RESERVED",),
          checks={"HDR-RESERVED": this.reserved1 == bytes(4)},
          constraint="all zero"),
    field("image_name_offset", Int32ub, "Offset of the raw image file's name (mandatory).",
          rules=("NAME-BOUNDS", "NAME-OVERLAP", "NAME-NO-NUL", "NAME-CONFINED", "IMG-EXISTS",
                 "IMG-FILE-TYPE", "IMG-IDENTITY"),
          default=HEADER_LENGTH_V2, constraint="inside the name area"),
    field("image_name_length", Int32ub, "Length of the raw image file's name in bytes.",
          rules=("NAME-IMAGE-REQUIRED",),
          checks={"NAME-IMAGE-REQUIRED": this.image_name_length >= 1},
          constraint=">= 1"),
    field("backing_name_offset", Int32ub,
          "Offset of the backing file's name; 0 with length 0: no backing file.",
          rules=("NAME-BOUNDS", "NAME-OVERLAP", "NAME-BACKING-PAIR", "NAME-NO-NUL", "NAME-CONFINED",
                 "BACK-EXISTS", "BACK-LOOP", "BACK-DEPTH"),
          constraint="inside the name area, or 0"),
    field("backing_name_length", Int32ub, "Length of the backing file's name in bytes.",
          rules=("NAME-BACKING-PAIR",), constraint="0 if and only if the offset is 0"),
    field("image_format", Bytes(FORMAT_FIELD_LENGTH),
          "Format of the image file: ASCII, NUL-padded.",
          rules=("FMT-IMAGE", "FMT-PADDING", "FMT-CASE"), default=_padded(FORMAT_RAW),
          constraint=_literal(FORMAT_RAW)),
    field("backing_format", Bytes(FORMAT_FIELD_LENGTH),
          "Format of the backing file: ASCII, NUL-padded; empty if and only if there is none.",
          rules=("FMT-BACKING-PRESENCE", "FMT-BACKING-KNOWN", "FMT-PADDING", "FMT-CASE",
                 "BACK-FORMAT", "READ-NO-PROBE"),
          constraint=f"{_literal(FORMAT_RAW)}, {_literal(FORMAT_ADD_COW)} or empty"),
    field("reserved2", Bytes(16), "Reserved.",
          rules=("HDR-RESERVED",),
          checks={"HDR-RESERVED": this.reserved2 == bytes(16)},
          constraint="all zero"),
)

HEADER_V1 = Struct(
    field("magic", Bytes(len(MAGIC)), "File signature, identical in v1 and v2.",
          rules=("HDR-MAGIC",), checks={"HDR-MAGIC": this.magic == MAGIC},
          default=MAGIC, constraint=_MAGIC_PROSE),
    field("version", Int32ub, "Format version.",
          rules=("HDR-VERSION",),
          checks={"HDR-VERSION": this.version == VERSION_1},
          default=VERSION_1, constraint=str(VERSION_1)),
    field("backing_file", Bytes(V1_NAME_FIELD_LENGTH),
          "Backing file name, NUL-padded; empty: no backing file.",
          rules=("V1-NAME-PADDING",), constraint=f"at most {_V1_NAME_MAX} bytes, NUL-padded"),
    field("image_file", Bytes(V1_NAME_FIELD_LENGTH), "Raw image file name, NUL-padded.",
          rules=("V1-NAME-PADDING", "V1-IMAGE-NAME"),
          constraint=f"1 to {_V1_NAME_MAX} bytes, NUL-padded"),
    field("reserved", Bytes(_V1_RESERVED_LENGTH),
          f"Reserved; pads the header to {HEADER_LENGTH_V1} bytes.",
          rules=("V1-RESERVED",),
          checks={"V1-RESERVED": this.reserved == bytes(_V1_RESERVED_LENGTH)},
          constraint="all zero"),
)
