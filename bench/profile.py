"""Profiles of the workloads that miss their targets: the evidence behind the results page notes.

``python -m bench.profile [WORKLOAD ...] [--out DIR]``: each in-process workload runs under
pyinstrument (a flat list of functions by own time, then the call tree down to 3 % of the
total); the NBD workloads sample the nbdkit process that hosts the Python plugin with py-spy.
Results go to ``bench/results/profiles/WORKLOAD.txt``. Needs ``pip install pyinstrument py-spy``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .images import addcow_image, data_file

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20


def _pyinstrument(fn: Callable[[], None]) -> str:
    from pyinstrument import Profiler

    prof = Profiler(interval=0.0005)
    prof.start()
    fn()
    prof.stop()
    tree = prof.output_text(time="percent_of_total",
                            processor_options={"filter_threshold": 0.03})
    lines = tree.splitlines()
    # Drop pyinstrument's banner: keep the summary numbers and the tree.
    head = [m.group(0) for ln in lines[:4]
            for m in [re.search(r"(Samples|Duration):.*", ln)] if m]
    body = [ln for ln in lines if "%" in ln and not ln.lstrip().startswith("_")]
    return "\n".join([*head, *body])


def _warm(*paths: Path) -> None:
    """Read files once so the profile shows the code, not the disk (the scenarios warm up too)."""
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


def random_reads(cache: str) -> str:
    from addcow_ref import open_image

    size = 64 * MIB
    img = addcow_image(cache, size, fill="random", data=True)
    rng = random.Random(7)
    offsets = [rng.randrange(size >> 12) << 12 for _ in range(20000)]

    def run() -> None:
        with open_image(img) as im:
            for off in offsets:
                im.read(off, 4096)
    _warm(img.parent / "img.raw", img.parent / "base.raw")
    return _pyinstrument(run)


def cow_writes(cache: str) -> str:
    import addcow_ref

    size = 256 * MIB
    base = addcow_image(cache, size, fill="zero", data=True).parent / "base.raw"
    d = Path(tempfile.mkdtemp(prefix="prof-cow-"))
    try:
        (d / "base.raw").symlink_to(base)
        addcow_ref.create(d / "o.addcow", image_file="o.raw", backing_file="base.raw",
                          backing_format="raw")
        offsets = random.Random(5).sample(range(0, size, 64 << 10), size >> 16)
        _warm(base)

        def run() -> None:
            with addcow_ref.open_image(d / "o.addcow", "r+") as im:
                for off in offsets:
                    im.write(off, b"\xa5" * 4096)
                im.flush()
        return _pyinstrument(run)
    finally:
        shutil.rmtree(d)


def check_64t(cache: str) -> str:
    img = addcow_image(cache, 64 << 40, fill="random")

    def run() -> None:
        from addcow_conformance.checker.cli import main

        main(["-q", str(img)])
    return _pyinstrument(run)


def _nbd(cache: str, direction: str) -> str:
    """Samples of the nbdkit process (the Python plugin) while nbdcopy runs: py-spy over every
    thread and, at the same time, py-spy ``--gil`` (only the thread holding the GIL: how much of
    the copy is Python work at all); then a second copy under ``strace -c`` for the syscalls.

    ``read`` and ``write`` use an image whose clusters are all allocated; ``cow-write`` copies
    into a fresh overlay of a raw backing file, so every cluster is allocated by the copy.
    """
    size = 512 * MIB
    d = Path(tempfile.mkdtemp(prefix="prof-nbd-"))
    try:
        src = data_file(d / "src.raw", size, 9)
        rate = 500
        with _served(cache, direction, size, d / "a") as (nbdkit, uri):
            spies = [subprocess.Popen(["py-spy", "record", "--pid", nbdkit, "--rate", str(rate),
                                       "--format", "raw", "--nonblocking", *extra, "-o",
                                       str(d / f"spy{i}.txt")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for i, extra in enumerate(([], ["--gil"]))]
            time.sleep(1.0)
            t0 = time.perf_counter()
            _nbdcopy(direction, uri, src)
            copy_s = time.perf_counter() - t0
            time.sleep(0.2)
            for spy in spies:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
        gil = sum(int(ln.rpartition(" ")[2]) for ln in (d / "spy1.txt").read_text().splitlines()
                  if ln.rpartition(" ")[2].isdigit())
        held = min(1.0, gil / (rate * (copy_s + 0.2)))
        with _served(cache, direction, size, d / "b") as (nbdkit, uri):
            trace = subprocess.Popen(["strace", "-c", "-f", "-w", "-p", nbdkit, "-o",
                                      str(d / "strace.txt")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            _nbdcopy(direction, uri, src)
            trace.send_signal(signal.SIGINT)
            trace.wait(timeout=60)
        syscalls = (d / "strace.txt").read_text().splitlines()[:9]
        return "\n".join([
            f"{_what(direction, size)} took {copy_s:.2f} s; the GIL was held about "
            f"{100 * held:.0f} % of that time (py-spy --gil samples / rate / duration)", "",
            _collapse((d / "spy0.txt").read_text()), "",
            "strace -c -f -w of a second copy (wall seconds summed over threads):",
            *syscalls])
    finally:
        shutil.rmtree(d)


#: Random 4 KiB requests of the fio workloads, as in the *nbd-vs-qemu* rows (16 in flight).
FIO_IOS = 16384


def _what(direction: str, size: int) -> str:
    if direction.startswith("rand-"):
        return f"fio, {FIO_IOS} random 4 KiB requests over {size >> 20} MiB,"
    return f"nbdcopy of {size >> 20} MiB"


def _nbdcopy(direction: str, uri: str, src: Path) -> None:
    """The client of the workload: nbdcopy for the sequential ones, fio's nbd engine for the
    random 4 KiB ones (``rand-*``)."""
    if direction.startswith("rand-"):
        rw = "randread" if direction == "rand-read" else "randwrite"
        argv = ["fio", "--name=prof", "--ioengine=nbd", f"--uri={uri}", f"--rw={rw}",
                "--bs=4k", "--iodepth=16", f"--size={src.stat().st_size}",
                f"--io_size={FIO_IOS * 4096}", "--randrepeat=1", "--norandommap",
                "--output=/dev/null", *(["--end_fsync=1"] if rw == "randwrite" else [])]
    elif direction in ("read", "half-read"):
        argv = ["nbdcopy", uri, "null:"]
    else:
        argv = ["nbdcopy", "--flush", str(src), uri]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def _served(cache: str, direction: str, size: int, d: Path) -> Iterator[tuple[str, str]]:
    """``addcow serve`` on a fresh overlay (cow-write, rand-cow-write), a half-allocated one
    (half-read) or the cached allocated image; yields the nbdkit process id and the URI."""
    import addcow_ref

    d.mkdir()
    if direction in ("cow-write", "rand-cow-write", "half-read"):
        base = addcow_image(cache, size, fill="zero", data=True).parent / "base.raw"
        (d / "base.raw").symlink_to(base)
        img = d / "o.addcow"
        addcow_ref.create(img, image_file="o.raw", backing_file="base.raw",
                          backing_format="raw")
        if direction == "half-read":  # every other cluster allocated, as *nbd-vs-qemu*'s half
            with addcow_ref.open_image(img, "r+") as im:
                for off in range(0, size, 128 << 10):
                    im.write(off, b"\x5a" * (64 << 10))
    else:
        img = addcow_image(cache, size, fill="ones", backing=False, data=True)
    sock = d / "s.sock"
    serve = subprocess.Popen([sys.executable, "-m", "addcow_ref.cli.serve", str(img), "--socket",
                              str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if sock.exists():
                break
            time.sleep(0.05)
        nbdkit = subprocess.run(["pgrep", "-P", str(serve.pid), "nbdkit"], capture_output=True,
                                text=True, check=True).stdout.split()[0]
        yield nbdkit, f"nbd+unix:///?socket={sock}"
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)


def _collapse(raw: str) -> str:
    """Top stacks and top leaf frames from py-spy's collapsed ``a;b;c count`` lines."""
    stacks: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = [f for f in stack.split(";") if f.strip()]
        leaf = frames[-1] if frames else "(idle or in C, no Python frame)"
        stacks[" <- ".join(reversed(frames[-6:])) or leaf] += int(n)
        leaves[leaf] += int(n)
    total = sum(leaves.values()) or 1
    out = [f"{total} samples; own time by innermost Python frame:"]
    out += [f"  {100 * n / total:5.1f} %  {f}" for f, n in leaves.most_common(10)]
    out += ["", "top stacks (innermost first, 6 frames):"]
    out += [f"  {100 * n / total:5.1f} %  {s}" for s, n in stacks.most_common(8)]
    return "\n".join(out)


