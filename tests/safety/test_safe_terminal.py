"""Names with control bytes never reach the terminal raw: every ``addcow`` line that shows a
name, human output and errors alike, escapes them (a name must not retitle the window with an
OSC sequence, ring the bell, or forge a line such as a fake verdict)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.format.text import printable
from tests.addcow_ref.helpers import make_v1

from .conftest import run

HOSTILE = "a\x1b]0;pwned\x07\nimage.add-cow: CONFORMING"
RAW_CONTROL = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))]


def assert_safe(text: str) -> None:
    assert not any(c in text for c in RAW_CONTROL if c != "\n"), repr(text)
    assert not any(line.startswith("image.add-cow: CONFORMING") for line in text.splitlines())


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    os.chdir(tmp_path)
    (tmp_path / "base.raw").write_bytes(b"\x11" * 4096)
    path = tmp_path / HOSTILE
    addcow_ref.create(path, size=4096, image_file=HOSTILE + ".raw", backing_file="base.raw",
                      backing_format="raw")
    return path


def test_info_escapes_names(hostile: Path) -> None:
    result = run("info", hostile.name)
    assert result.exit_code == 0
    assert_safe(result.stdout)
    assert "image: a\\x1b]0;pwned\\x07\\nimage.add-cow: CONFORMING" in result.stdout


def test_create_escapes_names(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    result = run("create", HOSTILE, "1M")
    assert result.exit_code == 0, result.stderr
    assert_safe(result.stdout)
    assert result.stdout.count("\n") == 1


def test_errors_escape_names(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    result = run("info", HOSTILE)  # missing: the error names it
    assert result.exit_code == 1
    assert_safe(result.stderr)
    assert result.stderr.count("\n") == 1
    assert "\\x1b]0;pwned\\x07" in result.stderr


def test_hydrate_and_upgrade_escape_names(hostile: Path, tmp_path: Path) -> None:
    result = run("hydrate", hostile.name)
    assert result.exit_code == 0, result.stderr
    assert_safe(result.stdout)
    v1 = make_v1(tmp_path, image=bytes(65536))
    weird = tmp_path / "v1\x1b[2J.addcow"
    v1.rename(weird)
    result = run("upgrade", weird.name)
    assert result.exit_code == 0, result.stderr
    assert_safe(result.stdout)
    result = run("upgrade", weird.name)
    assert_safe(result.stdout)


def test_an_image_file_name_in_the_header_is_escaped_in_errors(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    addcow_ref.create(tmp_path / "d.add-cow", size=4096, image_file="x\x07y\x9b31m.raw")
    (tmp_path / "x\x07y\x9b31m.raw").unlink()
    result = run("read", "d.add-cow")
    assert result.exit_code == 1
    assert_safe(result.stderr)


@pytest.mark.parametrize(("name", "shown"), [
    ("plain name.raw", "plain name.raw"),
    ("back\\slash", "back\\slash"),  # printable names stay byte-identical
    ("é ü.raw", "é ü.raw"),
    ("a\x1bb", "a\\x1bb"),
    ("tab\there", "tab\\there"),
    ("nl\n", "nl\\n"),
    ("del\x7f", "del\\x7f"),
    ("csi\x9b", "csi\\x9b"),
    ("line\u2028sep", "line\\u2028sep"),
    ("both\\\x07", "both\\\\\\x07"),  # once escaped, a backslash is doubled
    (b"bytes\xff\x1b", "bytes\\xff\\x1b"),
])
def test_printable(name: str | bytes, shown: str) -> None:
    assert printable(name) == shown
    assert printable(printable(name)) == printable(name)
