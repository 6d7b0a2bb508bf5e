"""nbdcopy throughput through ``addcow serve`` versus nbdkit's own ``file`` plugin.

``python -m bench.nbd_copy [--size 1G] [--repeats 3] [--workdir DIR] [--json FILE]``

Both servers are nbdkit; the difference is the plugin: C reading a raw file versus the Python
reference implementation reading the same raw file as the image file of an add-cow disk. So the
ratio is the cost of the add-cow layer plus Python, as a client sees it.

* read: ``nbdcopy URI null:`` of a fully allocated add-cow disk (hydrated from a random base, so
  nothing is skipped as a hole) versus ``nbdkit file`` serving its image file, the same bytes.
* write: ``nbdcopy --flush SOURCE URI`` of random data into a fresh add-cow overlay (every
  cluster is allocated by the copy: the first-write path, bitmap updates included) versus a fresh
  sparse raw file served by ``nbdkit file``.

Servers start outside the timed region; each timed run is one nbdcopy process with its default
connections and requests in flight (multi-conn is advertised by both servers). The benchmark
runner's ``nbd-copy`` scenario (``scn_nbd.py``) calls ``measure`` and judges the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import addcow_ref

from .measure import Stats

__all__ = ["Throughput", "main", "measure"]

MiB = 1 << 20
READY_TIMEOUT = 60.0
COPY_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Throughput:
    """Timed runs of one direction: add-cow server against the file plugin."""

    direction: str
    size: int
    addcow_s: Stats
    file_s: Stats

    @property
    def addcow_mib_s(self) -> float:
        return self.size / MiB / self.addcow_s.median

    @property
    def file_mib_s(self) -> float:
        return self.size / MiB / self.file_s.median

    @property
    def ratio(self) -> float:
        """add-cow throughput as a fraction of the file plugin's (1.0 = as fast)."""
        return self.addcow_mib_s / self.file_mib_s

    def as_dict(self) -> dict[str, Any]:
        return {"direction": self.direction, "size": self.size,
                "addcow_mib_s": self.addcow_mib_s, "file_mib_s": self.file_mib_s,
                "ratio": self.ratio, "addcow_s": self.addcow_s.as_dict(),
                "file_s": self.file_s.as_dict()}


def _write_random(path: Path, size: int, seed: int) -> None:
    """``size`` bytes of incompressible data, no zero blocks (nbdcopy would skip them)."""
    block = random.Random(seed).randbytes(MiB)
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, MiB)
            f.write(block[:n])
            left -= n
            block = block[1:] + block[:1]  # no two MiB alike


def _read_uri(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline().strip()
            if line:
                return line
        if proc.poll() is not None:
            break
    raise RuntimeError(f"server did not become ready (status {proc.poll()})")


@contextlib.contextmanager
def _addcow_server(image: Path, sock: Path) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "addcow_ref.cli.serve", str(image),
                             "--socket", str(sock)], stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        yield _read_uri(proc)
    finally:
        _stop(proc)


@contextlib.contextmanager
def _file_server(raw: Path, sock: Path) -> Iterator[str]:
    pidfile = sock.with_suffix(".pid")
    proc = subprocess.Popen(["nbdkit", "--foreground", "--exit-with-parent", "--unix", str(sock),
                             "--pidfile", str(pidfile), "file", str(raw)],
                            stdin=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not (pidfile.exists() and pidfile.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nbdkit file did not become ready")
            time.sleep(0.02)
        yield f"nbd+unix:///?socket={sock}"
    finally:
        _stop(proc)
        with contextlib.suppress(OSError):
            sock.unlink()
            pidfile.unlink()


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(2)  # SIGINT: a clean stop, the image is flushed and closed
        try:
            proc.wait(READY_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _nbdcopy(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["nbdcopy", *args], check=True, timeout=COPY_TIMEOUT,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def measure(size: int = 1024 * MiB, repeats: int = 3, workdir: str | None = None
            ) -> list[Throughput]:
    """Read and write throughput of a ``size``-byte disk, ``repeats`` runs each, alternating
    subject and baseline so that load changes hit both."""
    for tool in ("nbdkit", "nbdcopy"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed")
    with tempfile.TemporaryDirectory(prefix="addcow-nbdcopy-", dir=workdir) as tmp:
        work = Path(tmp)
        source = work / "source.raw"
        _write_random(source, size, seed=1)

        # read: a hydrated add-cow disk and its own image file.
        addcow_ref.create(str(work / "full.add-cow"), size=size, image_file="full.raw",
                          backing_file="source.raw", backing_format="raw")
        with addcow_ref.open_image(str(work / "full.add-cow"), mode="r+") as img:
            img.hydrate()
        reads: dict[str, list[float]] = {"addcow": [], "file": []}
        with _addcow_server(work / "full.add-cow", work / "a.sock") as a_uri, \
                _file_server(work / "full.raw", work / "f.sock") as f_uri:
            for i in range(repeats):
                order = [("addcow", a_uri), ("file", f_uri)]
                for name, uri in (order if i % 2 == 0 else order[::-1]):
                    reads[name].append(_nbdcopy(uri, "null:"))

        # write: a fresh overlay (and a fresh sparse raw file) for every run.
        base = work / "base.raw"
        _write_random(base, size, seed=2)
        writes: dict[str, list[float]] = {"addcow": [], "file": []}
        for i in range(repeats):
            for name in (["addcow", "file"] if i % 2 == 0 else ["file", "addcow"]):
                target = work / f"w{i}-{name}"
                if name == "addcow":
                    addcow_ref.create(str(target) + ".add-cow", size=size,
                                      image_file=target.name + ".raw",
                                      backing_file="base.raw", backing_format="raw")
                    server = _addcow_server(Path(str(target) + ".add-cow"),
                                            work / "w.sock")
                else:
                    with open(str(target) + ".raw", "wb") as f:
                        f.truncate(size)
                    server = _file_server(Path(str(target) + ".raw"), work / "w.sock")
                with server as uri:
                    writes[name].append(_nbdcopy("--flush", str(source), uri))
                for leftover in work.glob(f"w{i}-{name}*"):
                    leftover.unlink()
    return [
        Throughput("read", size, Stats(tuple(reads["addcow"])), Stats(tuple(reads["file"]))),
        Throughput("write", size, Stats(tuple(writes["addcow"])), Stats(tuple(writes["file"]))),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.nbd_copy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="disk size in MiB (default 1024)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", default=None, help="where the scratch files go")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    results = measure(args.size * MiB, args.repeats, args.workdir)
    for t in results:
        print(f"{t.direction:5}  {args.size} MiB  addcow serve {t.addcow_mib_s:8.1f} MiB/s  "
              f"nbdkit file {t.file_mib_s:8.1f} MiB/s  ratio {t.ratio:.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"cpus": os.cpu_count(),
                                         "results": [t.as_dict() for t in results]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
