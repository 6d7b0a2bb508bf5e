"""The on-disk layout of add-cow headers: the single source of truth (spec: "Header", "v1").

Every header field is declared here exactly once, with its width, byte order, documentation and
the rule IDs that constrain it. Parsing, building, the spec's field tables, the checker's field
offsets and the vector generator's mutations are all derived from these structs (``layout.py``).

Only raw types sit on the parse path (integers and fixed-size byte strings): construct types that
stop at the first violation (``Const``, ``Check``, ``PaddedString``) or hide it (``FlagsEnum``,
``Padding``) would make a checker blind to every later field. Constraints that a single field can
express ride on the field as a ``checks`` entry and are evaluated by ``validate.py``.
"""

from __future__ import annotations

from typing import Any

from construct import Bytes, Int32ub, Int64ub, Renamed, Struct, this

from addcow_ref.format.constants import (
    BITMAP_ALIGNMENT,
    FORMAT_FIELD_LENGTH,
    HEADER_LENGTH_V2,
    MAGIC,
    MAX_CLUSTER_BITS,
    MAX_VIRTUAL_SIZE,
    MIN_CLUSTER_BITS,
    SECTOR_SIZE,
    V1_NAME_FIELD_LENGTH,
    VERSION_1,
    VERSION_2,
)

__all__ = ["HEADER_V1", "HEADER_V2", "field"]


def field(
    name: str,
    subcon: Any,
    doc: str,
    *,
    rules: tuple[str, ...] = (),
    checks: dict[str, Any] | None = None,
    constraint: str = "",
) -> Renamed:
    """Declare one header field.

    The rule IDs, the machine-checkable ``checks`` (rule ID -> construct ``this`` expression over
    the raw header, true when the rule holds) and their human wording ``constraint`` travel with
    the field, so the spec table, the validator and the checker cannot disagree about which rule
    guards which bytes. Every key of ``checks`` is also listed in ``rules``.
    """
    checks = dict(checks or {})
    missing = set(checks) - set(rules)
    if missing:
        raise ValueError(f"field {name}: checks for rules not listed in rules: {sorted(missing)}")
    r = Renamed(subcon, newname=name, newdocs=doc)
    r.rules = tuple(rules)
    r.checks = checks
    r.constraint = constraint
    return r


