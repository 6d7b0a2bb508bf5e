"""``addcow hydrate`` against what a qcow2 user runs to make an overlay stand alone:
``qemu-img rebase -b ''`` (a safe rebase onto nothing copies every backing cluster in).

The backing file is a sparse raw disk of 2 GiB with 128 MiB of data in 16 extents of 8 MiB,
spread evenly (a used disk whose free space was never written). Each repeat starts from fresh
overlays of it, an add-cow one and a qcow2 one with the same 64 KiB clusters and nothing
allocated; creating them stays outside the timed region, and both commands run as a user runs
them, each in its own process. Two rows: the time of the command, and the bytes the result takes
on disk (``st_blocks``; the add-cow file plus its raw image file, against the qcow2 file), since
a hydrate that writes the backing file's holes out as zeros is slow *and* wastes the space.
The base itself is not counted for either: it is no longer needed afterwards. After the last
repeat ``qemu-img compare`` checks that both results hold the same guest disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from .images import human_size
from .measure import Row, Stats
from .registry import Params, ScenarioSkipped, scenario
from .scn_check import _tool

__all__ = ["hydrate_vs_qemu"]

MIB = 1 << 20
GIB = 1 << 30
CLUSTER = 64 << 10
SUBJECT, PEER = "addcow hydrate", "qemu-img rebase -b ''"


def _sparse_base(path: Path, size: int, extents: int, extent_len: int) -> None:
    """``size`` bytes with ``extents`` data extents of ``extent_len`` bytes, evenly spaced; the
    rest holes."""
    block = bytes(range(256)) * (MIB // 256)
    with open(path, "wb") as f:
        f.truncate(size)
        step = size // extents
        for i in range(extents):
            f.seek(i * step)
            for _ in range(extent_len // MIB):
                f.write(block)


def _usage(*paths: Path) -> int:
    return sum(os.stat(p).st_blocks * 512 for p in paths)


def _timed(argv: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, timeout=1800)
    return time.perf_counter() - t0


def _fresh(d: Path, base: Path, size: int) -> None:
    """Empty overlays of ``base`` in ``d``: ``o.addcow`` (+ ``o.raw``) and ``o.qcow2``."""
    import addcow_ref

    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    (d / "base.raw").symlink_to(base.resolve())
    addcow_ref.create(d / "o.addcow", image_file="o.raw", backing_file="base.raw",
                      backing_format="raw", cluster_bits=16)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw",
                    "-o", f"cluster_size={CLUSTER}", "o.qcow2", str(size)], cwd=d, check=True)


@scenario("hydrate-vs-qemu", "addcow hydrate vs qemu-img rebase -b '' of an overlay of a sparse "
                             "base: time and bytes allocated", needs=("qemu-img",))
def hydrate_vs_qemu(p: Params) -> list[Row]:
    addcow = _tool("addcow")
    size, extents, extent_len = (64 * MIB, 4, MIB) if p.tiny else (2 * GIB, 16, 8 * MIB)
    used = extents * extent_len
    root = Path(p.workdir) / "hydrate-vs-qemu"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    base = root / "base.raw"
    _sparse_base(base, size, extents, extent_len)
    if _usage(base) > 2 * used:
        raise ScenarioSkipped(f"the file system under {root} does not keep holes")
    times: dict[str, list[float]] = {SUBJECT: [], PEER: []}
    sizes: dict[str, list[float]] = {SUBJECT: [], PEER: []}
    run = root / "run"
    for i in range(p.repeats):
        order = [SUBJECT, PEER] if i % 2 == 0 else [PEER, SUBJECT]
        _fresh(run, base, size)
        for who in order:
            if who == SUBJECT:
                times[who].append(_timed([addcow, "hydrate", "-q", "o.addcow"], run))
                sizes[who].append(_usage(run / "o.addcow", run / "o.raw") / MIB)
            else:
                times[who].append(_timed(["qemu-img", "rebase", "-q", "-f", "qcow2", "-b", "",
                                          "o.qcow2"], run))
                sizes[who].append(_usage(run / "o.qcow2") / MIB)
    subprocess.run(["qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", "o.raw", "o.qcow2"],
                   cwd=run, check=True)
    variant = f"{human_size(size)}, {human_size(used)} used"
    extra = {"x": size, "x_label": "virtual size",
             "note": f"base: {extents} data extents of {human_size(extent_len)}; qcow2 and "
                     "add-cow with 64 KiB clusters"}
    shutil.rmtree(root)
    return [
        Row("hydrate-vs-qemu", variant, SUBJECT, PEER, Stats(tuple(times[SUBJECT])),
            Stats(tuple(times[PEER])), "<= 2x qemu-img", 2.0, False, extra=dict(extra)),
        Row("hydrate-vs-qemu", f"{variant}, allocated", SUBJECT, PEER,
            Stats(tuple(sizes[SUBJECT])), Stats(tuple(sizes[PEER])), "<= 1.1x qemu-img", 1.1,
            False, metric="MiB on disk", extra=dict(extra)),
    ]
