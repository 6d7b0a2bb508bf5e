"""``addcow serve`` reports a bad image in one line before nbdkit starts, and each failed
request in one line of the server log (never a Python traceback)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import addcow_ref

from . import images, tools
from .conftest import SERVE, Server

pytestmark = pytest.mark.interop

MiB = images.MiB


def _serve_fails(image: Path, sockdir: Path, *extra: str) -> str:
    proc = subprocess.run([*SERVE, str(image), "--socket", str(sockdir / "s.sock"), *extra],
                          capture_output=True, text=True, timeout=tools.TIMEOUT, check=False)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert proc.stdout == ""  # no URI was announced
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("addcow: "), proc.stderr
    return proc.stderr


@contextlib.contextmanager
def _readonly_dir(path: Path) -> Iterator[Path]:
    """A directory whose files cannot be opened for writing, even by root: a read-only
    tmpfs as root, a chmod otherwise."""
    path.mkdir()
    if os.geteuid() != 0:
        yield path
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(path)],
                      capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_unwritable_image(tmp_path: Path, sockdir: Path) -> None:
    tools.need("nbdkit")
    with _readonly_dir(tmp_path / "ro") as d:
        disk = images.overlay(d, size=MiB)
        if os.geteuid() == 0:
            subprocess.run(["mount", "-o", "remount,ro", str(d)], check=True)
        else:
            disk.path.chmod(0o444)
        err = _serve_fails(disk.path, sockdir)
        assert "disk.add-cow" in err


def test_fifo_backing(tmp_path: Path, sockdir: Path) -> None:
    tools.need("nbdkit")
    os.mkfifo(tmp_path / "fifo")
    path = tmp_path / "f.add-cow"
    addcow_ref.create(path, size=MiB, image_file="f.raw", backing_file="fifo",
                      backing_format="raw")
    assert "[IMG-FILE-TYPE]" in _serve_fails(path, sockdir)


def test_self_loop(tmp_path: Path, sockdir: Path) -> None:
    tools.need("nbdkit")
    path = tmp_path / "loop.add-cow"
    addcow_ref.create(path, size=MiB, image_file="l.raw", backing_file="loop.add-cow",
                      backing_format="add-cow")
    assert "[BACK-LOOP]" in _serve_fails(path, sockdir)


def test_v1_without_readonly(tmp_path: Path, sockdir: Path) -> None:
    tools.need("nbdkit")
    err = _serve_fails(images.v1_image(tmp_path).path, sockdir)
    assert "--readonly" in err
    assert "[V1-NO-WRITE-OPEN]" in err


def test_missing_image(tmp_path: Path, sockdir: Path) -> None:
    tools.need("nbdkit")
    assert "missing.add-cow" in _serve_fails(tmp_path / "missing.add-cow", sockdir)


def _error_lines(server: Server) -> list[str]:
    log = server.messages()
    assert "Traceback" not in log, log
    return [line for line in log.splitlines() if "error" in line.lower()]


def test_a_failed_request_is_one_log_line(tmp_path: Path,
                                          serve: Callable[..., Server]) -> None:
    """The image file is truncated under the running server (by another program: locks are
    advisory), so a read of an allocated cluster finds no data: an error no check at start
    could have foreseen."""
    tools.need("qemu-io")
    disk = images.overlay(tmp_path, size=MiB)
    with addcow_ref.open_image(str(disk.path), mode="r+") as img:
        img.write(0, b"\x77" * 512)
    server = serve(disk.path)
    os.truncate(tmp_path / "disk.raw", 0)
    for _ in range(3):
        tools.qemu_io(server.uri, ["read 0 512"], ok=(1,))
    lines = _error_lines(server)
    assert lines
    assert all("[IMG-SIZE]" in line for line in lines), lines
    assert server.stop() == 0


def test_enospc_is_one_log_line_per_request(tmp_path: Path,
                                            serve: Callable[..., Server]) -> None:
    tools.need("qemu-io")
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)],
                      capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        disk = images.overlay(small, size=4 * MiB, backing_size=0)
        server = serve(disk.path)
        proc = tools.qemu_io(server.uri, ["write -P 0x33 0 2M"], ok=(0, 1))
        assert "No space left on device" in proc.stdout + proc.stderr
        lines = _error_lines(server)
        assert lines
        assert all("No space left on device" in line for line in lines), lines
        server.stop()
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
