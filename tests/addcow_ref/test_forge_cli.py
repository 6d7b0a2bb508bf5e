"""``addcow inspect`` and ``addcow set-field`` (``addcow_ref.cli.forge``), invoked directly.

The commands are not registered in the ``addcow`` group by their module, so CliRunner runs the
click commands themselves. Offsets and sizes are compared with the schema's field table, and
every error must be one line naming the file and the field, with the file left unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import Result

from addcow_ref.cli.forge import inspect, parse_value, printable, set_field
from addcow_ref.format.forge import forge_v1, forge_v2, name_fields, read_header
from addcow_ref.format.layout import field_table
from addcow_ref.format.schema import HEADER_V1, HEADER_V2
from tests.click_runner import cli_runner


def _run(command: click.Command, *args: str) -> Result:
    return cli_runner().invoke(command, list(args), catch_exceptions=False)


def _one_line_error(result: Result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def v2(tmp_path: Path) -> Path:
    path = tmp_path / "img.add-cow"
    header = forge_v2(virtual_size=1 << 20, backing_format=b"r\naw",
                      **name_fields(b"image.raw", b"base.raw"))
    path.write_bytes((header.build() + b"image.rawbase.raw").ljust(4096, b"\0") + bytes(2))
    return path


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    path = tmp_path / "v1.add-cow"
    path.write_bytes(forge_v1(image_file=b"v1.raw", backing_file=b"base.raw").build() + b"\0")
    return path


def _json(path: Path) -> dict[str, Any]:
    result = _run(inspect, "--output=json", str(path))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize(("fixture", "struct", "version"),
                         [("v2", HEADER_V2, 2), ("v1", HEADER_V1, 1)])
def test_inspect_human_lists_every_field_at_its_offset(
        request: pytest.FixtureRequest, fixture: str, struct: Any, version: int) -> None:
    path: Path = request.getfixturevalue(fixture)
    result = _run(inspect, str(path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{path}: add-cow version {version} header, {struct.sizeof()} bytes"
    rows = lines[2:]
    assert len(rows) == len(field_table(struct))
    for row, info in zip(rows, field_table(struct), strict=True):
        assert row.startswith(f"0x{info.offset:04x} ({info.offset:>4})")
        assert row[16:].split()[:2] == [str(info.size), info.name]


def test_inspect_human_shows_ints_in_both_bases_and_bytes_as_hex_and_text(v2: Path) -> None:
    out = _run(inspect, str(v2)).output
    assert "virtual_size           1048576 (0x100000)" in out
    assert '41 44 44 5f 43 4f 57 ff  "ADD_COW\\xff"' in out
    assert '72 0a 61 77 (+12 zero bytes)  "r\\x0aaw"' in out, "control bytes are escaped"
    assert "reserved2              (16 zero bytes)" in out


def test_inspect_v1_abbreviates_the_name_padding(v1: Path) -> None:
    out = _run(inspect, str(v1)).output
    assert '76 31 2e 72 61 77 (+1018 zero bytes)  "v1.raw"' in out
    assert "(500 zero bytes)" in out


@pytest.mark.parametrize(("fixture", "struct"), [("v2", HEADER_V2), ("v1", HEADER_V1)])
def test_inspect_json_is_the_field_table_with_values(
        request: pytest.FixtureRequest, fixture: str, struct: Any) -> None:
    path: Path = request.getfixturevalue(fixture)
    doc = _json(path)
    assert doc["header_size"] == struct.sizeof()
    header = read_header(path).as_dict()
    for entry, info in zip(doc["fields"], field_table(struct), strict=True):
        assert (entry["name"], entry["offset"], entry["size"], entry["type"]) == (
            info.name, info.offset, info.size, info.ctype)
        value = header[info.name]
        if isinstance(value, int):
            assert entry["value"] == value
            assert entry["text"] is None
        else:
            assert bytes.fromhex(entry["value"]) == value
            assert entry["text"] == printable(value)


def test_set_field_round_trips_through_inspect(v2: Path) -> None:
    result = _run(set_field, str(v2), "cluster_bits", "0x9")
    assert result.output == f"{v2}: cluster_bits at 0x38 (4 bytes) = 9 (0x9)\n"
    assert _run(set_field, str(v2), "virtual_size", "4096").exit_code == 0
    assert _run(set_field, str(v2), "backing_format", "0x61 64 64 2d 63 6f 77").exit_code == 0
    fields = {f["name"]: f for f in _json(v2)["fields"]}
    assert fields["cluster_bits"]["value"] == 9
    assert fields["virtual_size"]["value"] == 4096
    assert fields["backing_format"]["text"] == "add-cow"
    assert read_header(v2).backing_format == b"add-cow".ljust(16, b"\0")


def test_set_field_on_v1_uses_the_v1_layout(v1: Path) -> None:
    assert _run(set_field, str(v1), "image_file", b"other.raw".hex()).exit_code == 0
    header = read_header(v1)
    assert header.version == 1
    assert header.as_dict()["image_file"].rstrip(b"\0") == b"other.raw"


@pytest.mark.parametrize(("field", "value", "words"), [
    ("cluster_bitz", "9", ["(cluster_bitz)", "no header field", "cluster_bits"]),
    ("cluster_bits", "nine", ["cluster_bits", "not a decimal or 0x-hex integer"]),
    ("cluster_bits", "1e3", ["cluster_bits", "not a decimal or 0x-hex integer"]),
    ("version", "0x100000000", ["(version)", "does not fit in 4 bytes"]),
    ("image_format", "zz", ["image_format", "not hex bytes"]),
    ("image_format", "00" * 17, ["(image_format)", "16 bytes long, not 17"]),
])
def test_set_field_errors_are_one_line_and_change_nothing(
        v2: Path, field: str, value: str, words: list[str]) -> None:
    before = v2.read_bytes()
    _one_line_error(_run(set_field, str(v2), field, value), str(v2), *words)
    assert v2.read_bytes() == before


def test_missing_and_truncated_files_are_one_line_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.add-cow"
    _one_line_error(_run(inspect, str(missing)), str(missing), "No such file")
    _one_line_error(_run(set_field, str(missing), "version", "2"), str(missing), "No such file")
    short = tmp_path / "short.add-cow"
    short.write_bytes(forge_v2().build()[:20])
    _one_line_error(_run(inspect, str(short)), str(short), "20 bytes")
    _one_line_error(_run(set_field, str(short), "reserved2", "00"), str(short), "20 bytes")
    assert short.read_bytes() == forge_v2().build()[:20]


def test_parse_value_and_printable() -> None:
    assert parse_value("0x1F", is_integer=True) == 31
    assert parse_value(" 012 ", is_integer=True) == 12
    assert parse_value("", is_integer=False) == b""
    assert parse_value("0x41:42".replace(":", " "), is_integer=False) == b"AB"
    with pytest.raises(ValueError, match="-1"):
        parse_value("-1", is_integer=True)
    assert printable(b"a\\b\0c\x7f\xff\0\0") == "a\\x5cb\\x00c\\x7f\\xff"
