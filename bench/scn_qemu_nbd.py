"""``addcow serve`` against the server a user would pick for a raw-backed copy-on-write disk over
NBD: ``qemu-nbd -f qcow2`` on a qcow2 overlay of the same raw backing file.

Both overlays have 64 KiB clusters and are in the same state when a run starts: *fresh* (no
cluster allocated: every read goes to the backing file, every write allocates), *half* (every
other cluster allocated, so a sequential copy alternates between the two files) or *full*
(every cluster allocated). The clients are the ones a user would run: ``nbdcopy`` for
sequential copies, fio's ``nbd`` engine for random 4 KiB requests (one connection, 16 in
flight). Each write run starts from a fresh copy of the prepared overlay and ends with a flush,
so the two servers write the same bytes and make them durable; server start, copy and fio's own
start-up stay outside the timed region (fio reports the job's run time).

Reads of a fully allocated overlay are also measured against nbdkit's ``file`` plugin serving
the overlay's raw image file: the physical limit of an NBD server over those bytes. The three
servers (or two, for the other rows) run in rotation, repeat by repeat, so load drifts on the
shared machine hit them alike.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path

from .images import data_file, human_size
from .measure import Row, Stats
from .registry import Params, scenario
from .scn_nbd import _serve_argv, _server

__all__ = ["nbd_vs_qemu"]

MIB = 1 << 20
CLUSTER = 64 << 10
STATES = ("fresh", "half", "full")
#: Requests in flight for the random rows: a guest's virtio queue keeps a few dozen at most.
IODEPTH = 16
SUBJECT, PEER, LIMIT = "addcow serve", "qemu-nbd -f qcow2", "nbdkit file"


@dataclass(frozen=True)
class Overlay:
    """A prepared overlay of one format in one state: the files a run copies, and the one the
    server opens."""

    files: tuple[Path, ...]
    served: str  # name of the file the server opens, inside the run directory

    def copy_to(self, d: Path) -> Path:
        d.mkdir(parents=True, exist_ok=True)
        for f in self.files:
            subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(f), str(d / f.name)],
                           check=True)
        base = self.files[0].parent / "base.raw"
        (d / "base.raw").unlink(missing_ok=True)
        (d / "base.raw").symlink_to(base.resolve())
        return d / self.served


def _allocated_clusters(state: str, size: int) -> list[int]:
    n = size // CLUSTER
    return {"fresh": [], "half": list(range(0, n, 2)), "full": list(range(n))}[state]


def _build(root: Path, size: int) -> dict[tuple[str, str], Overlay]:
    """Both formats in every state, over one raw backing file of real data. The allocated
    clusters get the same bytes in both (a fixed pattern, neither zeros nor the backing's)."""
    import addcow_ref

    root.mkdir(parents=True, exist_ok=True)
    data_file(root / "base.raw", size, 31)
    out: dict[tuple[str, str], Overlay] = {}
    for state in STATES:
        d = root / state
        d.mkdir()
        (d / "base.raw").symlink_to((root / "base.raw").resolve())
        clusters = _allocated_clusters(state, size)
        addcow_ref.create(d / "o.addcow", image_file="o.raw", backing_file="base.raw",
                          backing_format="raw")
        with addcow_ref.open_image(d / "o.addcow", "r+") as img:
            for c in clusters:
                img.write(c * CLUSTER, b"\x5a" * CLUSTER)
            img.flush()
        out[("addcow", state)] = Overlay((d / "o.addcow", d / "o.raw"), "o.addcow")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw",
                        "-o", f"cluster_size={CLUSTER}", "o.qcow2", str(size)],
                       cwd=d, check=True)
        if clusters:
            cmds = [f"write -q -P 0x5a {c * CLUSTER} {CLUSTER}" for c in clusters]
            subprocess.run(["qemu-io", "-f", "qcow2", "o.qcow2"], cwd=d, check=True,
                           input="\n".join([*cmds, "flush", "quit", ""]), text=True,
                           capture_output=True)
        out[("qcow2", state)] = Overlay((d / "o.qcow2",), "o.qcow2")
    return out


def _argv(kind: str, image: Path, sock: Path) -> list[str]:
    if kind == "addcow":
        return [*_serve_argv(), str(image), "--socket", str(sock)]
    if kind == "qcow2":  # -t: stay up across clients; -e: nbdcopy and fio may open several
        return ["qemu-nbd", "-f", "qcow2", "-t", "-e", "8", "-k", str(sock), str(image)]
    return ["nbdkit", "-f", "-U", str(sock), "file", f"file={image}"]


def _serving(kind: str, image: Path, sock: Path) -> AbstractContextManager[str]:
    return _server(_argv(kind, image, sock), sock)


@dataclass(frozen=True)
class Client:
    """One client command: its name in the table and how to time it against a URI."""

    name: str
    writes: bool
    run: Callable[[str], float]


def _nbdcopy(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=1800)
    return time.perf_counter() - t0


def _fio(uri: str, rw: str, size: int, ios: int, scratch: Path) -> float:
    """fio's own run time of ``ios`` random 4 KiB requests (its start-up is not counted)."""
    out = scratch / "fio.json"
    argv = ["fio", "--name=rand", "--ioengine=nbd", f"--uri={uri}", f"--rw={rw}", "--bs=4k",
            f"--iodepth={IODEPTH}", f"--size={size}", f"--io_size={ios * 4096}",
            "--randrepeat=1", "--randseed=7", "--norandommap", "--output-format=json",
            f"--output={out}"]
    if rw == "randwrite":
        argv.append("--end_fsync=1")
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=1800)
    job = json.loads(out.read_text())["jobs"][0]
    if job["error"]:
        raise RuntimeError(f"fio {rw} on {uri}: error {job['error']}")
    return float(job["job_runtime"]) / 1000


