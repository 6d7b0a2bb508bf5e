"""An output file with nowhere to go is one line and exit 64, before any work is done.

Before, ``addcow-check --report-json missing/r.json`` printed an ``[Errno 2]`` line after the
whole check, and ``addcow-conformance run --report-json missing/r.json`` ran every vector and
then died with a traceback (exit 70).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import addcow_ref

PROGRAMS = {
    "addcow-check": "from addcow_conformance.checker.cli import main",
    "addcow-conformance": "from addcow_conformance.harness.cli import main",
}


def _run(prog: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    code = f"import sys; {PROGRAMS[prog]}; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, check=False)


@pytest.mark.parametrize(("prog", "option"), [
    ("addcow-check", "--report-json"),
    ("addcow-conformance", "--report-json"),
    ("addcow-conformance", "--junit"),
])
def test_an_output_file_in_a_missing_directory_is_one_line(
        tmp_path: Path, prog: str, option: str) -> None:
    addcow_ref.create(tmp_path / "d.add-cow", size=1 << 20, image_file="d.raw")
    target = tmp_path / "missing" / "r.out"
    args = ([option, str(target), "d.add-cow"] if prog == "addcow-check" else
            ["run", "--impl", "python:addcow_conformance.adapters.reference:main",
             option, str(target)])
    proc = _run(prog, args, tmp_path)
    assert proc.returncode == 64, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"{prog}: {option} {target}: directory {target.parent} does not exist"]
    assert proc.stdout == ""
    assert not target.parent.exists()
