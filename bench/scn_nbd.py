"""``nbdcopy`` through ``addcow serve`` against nbdkit's ``file`` plugin on the same raw file."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

from .images import addcow_image, data_file, human_size
from .measure import Row, interleave, run_process
from .registry import Params, ScenarioSkipped, scenario
from .scn_check import _tool

_theirs: ModuleType | None
try:  # the NBD engineer's script; it registers its own "nbd-copy", replaced below
    from . import nbd_copy as _nbd_copy_script
    _theirs = _nbd_copy_script
except ImportError:  # pragma: no cover - absent in trees without it
    _theirs = None

__all__ = ["nbd_copy"]

MIB = 1 << 20


def _serve_argv() -> list[str]:
    """``addcow serve``, or the module behind it while the CLI does not list it yet."""
    addcow = _tool("addcow")
    probe = subprocess.run([addcow, "serve", "--help"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [addcow, "serve"]
    probe = subprocess.run([sys.executable, "-m", "addcow_ref.cli.serve", "--help"],
                           capture_output=True, check=False)
    if probe.returncode == 0:
        return [sys.executable, "-m", "addcow_ref.cli.serve"]
    raise ScenarioSkipped("addcow serve is not available yet")


def _wait_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"server exited {proc.returncode}: {err.strip()[:500]}")
        if path.exists():
            with socket.socket(socket.AF_UNIX) as s, contextlib.suppress(OSError):
                s.connect(str(path))
                return
        time.sleep(0.05)
    raise TimeoutError(f"no server on {path} after {timeout} s")


@contextlib.contextmanager
def _server(argv: Sequence[str], sock: Path) -> Iterator[str]:
    """Run a server until the block ends; yield its NBD URI."""
    proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_socket(sock, proc)
        yield f"nbd+unix:///?socket={sock}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


@scenario("nbd-copy", "nbdcopy over addcow serve vs nbdkit's file plugin on the same raw file, "
                      "read and write", needs=("nbdkit", "nbdcopy"), replaces=True)
def nbd_copy(p: Params) -> list[Row]:
    """The NBD engineer's measurements (``bench/nbd_copy.py``: reads of a hydrated image, writes
    into a fresh overlay) judged against the 0.5x target, plus writes into clusters that
    are already allocated (no bitmap update: the plain data path)."""
    serve = _serve_argv()
    size = 16 * MIB if p.tiny else 1024 * MIB
    # Unix socket paths are limited to 107 bytes: a deep work dir (pytest's) cannot hold them.
    short = tempfile.mkdtemp(prefix="acb-nbd-")
    try:
        return _measure(p, serve, size, short)
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _measure(p: Params, serve: list[str], size: int, short: str) -> list[Row]:
    rows: list[Row] = []
    if _theirs is not None:
        for t in _theirs.measure(size, p.repeats, short):
            what = ("export of a hydrated image to null:" if t.direction == "read" else
                    "random data into a fresh overlay (every cluster allocated by the copy), "
                    "nbdcopy --flush")
            rows.append(Row("nbd-copy", t.direction, "addcow serve", "nbdkit file",
                            t.addcow_s, t.file_s, ">= 0.5x nbdkit file", 0.5, True,
                            extra={"note": f"nbdcopy of {human_size(size)}, {what}; "
                                           f"{t.addcow_mib_s:.0f} vs {t.file_mib_s:.0f} MiB/s "
                                           f"(bench/nbd_copy.py)"}))
    img = addcow_image(p.cache, size, fill="ones", backing=False, data=True)
    src = Path(p.workdir) / "nbd-src.raw"
    data_file(src, size, 21)
    with tempfile.TemporaryDirectory(dir=short) as d:
        a_sock, f_sock = Path(d) / "addcow.sock", Path(d) / "file.sock"
        with _server([*serve, str(img), "--socket", str(a_sock)], a_sock) as a_uri, \
                _server(["nbdkit", "-f", "-U", str(f_sock), "file",
                         f"file={img.parent / 'img.raw'}"], f_sock) as f_uri:
            cases = [("write, allocated", ["nbdcopy", "--flush", str(src), a_uri],
                      ["nbdcopy", "--flush", str(src), f_uri])]
            if _theirs is None:
                cases.append(("read", ["nbdcopy", a_uri, "null:"], ["nbdcopy", f_uri, "null:"]))
            for name, a_argv, f_argv in cases:
                def subj(argv: list[str] = a_argv) -> None:
                    run_process(argv)

                def base(argv: list[str] = f_argv) -> None:
                    run_process(argv)

                subj()
                base()
                s, b = interleave(subj, base, p.repeats)
                rows.append(Row(
                    "nbd-copy", name, "addcow serve", "nbdkit file", s, b,
                    ">= 0.5x nbdkit file", 0.5, True,
                    extra={"note": f"nbdcopy of {human_size(size)} over a unix socket into an "
                                   f"image whose clusters are all allocated; "
                                   f"{size / MIB / s.median:.0f} vs "
                                   f"{size / MIB / b.median:.0f} MiB/s"}))
    os.unlink(src)
    return rows