HEADER_V2 = Struct(
    field("magic", Bytes(8), "File signature, identical in v1 and v2.",
          rules=("HDR-MAGIC",), checks={"HDR-MAGIC": this.magic == MAGIC},
          constraint="41 44 44 5f 43 4f 57 ff (``ADD_COW\\xff``)"),
    field("version", Int32ub, "Format version.",
          rules=("HDR-VERSION",),
          checks={"HDR-VERSION": this.version == VERSION_2},
          constraint="2"),
    field("header_length", Int32ub,
          "Size of the fixed header in bytes; the name area starts here. Readers skip fields "
          "they do not know between byte 128 and header_length.",
          rules=("HDR-LENGTH-MIN", "HDR-LENGTH-BOUND", "READ-HEADER-EXTENSION"),
          checks={"HDR-LENGTH-MIN": this.header_length >= HEADER_LENGTH_V2},
          constraint=">= 128 and <= bitmap_offset"),
    field("incompatible_features", Int64ub,
          "Feature bits a reader must understand; unknown bit set: refuse the image.",
          rules=("FEAT-INCOMPAT-UNKNOWN",), constraint="no unknown bit (none defined in 2.0)"),
    field("compatible_features", Int64ub,
          "Feature bits a reader may ignore. Bit 0: all_allocated.",
          rules=("FEAT-COMPAT-UNKNOWN", "FEAT-ALL-ALLOCATED"), constraint="bit 0 all_allocated"),
    field("autoclear_features", Int64ub,
          "Feature bits a writer that does not know them must clear when it modifies the image.",
          rules=("FEAT-AUTOCLEAR-UNKNOWN",), constraint="none defined in 2.0"),
    field("virtual_size", Int64ub, "Guest disk size in bytes.",
          rules=("HDR-VIRTUAL-SIZE-ALIGN", "HDR-VIRTUAL-SIZE-MAX"),
          checks={"HDR-VIRTUAL-SIZE-ALIGN": this.virtual_size % SECTOR_SIZE == 0,
                  "HDR-VIRTUAL-SIZE-MAX": this.virtual_size <= MAX_VIRTUAL_SIZE},
          constraint="multiple of 512, below 2^63"),
    field("bitmap_offset", Int64ub, "Offset of the COW bitmap; the name area ends here.",
          rules=("HDR-BITMAP-OFFSET-ALIGN", "HDR-BITMAP-OFFSET-MIN"),
          checks={"HDR-BITMAP-OFFSET-ALIGN": this.bitmap_offset % BITMAP_ALIGNMENT == 0,
                  "HDR-BITMAP-OFFSET-MIN": this.bitmap_offset >= BITMAP_ALIGNMENT},
          constraint="multiple of 4096, >= 4096 (default 4096)"),
    field("cluster_bits", Int32ub, "log2 of the cluster size.",
          rules=("HDR-CLUSTER-BITS",),
          checks={"HDR-CLUSTER-BITS": (this.cluster_bits >= MIN_CLUSTER_BITS)
                  & (this.cluster_bits <= MAX_CLUSTER_BITS)},
          constraint="9..21 (default 16: 64 KiB)"),
    field("reserved1", Bytes(4), "Reserved.",
          rules=("HDR-RESERVED",),
          checks={"HDR-RESERVED": this.reserved1 == bytes(4)},
          constraint="all zero"),
    field("image_name_offset", Int32ub, "Offset of the raw image file's name (mandatory).",
          rules=("NAME-BOUNDS", "NAME-OVERLAP"), constraint="inside the name area"),
    field("image_name_length", Int32ub, "Length of the raw image file's name in bytes.",
          rules=("NAME-IMAGE-REQUIRED",),
          checks={"NAME-IMAGE-REQUIRED": this.image_name_length >= 1},
          constraint=">= 1"),
    field("backing_name_offset", Int32ub,
          "Offset of the backing file's name; 0 with length 0: no backing file.",
          rules=("NAME-BOUNDS", "NAME-OVERLAP", "NAME-BACKING-PAIR"),
          constraint="inside the name area, or 0"),
    field("backing_name_length", Int32ub, "Length of the backing file's name in bytes.",
          rules=("NAME-BACKING-PAIR",), constraint="0 if and only if the offset is 0"),
    field("image_format", Bytes(FORMAT_FIELD_LENGTH),
          "Format of the image file: ASCII, NUL-padded.",
          rules=("FMT-IMAGE", "FMT-PADDING"), constraint="``raw``"),
    field("backing_format", Bytes(FORMAT_FIELD_LENGTH),
          "Format of the backing file: ASCII, NUL-padded; empty if and only if there is none.",
          rules=("FMT-BACKING-PRESENCE", "FMT-BACKING-KNOWN", "FMT-PADDING"),
          constraint="``raw``, ``add-cow`` or empty"),
    field("reserved2", Bytes(16), "Reserved.",
          rules=("HDR-RESERVED",),
          checks={"HDR-RESERVED": this.reserved2 == bytes(16)},
          constraint="all zero"),
)

HEADER_V1 = Struct(
    field("magic", Bytes(8), "File signature, identical in v1 and v2.",
          rules=("HDR-MAGIC",), checks={"HDR-MAGIC": this.magic == MAGIC},
          constraint="41 44 44 5f 43 4f 57 ff (``ADD_COW\\xff``)"),
    field("version", Int32ub, "Format version.",
          rules=("HDR-VERSION",),
          checks={"HDR-VERSION": this.version == VERSION_1},
          constraint="1"),
    field("backing_file", Bytes(V1_NAME_FIELD_LENGTH),
          "Backing file name, NUL-padded; empty: no backing file.",
          rules=("V1-NAME-PADDING",), constraint="at most 1023 bytes, NUL-padded"),
    field("image_file", Bytes(V1_NAME_FIELD_LENGTH), "Raw image file name, NUL-padded.",
          rules=("V1-NAME-PADDING", "V1-IMAGE-NAME"),
          constraint="1 to 1023 bytes, NUL-padded"),
    field("reserved", Bytes(500), "Reserved; pads the header to 2560 bytes.",
          rules=("V1-RESERVED",),
          checks={"V1-RESERVED": this.reserved == bytes(500)},
          constraint="all zero"),
)