def adapter_call(cache: str) -> str:
    """What one command-adapter call costs: the harness starts ``addcow-impl`` several times per
    vector. Wall times of a call that does nothing but answer, against empty interpreters, then
    where an in-process import of the adapter spends its time."""
    from .measure import Stats, run_process

    impl = str(Path(sys.executable).parent / "addcow-impl")

    def median(argv: list[str]) -> float:
        run_process(argv)
        return Stats(tuple(run_process(argv)[0] for _ in range(9))).median

    lines = [f"addcow-impl capabilities   {median([impl, 'capabilities']) * 1000:6.0f} ms",
             f"python -c pass             {median([sys.executable, '-c', 'pass']) * 1000:6.0f} ms",
             f"python -S -c pass          "
             f"{median([sys.executable, '-S', '-c', 'pass']) * 1000:6.0f} ms",
             "(medians of 9 whole processes, bytecode cached)", ""]

    def imp() -> None:
        import importlib

        ours = ("addcow_ref", "addcow_conformance")
        for mod in [m for m in sys.modules if m.split(".")[0] in ours]:
            del sys.modules[mod]
        importlib.import_module("addcow_conformance.adapters.reference")
    return "\n".join(lines) + _pyinstrument(imp)


def bitmap_extents(cache: str) -> str:
    """iter_runs over 8 MiB of alternating 64-cluster runs (the *bitmap-extents* half-runs
    case): a million runs, each one a Python tuple."""
    from addcow_ref.format.bitmap import iter_runs

    data = (b"\xff" * 8 + b"\0" * 8) * ((8 * MIB) // 16)

    def run() -> None:
        for _ in iter_runs(data, 0, len(data) * 8):
            pass
    # The benchmark process has loaded numpy by then (earlier scans passed the library's lazy
    # import threshold); profile the same path.
    importlib.import_module("numpy")
    run()
    return _pyinstrument(run)


WORKLOADS: dict[str, Callable[[str], str]] = {
    "random-reads": random_reads,
    "cow-writes": cow_writes,
    "check-64t": check_64t,
    "adapter-call": adapter_call,
    "bitmap-extents": bitmap_extents,
    "nbd-read": lambda c: _nbd(c, "read"),
    "nbd-write": lambda c: _nbd(c, "write"),
    "nbd-cow-write": lambda c: _nbd(c, "cow-write"),
    "nbd-half-read": lambda c: _nbd(c, "half-read"),
    "nbd-rand-read": lambda c: _nbd(c, "rand-read"),
    "nbd-rand-cow-write": lambda c: _nbd(c, "rand-cow-write"),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    ap.add_argument("workloads", nargs="*", choices=[*WORKLOADS, []], default=[])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "profiles")
    ap.add_argument("--cache", default=os.environ.get("ADDCOW_BENCH_CACHE",
                                                      "/var/tmp/addcow-bench"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # Profile code as an installed package runs: from cached bytecode, not recompiled per import
    # (this machine sets PYTHONDONTWRITEBYTECODE). Children inherit the same settings.
    sys.dont_write_bytecode = False
    sys.pycache_prefix = os.path.join(os.path.abspath(args.cache), "pycache")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = sys.pycache_prefix
    for name in args.workloads or list(WORKLOADS):
        text = WORKLOADS[name](args.cache)
        (args.out / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
        print(f"== {name}\n{text}\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
