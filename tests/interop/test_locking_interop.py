"""Locks against a real ``addcow serve`` (nbdkit), and a failed sync injected into the real
system call with ``strace -e inject``: each ends with every acknowledged write present, or with
a clean refusal, never a silent loss."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from addcow_conformance.checker.engine import check_path

import addcow_ref

from . import tools
from .conftest import Server

CB = 16
SIZE = 16 << CB
ADDCOW = str(Path(sys.executable).parent / "addcow")


def _image(tmp_path: Path) -> Path:
    (tmp_path / "base.raw").write_bytes(b"\x33" * SIZE)
    path = tmp_path / "disk.add-cow"
    addcow_ref.create(path, size=SIZE, image_file="disk.raw", backing_file="base.raw",
                      backing_format="raw", cluster_bits=CB)
    return path


def _addcow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ADDCOW, *args], capture_output=True, text=True, timeout=120)


def test_write_and_hydrate_while_served_are_refused(tmp_path: Path,
                                                    serve: Callable[..., Server]) -> None:
    tools.need("qemu-io")
    path = _image(tmp_path)
    server = serve(path)
    tools.qemu_io(server.uri, ["write -P 0x44 0 64k", "flush"])
    # Once: this write landed, and the server's next flush wrote its own bitmap over its bit.
    done = _addcow("write", "--pattern", "0x55", "--offset", str(4 << CB), "--length", "4096",
                   str(path))
    assert done.returncode == 1
    assert f"{path} is in use (locked by another process)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    hydrate = _addcow("hydrate", str(path))
    assert hydrate.returncode == 1
    assert "is in use" in hydrate.stderr
    resize = _addcow("resize", str(path), str(2 * SIZE))
    assert resize.returncode == 1
    tools.qemu_io(server.uri, ["write -P 0x66 128k 64k", "flush"])
    assert server.stop() == 0
    report = check_path(path)
    assert report.exit_code == 0, report.findings
    with addcow_ref.open_image(path) as img:
        assert img.read(0, 1 << CB) == b"\x44" * (1 << CB)
        assert img.read(2 << CB, 1 << CB) == b"\x66" * (1 << CB)
        assert img.read(4 << CB, 4096) == b"\x33" * 4096  # refused: never written
    assert _addcow("write", "--pattern", "0x55", "--length", "4096", str(path)).returncode == 0


def test_serve_refuses_an_image_a_writer_has_open(tmp_path: Path) -> None:
    tools.need("nbdkit")
    path = _image(tmp_path)
    with addcow_ref.open_image(path, "r+"):
        done = _addcow("serve", str(path), "--socket", str(tmp_path / "s.sock"))
    assert done.returncode == 1
    assert "is in use (locked by another process)" in done.stderr


def test_serve_confine_refuses_an_escaping_backing_name(tmp_path: Path) -> None:
    tools.need("nbdkit")
    d = tmp_path / "upload"
    d.mkdir()
    (tmp_path / "outside.raw").write_bytes(b"\x77" * SIZE)
    path = d / "disk.add-cow"
    addcow_ref.create(path, size=SIZE, image_file="disk.raw", backing_file="../outside.raw",
                      backing_format="raw", cluster_bits=CB)
    done = _addcow("serve", "--confine", str(d), "--readonly", str(path), "--socket",
                   str(tmp_path / "s.sock"))
    assert done.returncode == 1
    assert "NAME-CONFINED" in done.stderr


def test_a_failed_fsync_injected_by_strace_commits_no_bit(tmp_path: Path) -> None:
    strace = shutil.which("strace")
    if strace is None:
        tools.missing("strace is not installed (Debian: apt-get install strace)")
    path = _image(tmp_path)
    # The first fsync of the process is the image file's, before any bit is written; the
    # kernel then forgets the error, so the fsync that close once retried succeeded.
    done = subprocess.run([strace, "-f", "-o", str(tmp_path / "trace"), "-e",
                           "trace=fsync,fdatasync", "-e",
                           "inject=fsync,fdatasync:error=EIO:when=1", ADDCOW, "write",
                           "--pattern", "0x99", "--offset", str(3 << CB), "--length",
                           str(2 << CB), str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stderr
    assert "EIO" in done.stderr
    assert "(INJECTED)" in (tmp_path / "trace").read_text()
    report = check_path(path)
    assert report.exit_code == 0, report.findings
    with addcow_ref.open_image(path) as img:
        assert img.allocated_clusters() == 0
        assert img.read(3 << CB, 2 << CB) == b"\x33" * (2 << CB)
