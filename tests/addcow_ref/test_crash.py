"""Crash consistency: power loss at every write/flush boundary of random workloads.

Each workload (writes of any size and alignment, flushes, reopens) runs once to count its write
and flush boundaries (pwrite, fsync, truncate on either file), then once per boundary with power
lost right before it. The surviving files are materialised three ways: only fsynced contents
(``drop``), every write (``keep``), or a random subset (``random``). After reopening:

* every byte reads as its value at the last completed ``flush()`` or as a value written after
  it: never zeros or stale backing data in place of flushed data (WRITE-DATA-BEFORE-BIT);
* the add-cow file still passes the structural checks.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import addcow_ref

from .faultfs import CRASH_POINTS, CrashFS, PowerLoss, replay_crashes
from .helpers import check_valid, make_image

CLUSTER_BITS = 9
SIZE = 24 * 512
MODES = ("drop", "keep", "random")
SEEDS = range(3)

#: Crash points exercised, summed over the tests of this module (printed in the summary).
EXERCISED: list[int] = []


@dataclass
class Model:
    """What a reader may see after a crash, per byte: the flushed value or a newer one."""

    flushed: bytearray
    newer: dict[int, set[int]] = field(default_factory=dict)

    def wrote(self, offset: int, data: bytes) -> None:
        for i, b in enumerate(data):
            self.newer.setdefault(offset + i, set()).add(b)

    def flushed_now(self, current: bytearray) -> None:
        self.flushed = bytearray(current)
        self.newer.clear()


def workload(seed: int) -> list[tuple[str, int, bytes]]:
    rng = random.Random(seed)
    ops: list[tuple[str, int, bytes]] = []
    for _ in range(24):
        r = rng.random()
        if r < 0.7:
            off = rng.randrange(SIZE)
            n = rng.choice([1, 7, 300, 512, 700, 1500])
            n = min(n, SIZE - off)
            ops.append(("write", off, rng.randbytes(n)))
        elif r < 0.9:
            ops.append(("flush", 0, b""))
        else:
            ops.append(("reopen", 0, b""))
    return ops


def run(path: Path, base: bytes, ops: list[tuple[str, int, bytes]], fs: CrashFS,
        tiny_cache: bool) -> Model:
    """Run ``ops`` through ``fs``; returns the model of what may survive when it stops."""
    cache = {"cache_chunk_size": 2, "cache_capacity": 1} if tiny_cache else {}
    current = bytearray(base)
    model = Model(bytearray(base))
    img = addcow_ref.open_image(path, "r+", fs=fs, **cache)
    try:
        for kind, off, data in ops:
            if kind == "write":
                model.wrote(off, data)  # before the call: a crash inside it may keep it
                img.write(off, data)
                current[off:off + len(data)] = data
            elif kind == "flush":
                img.flush()
                model.flushed_now(current)
            else:
                img.close()
                model.flushed_now(current)
                img = addcow_ref.open_image(path, "r+", fs=fs, **cache)
        img.close()
        model.flushed_now(current)
    except PowerLoss:
        with contextlib.suppress(PowerLoss):
            img.close()  # only releases the files: every later boundary raises too
    return model


def verify(path: Path, model: Model) -> None:
    check_valid(path)
    with addcow_ref.open_image(path) as img:
        got = img.read(0, SIZE)
    for i, b in enumerate(got):
        if b != model.flushed[i] and b not in model.newer.get(i, ()):
            raise AssertionError(f"byte {i} reads {b:#x}; flushed {model.flushed[i]:#x}, "
                                 f"written since {sorted(model.newer.get(i, ()))}")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("tiny_cache", [False, True], ids=["cache", "tiny-cache"])
def test_power_loss_at_every_boundary(fast_tmp: Path, seed: int, tiny_cache: bool,
                                      pytestconfig: pytest.Config) -> None:
    tmp_path = fast_tmp
    rng = random.Random(seed)
    backing = rng.randbytes(SIZE - 700)  # shorter than the disk: zeros past its end
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    path = make_image(pristine, size=SIZE, cluster_bits=CLUSTER_BITS, backing=backing)
    base = bytearray(backing.ljust(SIZE, b"\0"))
    ops = workload(seed)

    counter = CrashFS()
    shutil.copytree(pristine, tmp_path / "count")
    run(tmp_path / "count" / path.name, base, ops, counter, tiny_cache)
    total = counter.boundaries
    assert total > len(ops)  # the workload did reach the disk

    exercised = 0
    for crash_at in range(1, total + 1):
        for mode in MODES:
            work = tmp_path / f"w{crash_at}{mode}"
            shutil.copytree(pristine, work)
            fs = CrashFS(crash_at)
            model = run(work / path.name, base, ops, fs, tiny_cache)
            assert fs.crashed
            fs.materialize(mode, rng)
            verify(work / path.name, model)
            exercised += 1
            shutil.rmtree(work)
    EXERCISED.append(exercised)
    pytestconfig.stash[CRASH_POINTS].append(exercised)
    print(f"\ncrash points exercised (seed {seed}): {exercised}; "
          f"total so far in this module: {sum(EXERCISED)}")


def test_lost_bitmap_never_exposes_stale_data(tmp_path: Path) -> None:
    """A directed case: data written and flushed, then more data and power loss before the
    bitmap write. The flushed cluster must still read its flushed data."""
    backing = bytes([0xBB]) * SIZE
    path = make_image(tmp_path, size=SIZE, cluster_bits=CLUSTER_BITS, backing=backing)
    fs = CrashFS()
    with addcow_ref.open_image(path, "r+", fs=fs) as img:
        img.write(0, b"\x11" * 100)
        img.flush()
        before = fs.boundaries
        img.write(5000, b"\x22" * 10)
    # Crash before the bitmap chunk of the second write (boundary: data write, fsync, ...).
    crash = CrashFS(before + 2)
    work = tmp_path / "again"
    work.mkdir()
    path2 = make_image(work, size=SIZE, cluster_bits=CLUSTER_BITS, backing=backing)
    img = addcow_ref.open_image(path2, "r+", fs=crash)
    img.write(0, b"\x11" * 100)
    img.flush()
    img.write(5000, b"\x22" * 10)  # boundary before + 1: the data write
    with pytest.raises(PowerLoss):
        img.close()  # power lost at its data fsync, before any bitmap write
    crash.materialize("drop", random.Random(0))
    with addcow_ref.open_image(path2) as again:
        assert again.read(0, 100) == b"\x11" * 100
        assert again.read(100, 412) == backing[100:512]
        assert again.read(5000, 10) in (b"\x22" * 10, backing[5000:5010])
    check_valid(path2)


def _prepare(pristine: Path, old: int, rng: random.Random, backing: bytes, *,
             hydrated: bool, long_image: int) -> tuple[Path, bytearray]:
    """An image of ``old`` bytes with a few writes (then hydrated, if asked) whose image file
    is ``long_image`` bytes longer than the disk, holding garbage there: what a crash after a
    shrink's header leaves, or a user-supplied raw file (IMG-LENGTH)."""
    path = make_image(pristine, size=old, cluster_bits=CLUSTER_BITS + 1, backing=backing)
    model = bytearray(backing[:old].ljust(old, b"\0"))
    with addcow_ref.open_image(path, "r+") as img:
        for _ in range(6):
            off = rng.randrange(old)
            data = rng.randbytes(min(600, old - off))
            img.write(off, data)
            model[off:off + len(data)] = data
        if hydrated:
            img.hydrate()
    if long_image:
        with open(pristine / "disk.raw", "r+b") as f:
            f.seek(old)
            f.write(b"\xee" * long_image)
    return path, model


