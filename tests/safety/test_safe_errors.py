"""One-line errors that name the right file, and one exit status for a missing input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import addcow_ref

from .conftest import run

#: Every command that takes an existing image, with the arguments it needs besides it.
#: ``compare`` is left out: its statuses are qemu-img compare's (1 means "differ", 2 "error").
COMMANDS = [
    ("info", ()), ("info", ("--output=json",)), ("info", ("--backing-chain",)),
    ("map", ()), ("map", ("--output=json",)), ("read", ()),
    ("write", ("--pattern", "1", "--length", "1")), ("hydrate", ()), ("resize", ("2M",)),
    ("upgrade", ()), ("commit", ()), ("rebase", ("-u", "-b", "other.raw", "-F", "raw")),
    ("convert", ("-O", "qcow2", "out.qcow2")), ("inspect", ()),
    ("set-field", ("version", "2")), ("serve", ()),
]


@pytest.mark.parametrize(("command", "extra"), COMMANDS,
                         ids=[" ".join((c, *e)) for c, e in COMMANDS])
def test_a_missing_input_is_a_runtime_error_everywhere(
        tmp_path: Path, command: str, extra: tuple[str, ...]) -> None:
    os.chdir(tmp_path)
    args = [command, *extra, "missing.add-cow"]
    if command in ("resize", "set-field", "convert"):
        args = [command, "missing.add-cow", *extra]
    result = run(*args)
    assert result.exit_code == 1, (result.exit_code, result.stderr)
    assert "missing.add-cow" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_backing_file_at_create_is_a_runtime_error(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    result = run("create", "-b", "missing.raw", "-F", "raw", "x.add-cow")
    assert result.exit_code == 1
    assert "missing.raw" in result.stderr


@pytest.mark.parametrize("length", ["100", "3M"])
@pytest.mark.parametrize("hexdump", [False, True])
def test_an_output_error_names_the_output_file(tmp_path: Path, length: str,
                                               hexdump: bool) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    path = tmp_path / "d.add-cow"
    addcow_ref.create(path, size=4 << 20, image_file="d.raw")
    result = run("read", *(["-v"] if hexdump else []), "--length", length, "-o", "/dev/full",
                 path)
    assert result.exit_code == 1
    assert result.stderr == "addcow: /dev/full: No space left on device\n"
