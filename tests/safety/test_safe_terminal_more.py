"""Names printed in the human success output of the chain, convert, header and map commands are
escaped for the terminal (:func:`addcow_ref.format.text.printable`), like ``info``'s."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import addcow_ref

from .conftest import run
from .test_safe_terminal import HOSTILE, assert_safe

ESCAPED = "a\\x1b]0;pwned\\x07"


@pytest.fixture
def hostile_chain(tmp_path: Path) -> Path:
    """An overlay named HOSTILE over a raw backing file named HOSTILE too."""
    os.chdir(tmp_path)
    (tmp_path / (HOSTILE + ".base")).write_bytes(b"\x11" * 65536 * 2)
    path = tmp_path / HOSTILE
    addcow_ref.create(path, size=65536 * 2, image_file="img.raw", backing_file=HOSTILE + ".base",
                      backing_format="raw")
    with addcow_ref.open_image(path, "r+") as img:
        img.write(0, b"\x22" * 512)
    return path


def _check(args: list[str]) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert_safe(result.stdout)
    assert ESCAPED in result.stdout
    return result.stdout


def test_commit_escapes_the_backing_name(hostile_chain: Path) -> None:
    _check(["commit", "-d", hostile_chain.name])


def test_rebase_escapes_names(hostile_chain: Path) -> None:
    _check(["rebase", "-u", "-b", HOSTILE + ".base", "-F", "raw", hostile_chain.name])


def test_map_escapes_backing_names(hostile_chain: Path) -> None:
    _check(["map", hostile_chain.name])


def test_info_backing_chain_escapes_raw_levels(hostile_chain: Path) -> None:
    _check(["info", "--backing-chain", hostile_chain.name])


def test_inspect_and_set_field_escape_the_file_name(hostile_chain: Path) -> None:
    _check(["inspect", hostile_chain.name])
    _check(["set-field", hostile_chain.name, "cluster_bits", "16"])


def test_set_field_errors_are_one_addcow_line(hostile_chain: Path) -> None:
    result = run("set-field", hostile_chain.name, "cluster_bits", "many")
    assert result.exit_code == 1
    assert result.stderr.startswith("addcow: "), result.stderr
    assert_safe(result.stderr)


def test_convert_escapes_names(tmp_path: Path) -> None:
    if not any(os.access(os.path.join(p, "qemu-img"), os.X_OK)
               for p in os.environ.get("PATH", "").split(os.pathsep)):
        pytest.skip("needs qemu-img")
    os.chdir(tmp_path)
    src = tmp_path / HOSTILE  # no backing file: qemu-img would read a ':' in its name as a protocol
    addcow_ref.create(src, size=65536, image_file="img.raw")
    _check(["convert", src.name, "-O", "qcow2", "out.qcow2"])  # qemu-img refuses a newline