def _crash_replays(fast_tmp: Path, pristine: Path, name: str, rng: random.Random,
                   operate: Callable[[addcow_ref.AddCowImage], None],
                   verify_one: Callable[[Path], None], *, noop: bool = False,
                   **open_args: int) -> int:
    """Run ``operate`` on the image ``name`` once to count its boundaries, then once per
    boundary and mode with power lost there (:func:`replay_crashes`), calling ``verify_one``
    on what survives; returns the crash points. ``noop``: the operation must change no file
    at all (no boundary)."""
    def run(directory: Path, fs: CrashFS) -> None:
        img = addcow_ref.open_image(directory / name, "r+", fs=fs, **open_args)
        try:
            operate(img)
        finally:
            img.close()  # after a power loss, only releases the files

    def verify(directory: Path) -> None:
        check_valid(directory / name)
        verify_one(directory / name)

    def finished(directory: Path) -> None:
        check_valid(directory / name, strict=True)  # a finished operation leaves no trace

    counter = replay_crashes(fast_tmp, pristine, run, verify, finished=finished, modes=MODES,
                             rng=rng)
    total = counter.boundaries
    assert total == 0 if noop else total >= 2
    EXERCISED.append(total * len(MODES))
    return total * len(MODES)


@pytest.mark.parametrize("hydrated", [False, True], ids=["bits", "all-allocated"])
@pytest.mark.parametrize("long_image", [0, 40 * 512], ids=["exact", "long-image"])
@pytest.mark.parametrize(("old", "new"), [
    (SIZE, SIZE + 5 * 512),        # grow inside the last bitmap byte and past it
    (SIZE - 512, SIZE + 40 * 512),  # grow from a partial last cluster (1 KiB clusters)
    (SIZE, SIZE - 7 * 512),        # shrink
    (SIZE, 512),
])
def test_power_loss_during_resize(fast_tmp: Path, old: int, new: int, hydrated: bool,
                                  long_image: int, pytestconfig: pytest.Config) -> None:
    """Every boundary of a resize (RESIZE-GROW-ORDER, RESIZE-SHRINK): the image stays valid
    (set padding bits and trailing bytes are warnings, never errors), has the old or the new
    size, every byte below both sizes reads its flushed value, the new part of a grow reads
    only zeros (never backing bytes, never the garbage of a long image file), and an image
    with ``all_allocated`` keeps it at every point, with every bit 1 (checked by
    ``check_valid``)."""
    rng = random.Random(old ^ new ^ long_image ^ hydrated)
    backing = rng.randbytes(SIZE + 4096)  # data past every old size: a grow must hide it
    pristine = fast_tmp / "pristine"
    pristine.mkdir()
    path, model = _prepare(pristine, old, rng, backing, hydrated=hydrated,
                           long_image=long_image)

    def verify_one(p: Path) -> None:
        with addcow_ref.open_image(p) as again:
            assert again.virtual_size in (old, new)
            assert again.all_allocated == hydrated
            low = min(old, new)
            assert again.read(0, low) == model[:low]
            if again.virtual_size == new > old:
                assert again.read(old, new - old) == bytes(new - old)

    points = _crash_replays(fast_tmp, pristine, path.name, rng, lambda img: img.resize(new),
                            verify_one)
    pytestconfig.stash[CRASH_POINTS].append(points)
    print(f"\nresize {old} -> {new}: {points} crash points; "
          f"total so far in this module: {sum(EXERCISED)}")