def _clients(size: int, ios: int, source: Path, scratch: Path) -> list[Client]:
    return [
        Client("seq read", False, lambda uri: _nbdcopy(["nbdcopy", uri, "null:"])),
        Client("seq write", True,
               lambda uri: _nbdcopy(["nbdcopy", "--flush", str(source), uri])),
        Client("4K rand read", False, lambda uri: _fio(uri, "randread", size, ios, scratch)),
        Client("4K rand write", True, lambda uri: _fio(uri, "randwrite", size, ios, scratch)),
    ]


def rotate(subjects: list[Callable[[], float]], repeats: int) -> list[Stats]:
    """Run self-timing callables ``repeats`` rounds, each round starting one further along
    (A B C, B C A, ...), so no subject always runs first after a pause or last under load."""
    times: list[list[float]] = [[] for _ in subjects]
    for r in range(repeats):
        for k in range(len(subjects)):
            i = (r + k) % len(subjects)
            times[i].append(subjects[i]())
    return [Stats(tuple(t)) for t in times]


@scenario("nbd-vs-qemu", "addcow serve vs qemu-nbd -f qcow2 on an overlay of the same raw "
                         "backing file (nbdcopy and fio), and vs nbdkit file for allocated reads",
          needs=("nbdkit", "nbdcopy", "qemu-nbd", "qemu-img", "qemu-io", "fio"))
def nbd_vs_qemu(p: Params) -> list[Row]:
    size = 16 * MIB if p.tiny else 256 * MIB
    ios = 256 if p.tiny else 4096
    # Unix socket paths are limited to 107 bytes: a deep work dir (pytest's) cannot hold them.
    short = Path(tempfile.mkdtemp(prefix="acb-qnbd-"))
    try:
        overlays = _build(Path(p.workdir) / "qnbd", size)
        source = data_file(Path(p.workdir) / "qnbd" / "src.raw", size, 32)
        rows: list[Row] = []
        for client in _clients(size, ios, source, short):
            for state in STATES:
                rows += _measure(p, client, state, overlays, short, size, ios)
        return rows
    finally:
        shutil.rmtree(short, ignore_errors=True)
        shutil.rmtree(Path(p.workdir) / "qnbd", ignore_errors=True)


def _measure(p: Params, client: Client, state: str, overlays: dict[tuple[str, str], Overlay],
             short: Path, size: int, ios: int) -> list[Row]:
    kinds = ["addcow", "qcow2"]
    with_limit = state == "full" and not client.writes
    if with_limit:
        kinds.append("file")
    uris: dict[str, str] = {}
    short = Path(tempfile.mkdtemp(dir=short))  # sockets of this row only: names never reused
    with ExitStack() as stack:
        if not client.writes:  # read-only runs share one server per format
            # qemu-nbd first: QEMU tests for conflicting locks on bytes of base.raw that the
            # library's whole-file shared lock covers, so it refuses to open after addcow
            # serve ("Failed to get consistent read lock"); the library accepts QEMU's locks.
            for kind in sorted(kinds, key=lambda k: k != "qcow2"):
                ov = overlays[("addcow", state) if kind == "file" else (kind, state)]
                image = ov.files[1] if kind == "file" else ov.files[0]
                uris[kind] = stack.enter_context(
                    _serving(kind, image, short / f"{kind}.sock"))
        runs = [_run(client, kind, state, overlays, short, uris) for kind in kinds]
        for run in runs:  # once each to warm the page cache and the servers
            run()
        stats = rotate(runs, p.repeats)
    unit = "MiB/s" if client.name.startswith("seq") else "IOPS"
    amount = size / MIB if unit == "MiB/s" else ios

    def rate(s: Stats) -> str:
        return f"{amount / s.median:,.0f} {unit}"

    what = (f"nbdcopy of {human_size(size)}" if unit == "MiB/s" else
            f"fio nbd engine, {ios} random 4 KiB requests, {IODEPTH} in flight, over "
            f"{human_size(size)}")
    if client.writes:
        what += ", flushed at the end, each run on a fresh copy of the overlay"
    note = (f"{what}; overlay {state} ({_STATE_TEXT[state]}); {SUBJECT} {rate(stats[0])}, "
            f"{PEER} {rate(stats[1])}" + (f", {LIMIT} {rate(stats[2])}" if with_limit else ""))
    variant = f"{client.name}, {state}"
    rows = [Row("nbd-vs-qemu", variant, SUBJECT, PEER, stats[0], stats[1],
                "<= 1.0x qemu-nbd", 1.0, False, extra={"note": note})]
    if with_limit:
        rows.append(Row("nbd-vs-file", variant, SUBJECT, LIMIT, stats[0], stats[2],
                        ">= 0.8x nbdkit file", 0.8, True,
                        extra={"note": f"the same runs as *nbd-vs-qemu / {variant}*; "
                                       f"{LIMIT} serves the overlay's raw image file"}))
    return rows


_STATE_TEXT = {"fresh": "no cluster allocated", "half": "every other cluster allocated",
               "full": "every cluster allocated"}


def _run(client: Client, kind: str, state: str, overlays: dict[tuple[str, str], Overlay],
         short: Path, uris: dict[str, str]) -> Callable[[], float]:
    if not client.writes:
        return lambda: client.run(uris[kind])
    counter = iter(range(1 << 30))

    def run() -> float:
        d = short / f"w-{kind}-{next(counter)}"
        image = overlays[(kind, state)].copy_to(d)
        try:
            with _serving(kind, image, d / "s.sock") as uri:
                return client.run(uri)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return run
