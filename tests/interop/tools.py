"""Helpers for driving real NBD clients (qemu-io, qemu-img, nbdinfo, nbdcopy) in the interop
tests: finding the tools, running them with a timeout, and the raw oracle the results are
compared with."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import pytest

#: Every subprocess gets a bound; a hung client must fail the test, not the CI job.
TIMEOUT = 60.0

#: Debian package that provides each tool (for the skip message).
PACKAGES = {
    "nbdkit": "nbdkit nbdkit-plugin-python",
    "qemu-img": "qemu-utils",
    "qemu-io": "qemu-utils",
    "nbdinfo": "libnbd-bin",
    "nbdcopy": "libnbd-bin",
}


def tools_required() -> bool:
    """In CI (``ADDCOW_REQUIRE_TOOLS=1``) a missing tool is a failure, not a skip."""
    return os.environ.get("ADDCOW_REQUIRE_TOOLS") == "1"


def missing(reason: str) -> NoReturn:
    if tools_required():
        pytest.fail(f"{reason} (ADDCOW_REQUIRE_TOOLS=1)", pytrace=False)
    pytest.skip(reason)


@functools.cache
def _python_plugin_problem() -> str | None:
    try:
        proc = subprocess.run(["nbdkit", "python", "--dump-plugin"], capture_output=True,
                              text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"nbdkit python --dump-plugin failed: {e}"
    if proc.returncode != 0:
        return f"nbdkit's python plugin is not installed ({proc.stderr.strip()[:200]})"
    return None


def need(*tools: str) -> None:
    """Skip (or fail in CI) unless every tool is on PATH and nbdkit has its python plugin."""
    for tool in tools:
        if shutil.which(tool) is None:
            missing(f"{tool} not found (Debian: apt-get install {PACKAGES.get(tool, tool)})")
    if "nbdkit" in tools:
        problem = _python_plugin_problem()
        if problem:
            missing(f"{problem} (Debian: apt-get install {PACKAGES['nbdkit']})")


def run(argv: Sequence[str], *, timeout: float = TIMEOUT, ok: Sequence[int] = (0,),
        **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a tool; fail the test with its output if it exits with a status not in ``ok``."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, check=False, **kw)
    if proc.returncode not in ok:
        pytest.fail(f"{' '.join(map(str, argv))[:500]} exited {proc.returncode}\n"
                    f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}",
                    pytrace=False)
    return proc


def qemu_io(uri: str, commands: Sequence[str], *, timeout: float = TIMEOUT,
            ok: Sequence[int] = (0,), readonly: bool = False
            ) -> subprocess.CompletedProcess[str]:
    """Run ``qemu-io -f raw [-r] -c CMD... URI`` (one NBD connection for all commands);
    ``readonly`` is needed for a read-only export, which qemu-io cannot open for writing.

    ``qemu-io`` exits 1 when a command fails, including ``read -P`` pattern mismatches; the
    output is checked as well so an old qemu-io that exits 0 cannot hide one.
    """
    argv = ["qemu-io", "-f", "raw", *(["-r"] if readonly else [])]
    for c in commands:
        argv += ["-c", c]
    argv.append(uri)
    proc = run(argv, timeout=timeout, ok=ok)
    if 0 in ok and proc.returncode == 0:
        assert "Pattern verification failed" not in proc.stdout, proc.stdout[-2000:]
        assert "failed" not in proc.stderr.lower(), proc.stderr[-2000:]
    return proc


def qemu_img_json(*args: str) -> Any:
    return json.loads(run(["qemu-img", *args, "--output=json"]).stdout)


def sector_pattern(size: int, *, block: int = 4096, seed: int = 11) -> bytes:
    """Backing-file contents: each ``block``-byte block holds one non-zero byte value that
    differs from its neighbours, so a read from the wrong offset or a lost head/tail shows."""
    out = bytearray()
    for i in range(-(-size // block)):
        out += bytes([(i * 37 + seed) % 255 + 1]) * block
    return bytes(out[:size])


def uniform_runs(data: bytes, base: int = 0) -> list[tuple[int, int, int]]:
    """``(offset, length, byte)`` for each maximal run of one byte value in ``data``."""
    runs: list[tuple[int, int, int]] = []
    i = 0
    while i < len(data):
        value = data[i]
        j = i + 1
        while j < len(data) and data[j] == value:
            j += 1
        runs.append((base + i, j - i, value))
        i = j
    return runs


def read_checks(oracle: bytes | bytearray, start: int, end: int) -> list[str]:
    """qemu-io ``read -P`` commands that verify ``oracle[start:end]`` byte for byte."""
    return [f"read -P 0x{v:02x} {off} {n}"
            for off, n, v in uniform_runs(bytes(oracle[start:end]), start)]


class Oracle:
    """A plain in-memory copy of the guest disk to which every write is applied too."""

    def __init__(self, size: int, backing: bytes = b"") -> None:
        self.data = bytearray(backing[:size].ljust(size, b"\0"))

    def write(self, offset: int, data: bytes) -> None:
        assert offset + len(data) <= len(self.data)
        self.data[offset:offset + len(data)] = data

    def save(self, path: Path) -> Path:
        path.write_bytes(self.data)
        return path


def assert_conforming(path: Path) -> None:
    """The conformance checker (``addcow-check``, run as a separate program like a user would)
    finds nothing wrong with the image."""
    beside = Path(sys.executable).parent / "addcow-check"
    exe = str(beside) if beside.exists() else shutil.which("addcow-check")
    argv = [exe] if exe else [sys.executable, "-m", "addcow_conformance.checker.cli"]
    proc = run([*argv, str(path)], ok=(0, 1, 2, 3))
    assert proc.returncode == 0, f"addcow-check {path}: {proc.stdout}{proc.stderr}"


def merged(extents: Sequence[tuple[int, int, bool]]) -> list[tuple[int, int, bool]]:
    """Adjacent ``(start, length, flag)`` ranges with equal flags joined into one."""
    out: list[tuple[int, int, bool]] = []
    for start, length, flag in extents:
        if length == 0:
            continue
        if out and out[-1][2] == flag and out[-1][0] + out[-1][1] == start:
            out[-1] = (out[-1][0], out[-1][1] + length, flag)
        else:
            out.append((start, length, flag))
    return out
