"""The typed header records (``addcow_ref.format.header``) against the schema's field table.

``HeaderV2`` and ``HeaderV1`` spell their field names out so that mypy sees real attributes; the
schema is still the one source of the layout, so these tests hold the two together: same names,
same order, and each attribute's Python type is what the field's construct subcon parses to.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest
from construct import Bytes, FormatField, Int32ub, Struct

from addcow_ref.format.header import (
    HeaderV1,
    HeaderV2,
    build_header,
    parse_header,
    parse_header_v1,
    read_version,
)
from addcow_ref.format.layout import field_table
from addcow_ref.format.schema import HEADER_V1, HEADER_V2, field

MODELS = [pytest.param(HeaderV2, HEADER_V2, id="v2"), pytest.param(HeaderV1, HEADER_V1, id="v1")]


def _subcon_type(subcon: Any) -> type:
    if isinstance(subcon, FormatField):
        return int
    if isinstance(subcon, Bytes):
        return bytes
    raise AssertionError(f"no Python type known for {subcon!r}")


def _mismatches(cls: type, struct: Struct) -> list[str]:
    """How the record's schema attributes differ from the struct's field table."""
    hints = typing.get_type_hints(cls)
    attrs = [f for f in dataclasses.fields(cls) if f.metadata.get("schema_field", True)]
    names = [f.name for f in attrs]
    table = field_table(struct)
    out = []
    if names != [i.name for i in table]:
        out.append(f"names {names} != schema {[i.name for i in table]}")
    for info in table:
        if info.name in hints and hints[info.name] is not _subcon_type(info.subcon):
            out.append(f"{info.name}: {hints[info.name]} != {_subcon_type(info.subcon)}")
    return out


@pytest.mark.parametrize(("cls", "struct"), MODELS)
def test_record_attributes_are_the_schema_fields(cls: type, struct: Struct) -> None:
    assert _mismatches(cls, struct) == []


def test_a_schema_field_the_record_lacks_is_a_mismatch() -> None:
    grown = Struct(*HEADER_V2.subcons, field("new_field", Int32ub, "A field added later."))
    assert _mismatches(HeaderV2, grown) == [
        f"names {[i.name for i in field_table(HEADER_V2)]} != schema "
        f"{[i.name for i in field_table(grown)]}"]


def test_a_retyped_field_is_a_mismatch() -> None:
    subcons = [field("version", Bytes(4), "Retyped.") if sc.name == "version" else sc
               for sc in HEADER_V2.subcons]
    assert _mismatches(HeaderV2, Struct(*subcons)) == [
        f"version: {int} != {bytes}"]


@pytest.mark.parametrize(("cls", "struct"), MODELS)
def test_parsed_values_have_the_declared_types(cls: type, struct: Struct) -> None:
    parse = parse_header if cls is HeaderV2 else parse_header_v1
    header = parse(bytes(range(256)) * 10)
    hints = typing.get_type_hints(cls)
    for name, value in header.as_dict().items():
        assert isinstance(value, hints[name]), name


def test_equality_hash_repr_and_replace() -> None:
    raw = bytes(range(128))
    a, b = parse_header(raw), parse_header(raw)
    assert a == b
    assert hash(a) == hash(b)
    assert repr(a).startswith("HeaderV2(magic=b'\\x00\\x01")
    c = a.replace(cluster_bits=12)
    assert c != a
    assert c.cluster_bits == 12
    assert c.cluster_size == 4096
    assert c.replace(cluster_bits=a.cluster_bits) == a
    with pytest.raises(TypeError, match="cluster_bitz"):
        a.replace(cluster_bitz=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.cluster_bits = 1  # type: ignore[misc]


def test_from_values_names_missing_and_unknown_fields() -> None:
    values = parse_header(bytes(128)).as_dict()
    assert HeaderV2.from_values({**values, "_io": None}) == parse_header(bytes(128))
    del values["reserved2"]
    with pytest.raises(TypeError, match="reserved2"):
        HeaderV2.from_values(values)
    with pytest.raises(TypeError, match="bogus"):
        HeaderV2.from_values({**parse_header(bytes(128)).as_dict(), "bogus": 1})
    assert build_header(**parse_header(bytes(128)).as_dict()) == bytes(128)


def test_v1_geometry_and_names() -> None:
    raw = bytearray(2560)
    raw[12:20] = b"back.raw"
    raw[1036:1042] = b"im.raw"
    header = parse_header_v1(bytes(raw))
    assert (header.image_name, header.backing_name) == (b"im.raw", b"back.raw")
    assert (header.cluster_bits, header.bitmap_offset, header.header_length) == (16, 2560, 2560)
    with pytest.raises(ValueError, match="with_image_length"):
        _ = header.virtual_size
    sized = header.with_image_length(70000)
    assert sized.virtual_size == 69632
    assert (sized.cluster_count, sized.bitmap_length, sized.cluster_size) == (2, 1, 65536)
    assert sized == header, "the virtual size is not part of the header's bytes"
    assert "known_virtual_size" not in repr(sized)
    assert sized.replace(reserved=bytes(500)).virtual_size == 69632


def test_v2_derived_values() -> None:
    h = parse_header(bytes(128)).replace(virtual_size=9 * 512 + 1, cluster_bits=9,
                                         backing_name_length=3, image_format=b"raw\0" * 4)
    assert (h.cluster_count, h.bitmap_length, h.has_backing) == (10, 2, True)
    assert h.image_format_name == "raw"
    assert h.backing_format_name == ""
    assert read_version(h.build()) == 0
    assert read_version(b"ADD_COW") is None
