"""``addcow check``: addcow-check's verdict and output as an ``addcow`` subcommand, and ``-r``.

Without ``-r`` the subcommand must say exactly what ``addcow-check`` says (same stdout, same exit
status); with ``-r`` it repairs as ``addcow-check --repair`` and reports the fresh check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result

from addcow_ref.cli.main import cli
from tests.click_runner import cli_runner

ROOT = Path(__file__).resolve().parents[2]
V2 = ROOT / "vectors" / "v2"


def run(*args: str | os.PathLike[str]) -> Result:
    return cli_runner().invoke(cli, [os.fspath(a) for a in args], catch_exceptions=False)


def copy(vector: str, tmp_path: Path) -> Path:
    dest = tmp_path / vector.replace("/", "-")
    shutil.copytree(V2 / vector, dest, symlinks=True)
    return dest / "image.add-cow"


def checker(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "addcow_conformance.checker.cli"]
    return subprocess.run([*argv, *(os.fspath(a) for a in args)], capture_output=True,
                          text=True, check=False)


@pytest.mark.parametrize(("vector", "status"), [
    ("bitmap/all-ones", 0), ("bitmap/trailing-bytes", 3), ("header/magic-qcow2", 2)])
@pytest.mark.parametrize("output", ["human", "json"])
def test_check_is_addcow_check(vector: str, status: int, output: str, tmp_path: Path) -> None:
    path = copy(vector, tmp_path)
    ours = run("check", f"--output={output}", path)
    theirs = checker(f"--output={output}", path)
    assert ours.exit_code == theirs.returncode == status
    assert ours.stdout == theirs.stdout


def test_check_r_all_repairs_then_reports_the_fresh_check(tmp_path: Path) -> None:
    path = copy("names/stray-byte-in-area", tmp_path)
    assert run("check", path).exit_code == 2
    result = run("check", "-r", "all", path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (f"{path}: 1 repair made: NAME-AREA-ZERO (zeroed the name-area bytes "
                        "outside every name)")
    assert lines[-1].endswith("CONFORMING.")
    assert run("check", path).exit_code == 0


def test_check_r_leaks_leaves_other_repairs_for_all(tmp_path: Path) -> None:
    path = copy("header/reserved2-nonzero", tmp_path)
    before = path.read_bytes()
    result = run("check", "-r", "leaks", path)
    assert result.exit_code == 2  # an error remains: qemu-img's "corruptions"
    assert "not repaired: HDR-RESERVED: not a space-only repair; -r all repairs it" in result.stdout
    assert path.read_bytes() == before


def test_check_r_json_keeps_the_report_on_stdout(tmp_path: Path) -> None:
    path = copy("files/image-longer-than-disk", tmp_path)
    result = run("check", "-r", "leaks", "--output=json", path)
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["exit_code"] == 0
    assert document["images"][0]["findings"] == []
    assert "IMG-LENGTH (truncated the image file to virtual_size 5120)" in result.stderr
    assert (path.parent / "image.raw").stat().st_size == 5120


def test_check_quiet_and_usage(tmp_path: Path) -> None:
    path = copy("bitmap/padding-bit-set", tmp_path)
    result = run("check", "-q", "-r", "all", path)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert run("check", "-r", "everything", path).exit_code == 64
    assert run("check").exit_code == 64
    assert "check" in run("--help").stdout
    assert "-r, --repair [leaks|all]" in run("check", "--help").stdout
