"""Round trips and error reporting of the header schemas (spec: "Header", "Legacy version 1").

The properties are the ones construct's own test-suite checks for every construct
(``build(parse(data)) == data`` and ``parse(build(obj)) == obj``), applied to our headers with
values drawn from the field table, plus the typed errors the public API promises.
"""

from __future__ import annotations

from typing import Any

import pytest
from construct import Struct
from hypothesis import given
from hypothesis import strategies as st

from addcow_ref.format.constants import HEADER_LENGTH_V1, HEADER_LENGTH_V2, MAGIC
from addcow_ref.format.errors import FormatError, TruncatedError
from addcow_ref.format.header import HeaderV1, HeaderV2, parse_header, parse_header_v1
from addcow_ref.format.layout import field_table
from addcow_ref.format.schema import HEADER_V1, HEADER_V2
from addcow_ref.format.validate import check_fields

from ..strategies import conforming_header_v2_values, header_values, max_value

VERSIONS = [
    pytest.param(HEADER_V2, HeaderV2, parse_header, HEADER_LENGTH_V2, id="v2"),
    pytest.param(HEADER_V1, HeaderV1, parse_header_v1, HEADER_LENGTH_V1, id="v1"),
]


def test_header_sizes_are_the_specs() -> None:
    assert HEADER_V2.sizeof() == HEADER_LENGTH_V2 == 128
    assert HEADER_V1.sizeof() == HEADER_LENGTH_V1 == 2560


@pytest.mark.parametrize(("struct", "cls", "parse", "length"), VERSIONS)
@given(data=st.data())
def test_any_value_set_builds_to_the_header_length_and_parses_back(
        struct: Struct, cls: Any, parse: Any, length: int, data: st.DataObject) -> None:
    values = data.draw(header_values(struct))
    raw = cls.from_values(values).build()
    assert len(raw) == length
    parsed = parse(raw)
    assert parsed.as_dict() == values
    assert parsed == cls.from_values(values)


@pytest.mark.parametrize(("struct", "cls", "parse", "length"), VERSIONS)
@given(data=st.data())
def test_any_bytes_parse_and_build_back_identically(
        struct: Struct, cls: Any, parse: Any, length: int, data: st.DataObject) -> None:
    raw = data.draw(st.binary(min_size=length, max_size=length))
    assert parse(raw).build() == raw


@given(values=conforming_header_v2_values())
def test_conforming_strategy_passes_every_field_check(values: dict[str, Any]) -> None:
    """The conforming strategy must really conform, or tests built on it prove nothing."""
    assert check_fields(HeaderV2.from_values(values)) == []


@given(values=header_values(HEADER_V2), offset=st.integers(0, HEADER_LENGTH_V2 - 1))
def test_each_field_decodes_from_its_offset(values: dict[str, Any], offset: int) -> None:
    """Byte ``offset`` of the built header belongs to the field the table places there."""
    raw = HeaderV2.from_values(values).build()
    info = next(f for f in field_table(HEADER_V2) if f.offset <= offset < f.offset + f.size)
    chunk = raw[info.offset:info.offset + info.size]
    value = int.from_bytes(chunk, "big") if info.is_integer else chunk
    assert value == values[info.name]


def _v2_values() -> dict[str, Any]:
    return parse_header(MAGIC + (2).to_bytes(4, "big") + bytes(116)).as_dict()


_EVERY_FIELD = [pytest.param(cls, parse, info, id=f"{tag}-{info.name}")
                for tag, struct, cls, parse in [("v2", HEADER_V2, HeaderV2, parse_header),
                                                ("v1", HEADER_V1, HeaderV1, parse_header_v1)]
                for info in field_table(struct)]


@pytest.mark.parametrize(("cls", "parse", "info"), _EVERY_FIELD)
def test_building_an_out_of_range_value_names_the_field(cls: Any, parse: Any, info: Any) -> None:
    values = parse(bytes(cls._struct.sizeof())).as_dict()
    values[info.name] = max_value(info) + 1 if info.is_integer else bytes(info.size - 1)
    with pytest.raises(FormatError) as excinfo:
        cls.from_values(values).build()
    assert info.name in str(excinfo.value)


@pytest.mark.parametrize(("field", "bad"), [("version", 2**32), ("magic", b"ADD_COW")])
def test_building_the_reviewed_bad_values_names_the_field(field: str, bad: object) -> None:
    values = _v2_values()
    values[field] = bad
    with pytest.raises(FormatError, match=field):
        HeaderV2.from_values(values).build()


def test_building_a_negative_integer_is_a_format_error() -> None:
    values = _v2_values()
    values["cluster_bits"] = -1
    with pytest.raises(FormatError, match="cluster_bits"):
        HeaderV2.from_values(values).build()


@pytest.mark.parametrize(("parse", "length"), [(parse_header, 128), (parse_header_v1, 2560)],
                         ids=["v2", "v1"])
@given(data=st.data())
def test_truncated_headers_raise_truncated_error_at_the_end_of_the_data(
        parse: Any, length: int, data: st.DataObject) -> None:
    size = data.draw(st.integers(0, length - 1))
    raw = data.draw(st.binary(min_size=size, max_size=size))
    with pytest.raises(TruncatedError) as excinfo:
        parse(raw, file="img.add-cow")
    err = excinfo.value
    assert err.offset == size
    assert err.file == "img.add-cow"
    assert err.rule_id == "HDR-COMPLETE"
    text = str(err)
    assert f"{size} bytes" in text
    assert str(length) in text
    assert "img.add-cow" in text


def test_a_foreign_short_file_says_what_and_where(tmp_path: Any) -> None:
    """A 16-byte file that is not add-cow at all: the error names the file and byte 16."""
    path = tmp_path / "notes.txt"
    path.write_bytes(b"just a text file")
    with path.open("rb") as f, pytest.raises(TruncatedError) as excinfo:
        parse_header(f, file=str(path))
    assert excinfo.value.offset == 16
    assert str(path) in str(excinfo.value)
    assert "0x10" in str(excinfo.value)


def test_truncated_error_is_a_format_error() -> None:
    """Callers that catch FormatError also catch truncation; nothing bare leaks out."""
    with pytest.raises(FormatError):
        parse_header(b"ADD_COW\xff")