@pytest.mark.parametrize("hydrated", [False, True], ids=["bits", "all-allocated"])
@pytest.mark.parametrize("long_image", [0, 40 * 512], ids=["exact", "long-image"])
def test_power_loss_during_hydrate(fast_tmp: Path, hydrated: bool, long_image: int,
                                   pytestconfig: pytest.Config) -> None:
    """Every boundary of a hydrate (HYDRATE-ORDER): contents never change, ``all_allocated``
    is never on disk before every bit is (FEAT-ALL-ALLOCATED, checked by ``check_valid``), and
    a finished hydrate leaves an image file exactly ``virtual_size`` long (IMG-LENGTH). The
    backing file is sparse, so hydrate's holes (punched, not written) are crash points too."""
    rng = random.Random(99 ^ long_image)
    backing = bytearray(rng.randbytes(SIZE - 1000))
    backing[2048:6144] = bytes(4096)  # a run of zeros: a hole in the copy below
    pristine = fast_tmp / "pristine"
    pristine.mkdir()
    base = pristine / "disk-base.raw"
    path, model = _prepare(pristine, SIZE, rng, bytes(backing), hydrated=hydrated,
                           long_image=long_image)
    model = bytearray(model)
    sparse = pristine / "sparse.tmp"
    with open(sparse, "wb") as f:  # the same bytes with a real hole at [2048, 6144)
        f.write(backing[:2048])
        f.seek(6144)
        f.write(backing[6144:])
    os.replace(sparse, base)

    def verify_one(p: Path) -> None:
        with addcow_ref.open_image(p) as again:
            assert again.read(0, SIZE) == model

    points = _crash_replays(fast_tmp, pristine, path.name, rng, lambda img: img.hydrate(),
                            verify_one, noop=hydrated and not long_image,
                            cache_chunk_size=1, cache_capacity=1)
    pytestconfig.stash[CRASH_POINTS].append(points)
    print(f"\nhydrate ({'all-allocated' if hydrated else 'bits'}, long {long_image}): "
          f"{points} crash points; total so far in this module: {sum(EXERCISED)}")
