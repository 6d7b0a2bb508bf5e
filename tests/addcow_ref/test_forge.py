"""The forging API (``addcow_ref.format.forge``) and the one-field codec of ``layout.py``.

Round trips (forge -> build -> parse, encode -> decode, set_field -> read back) and the errors a
hand-made image needs: every one names the field, and a failed ``set_field`` leaves the file as
it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addcow_ref.format.constants import DEFAULT_BITMAP_OFFSET, MAGIC, VERSION_1, VERSION_2
from addcow_ref.format.errors import FieldError, TruncatedError
from addcow_ref.format.forge import (
    defaults,
    fields_of,
    forge_v1,
    forge_v2,
    list_fields,
    name_fields,
    read_header,
    set_field,
)
from addcow_ref.format.header import parse_header, parse_header_v1
from addcow_ref.format.layout import decode_field, encode_field, field_info, field_table
from addcow_ref.format.schema import HEADER_V1, HEADER_V2
from addcow_ref.format.validate import check_fields

from ..strategies import header_values

STRUCTS = [pytest.param(HEADER_V2, id="v2"), pytest.param(HEADER_V1, id="v1")]


def test_the_default_v2_header_is_the_schemas() -> None:
    h = forge_v2()
    assert h.as_dict() == defaults(HEADER_V2)
    assert (h.magic, h.version, h.bitmap_offset) == (MAGIC, VERSION_2, DEFAULT_BITMAP_OFFSET)
    assert h.image_format_name == "raw"
    assert not h.has_backing
    # Only the image name is missing for a conforming header.
    assert [v.rule_id for v in check_fields(h)] == ["NAME-IMAGE-REQUIRED"]
    assert check_fields(forge_v2(image_name_length=9)) == []


def test_the_default_v1_header_is_the_schemas() -> None:
    h = forge_v1(image_file=b"v1.raw", known_virtual_size=512)
    assert (h.magic, h.version, h.image_name, h.backing_name) == (MAGIC, VERSION_1, b"v1.raw", b"")
    assert h.virtual_size == 512
    assert h.as_dict()["reserved"] == bytes(500)
    assert parse_header_v1(h.build()) == h


@given(values=header_values(HEADER_V2))
def test_forging_every_field_round_trips_through_the_bytes(values: dict[str, Any]) -> None:
    h = forge_v2(**values)
    assert h.as_dict() == values
    assert parse_header(h.build()) == h


@pytest.mark.parametrize("struct", STRUCTS)
@given(data=st.data())
def test_encode_and_decode_one_field_agree_with_the_whole_header(
        struct: Any, data: st.DataObject) -> None:
    values = data.draw(header_values(struct))
    raw = (forge_v2 if struct is HEADER_V2 else forge_v1)(**values).build()
    for info in field_table(struct):
        chunk = encode_field(struct, info.name, values[info.name])
        assert chunk == raw[info.offset:info.end]
        assert decode_field(struct, info.name, chunk) == values[info.name]


def test_short_byte_values_are_nul_padded() -> None:
    h = forge_v2(backing_format=b"add-cow", reserved1=b"")
    assert h.backing_format == b"add-cow".ljust(16, b"\0")
    assert h.reserved1 == bytes(4)


@pytest.mark.parametrize(("overrides", "field", "words"), [
    ({"cluster_bitz": 9}, "cluster_bitz", "no header field"),
    ({"version": 1 << 32}, "version", "does not fit in 4 bytes"),
    ({"virtual_size": -1}, "virtual_size", "does not fit in 8 bytes"),
    ({"image_format": b"x" * 17}, "image_format", "is 16 bytes long, not 17"),
    ({"magic": 7}, "magic", "wants bytes, not int"),
    ({"cluster_bits": b"\x10"}, "cluster_bits", "wants int, not bytes"),
    ({"compatible_features": True}, "compatible_features", "not bool"),
])
def test_bad_overrides_name_the_field(overrides: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(FieldError) as excinfo:
        forge_v2(**overrides)
    assert excinfo.value.field == field
    assert f"({field})" in str(excinfo.value)
    assert words in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


def test_decode_field_refuses_a_wrong_length() -> None:
    with pytest.raises(FieldError, match=r"\(version\).*4 bytes long, not 3"):
        decode_field(HEADER_V2, "version", b"\0\0\2")


def test_name_fields_packs_the_names_after_the_header() -> None:
    assert name_fields(b"image.raw", b"backing.raw") == {
        "image_name_offset": 128, "image_name_length": 9,
        "backing_name_offset": 137, "backing_name_length": 11}
    assert name_fields(b"i", None, start=200) == {
        "image_name_offset": 200, "image_name_length": 1,
        "backing_name_offset": 0, "backing_name_length": 0}


def _v2_file(tmp_path: Path) -> Path:
    path = tmp_path / "img.add-cow"
    header = forge_v2(virtual_size=1 << 20, **name_fields(b"image.raw"))
    path.write_bytes(header.build().ljust(4096, b"\0") + b"\x01\x02")
    return path


def test_set_field_writes_exactly_that_fields_bytes(tmp_path: Path) -> None:
    path = _v2_file(tmp_path)
    before = path.read_bytes()
    written = set_field(path, "cluster_bits", 12)
    after = path.read_bytes()
    info = field_info(HEADER_V2, "cluster_bits")
    assert (written.offset, written.size, written.value) == (info.offset, info.size, 12)
    assert after[:info.offset] == before[:info.offset]
    assert after[info.end:] == before[info.end:]
    assert after[info.offset:info.end] == (12).to_bytes(4, "big")
    assert read_header(path) == parse_header(before).replace(cluster_bits=12)


def test_set_field_detects_v1_and_accepts_an_explicit_schema(tmp_path: Path) -> None:
    path = tmp_path / "v1.add-cow"
    path.write_bytes(forge_v1(image_file=b"v1.raw").build())
    set_field(path, "backing_file", b"base.raw")
    assert read_header(path) == forge_v1(image_file=b"v1.raw", backing_file=b"base.raw")
    with pytest.raises(FieldError, match="no header field 'cluster_bits'"):
        set_field(path, "cluster_bits", 9)
    set_field(path, "version", VERSION_2, struct=HEADER_V2)
    assert read_header(path).version == VERSION_2


@pytest.mark.parametrize(("name", "value", "words"), [
    ("cluster_bitz", 9, "no header field 'cluster_bitz'"),
    ("cluster_bits", 1 << 32, "does not fit"),
    ("image_format", b"x" * 17, "16 bytes long"),
])
def test_a_failed_set_field_names_file_and_field_and_changes_nothing(
        tmp_path: Path, name: str, value: Any, words: str) -> None:
    path = _v2_file(tmp_path)
    before = path.read_bytes()
    with pytest.raises(FieldError) as excinfo:
        set_field(path, name, value)
    text = str(excinfo.value)
    assert str(path) in text
    assert f"({name})" in text
    assert words in text
    assert path.read_bytes() == before


def test_set_field_refuses_a_file_shorter_than_the_field(tmp_path: Path) -> None:
    path = tmp_path / "short.add-cow"
    path.write_bytes(forge_v2().build()[:60])
    set_field(path, "virtual_size", 512)  # bytes 40..47: inside the file
    with pytest.raises(TruncatedError, match=r"\(backing_format\).*60 bytes long"):
        set_field(path, "backing_format", b"raw")
    assert path.read_bytes() == forge_v2(virtual_size=512).build()[:60]
    path.write_bytes(MAGIC)
    with pytest.raises(TruncatedError, match="version field"):
        set_field(path, "virtual_size", 512)


@pytest.mark.parametrize("struct", STRUCTS)
def test_list_fields_shows_every_field_from_the_table(tmp_path: Path, struct: Any) -> None:
    path = tmp_path / "x.add-cow"
    header = forge_v2(virtual_size=4096) if struct is HEADER_V2 else forge_v1(image_file=b"a")
    path.write_bytes(header.build())
    views = list_fields(path)
    assert views == fields_of(header)
    assert [(v.name, v.offset, v.size, v.ctype) for v in views] == [
        (i.name, i.offset, i.size, i.ctype) for i in field_table(struct)]
    assert [v.value for v in views] == list(header.as_dict().values())
