"""Crash consistency of the operations that replace the add-cow file whole (commit, rebase and
the upgrade of a version 1 image): power lost at every write, sync and rename boundary
(COMMIT-ORDER, REBASE-ORDER, and the upgrade's "original kept" promise, spec page legacy).

Each operation runs once to count its boundaries (pwrite, fsync, truncate, punch, rename and
directory fsync, on every file it touches), then once per boundary with power lost right
before it, and what survives is materialised four ways: only what was synced, everything, a
random subset, or every rename but only synced data (a rename survives its directory's fsync,
or by chance, or on a file system that journals names before data). Whatever survives:

* the image's guest disk reads exactly as before the operation: a commit makes the backing
  file durable before it clears a bit, a safe rebase makes its copied clusters durable before
  it changes the name;
* the add-cow files pass the structural checks;
* a rebase leaves the old backing name and format or the new ones, never a mix;
* a commit changes no byte of the backing file's guest disk outside the image's allocated
  clusters;
* an upgrade leaves the version 1 file byte for byte, or a valid version 2 file.

Two planted bugs (a commit that never syncs the backing file, a rename of an add-cow file that
was never synced) show that the replays catch a broken order.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.engine.fileio import BlockFile, FileSystem
from addcow_ref.format.constants import VERSION_2
from addcow_ref.ops import commit as commit_mod
from addcow_ref.ops import metafile, safefile
from addcow_ref.ops.commit import commit
from addcow_ref.ops.rebase import rebase

from .faultfs import CRASH_POINTS, replay_crashes
from .helpers import check_valid, make_v1

CB = 9
CLUSTERS = 40
SIZE = CLUSTERS << CB
MODES = ("drop", "keep", "random", "metadata")

#: ``operate(directory, fs)``: the operation under test, on the files in ``directory``.
Operate = Callable[[Path, FileSystem], object]
#: ``verify(directory)``: asserts what must hold of the files after any crash.
Verify = Callable[[Path], None]


@dataclass
class Disk:
    """A prepared directory and what its image's guest disk reads."""

    pristine: Path
    guest: bytes


def _create(directory: Path, name: str, *, backing: str | None = None,
            backing_format: str | None = None) -> Path:
    path = directory / f"{name}.addcow"
    addcow_ref.create(path, size=SIZE, image_file=f"{name}.raw", backing_file=backing,
                      backing_format=backing_format, cluster_bits=CB)
    return path


def _scribble(path: Path, rng: random.Random, writes: int) -> None:
    """Writes of any size and alignment, some across clusters, some of whole clusters."""
    with addcow_ref.open_image(path, "r+") as img:
        for _ in range(writes):
            off = rng.randrange(SIZE)
            data = rng.randbytes(min(rng.choice([1, 300, 512, 1500]), SIZE - off))
            img.write(off, data)


def _guest(path: Path, size: int = SIZE) -> bytes:
    with addcow_ref.open_image(path) as img:
        return img.read(0, size)


def _header(path: Path) -> tuple[str | None, str | None, set[int]]:
    """The backing name and format of ``path``, and its allocated clusters."""
    with addcow_ref.open_image(path) as img:
        d = img.descriptor
        name = None if d.backing_name is None else d.backing_name.decode()
        clusters = {c for e in img.iter_map() if e.allocated
                    for c in range(e.start >> CB, ((e.start + e.length - 1) >> CB) + 1)}
        return name, d.backing_format, clusters


def _replays(fast_tmp: Path, disk: Disk, operate: Operate, verify: Verify,
             finished: Verify, *, renames: bool = True) -> int:
    """Replay ``operate`` with power lost at each of its boundaries, in each mode
    (:func:`replay_crashes`); the crash points. ``renames``: the operation replaces an add-cow
    file (all but a commit that keeps it), so a rename and a directory fsync are among them."""
    counter = replay_crashes(fast_tmp, disk.pristine, operate, verify, finished=finished,
                             modes=MODES, rng=random.Random(len(disk.guest)))
    ops = {op for op, _ in counter.log}
    assert "fsync" in ops
    assert ({"replace", "fsync_dir"} <= ops) == renames, ops  # a rename is a crash point too
    return counter.boundaries * len(MODES)


def _raw_backed(fast_tmp: Path) -> Disk:
    """disk.addcow over disk-base.raw (shorter than the disk), with data in some clusters."""
    rng = random.Random(7)
    pristine = fast_tmp / "pristine"
    pristine.mkdir()
    (pristine / "disk-base.raw").write_bytes(rng.randbytes(SIZE - 700))
    path = _create(pristine, "disk", backing="disk-base.raw", backing_format="raw")
    _scribble(path, rng, 6)
    return Disk(pristine, _guest(path))


def _add_cow_backed(fast_tmp: Path) -> Disk:
    """top.addcow over mid.addcow over base.raw, data in some clusters of both images."""
    rng = random.Random(11)
    pristine = fast_tmp / "pristine"
    pristine.mkdir()
    (pristine / "base.raw").write_bytes(rng.randbytes(SIZE))
    mid = _create(pristine, "mid", backing="base.raw", backing_format="raw")
    _scribble(mid, rng, 4)
    top = _create(pristine, "top", backing="mid.addcow", backing_format="add-cow")
    _scribble(top, rng, 5)
    return Disk(pristine, _guest(top))


def _commit_checks(disk: Disk, image: str, backing: str, *,
                   keep: bool) -> tuple[Operate, Verify, Verify]:
    """The three callables of a commit of ``image`` into ``backing`` (file names)."""
    read_backing = (_guest if backing.endswith(".addcow")
                    else lambda p: p.read_bytes().ljust(SIZE, b"\0")[:SIZE])
    before = read_backing(disk.pristine / backing)
    _, _, allocated = _header(disk.pristine / image)

    def operate(d: Path, fs: FileSystem) -> object:
        return commit(str(d / image), keep=keep, fs=fs)

    def verify(d: Path) -> None:
        check_valid(d / image)
        if backing.endswith(".addcow"):
            check_valid(d / backing)
        assert _guest(d / image) == disk.guest, "the image's guest disk changed"
        now = read_backing(d / backing)
        for c in range(CLUSTERS):
            if c not in allocated:
                span = slice(c << CB, (c + 1) << CB)
                assert now[span] == before[span], f"backing cluster {c} changed"

    def finished(d: Path) -> None:
        assert read_backing(d / backing) == disk.guest  # every allocated cluster committed
        _, _, left = _header(d / image)
        assert left == (allocated if keep else set())
        if not keep:
            assert (d / image).with_suffix(".raw").read_bytes() == bytes(SIZE)  # punched

    return operate, verify, finished


@pytest.mark.parametrize("keep", [False, True], ids=["empty", "keep"])
def test_power_loss_during_commit_into_raw(fast_tmp: Path, keep: bool,
                                           pytestconfig: pytest.Config) -> None:
    disk = _raw_backed(fast_tmp)
    points = _replays(fast_tmp, disk, *_commit_checks(disk, "disk.addcow", "disk-base.raw",
                                                      keep=keep), renames=not keep)
    pytestconfig.stash[CRASH_POINTS].append(points)
    print(f"\n{points} crash points")


def test_power_loss_during_commit_into_add_cow(fast_tmp: Path,
                                               pytestconfig: pytest.Config) -> None:
    disk = _add_cow_backed(fast_tmp)
    points = _replays(fast_tmp, disk, *_commit_checks(disk, "top.addcow", "mid.addcow",
                                                      keep=False))
    pytestconfig.stash[CRASH_POINTS].append(points)
    print(f"\n{points} crash points")


def _rebase_checks(disk: Disk, new: str, fmt: str, *, unsafe: bool = False,
                   new_guest: bytes | None = None) -> tuple[Operate, Verify, Verify]:
    """The three callables of a rebase of disk.addcow onto ``new`` (format ``fmt``; ``""``
    for no backing file)."""
    old = _header(disk.pristine / "disk.addcow")

    def operate(d: Path, fs: FileSystem) -> object:
        return rebase(str(d / "disk.addcow"), new, fmt or None, unsafe=unsafe, fs=fs)

    def verify(d: Path) -> None:
        check_valid(d / "disk.addcow")
        name, got_fmt, _ = _header(d / "disk.addcow")
        assert (name, got_fmt) in {old[:2], (new or None, fmt or None)}, (name, got_fmt)
        assert _guest(d / "disk.addcow") == disk.guest, "the image's guest disk changed"

    def finished(d: Path) -> None:
        name, got_fmt, clusters = _header(d / "disk.addcow")
        assert (name, got_fmt) == (new or None, fmt or None)
        if new_guest is not None:  # a safe rebase copied exactly the clusters that differ
            differ = {c for c in range(CLUSTERS)
                      if disk.guest[c << CB:(c + 1) << CB]
                      != new_guest[c << CB:(c + 1) << CB]}
            assert clusters == old[2] | differ

    return operate, verify, finished


def _rebase_disk(fast_tmp: Path) -> tuple[Disk, bytes]:
    """disk.addcow over disk-base.raw, and new.raw: the same bytes but for a few clusters
    (one of them allocated in the image, so it must not be copied)."""
    disk = _raw_backed(fast_tmp)
    rng = random.Random(3)
    data = bytearray((disk.pristine / "disk-base.raw").read_bytes().ljust(SIZE, b"\0"))
    for c in (0, 5, 6, 17, 39):
        data[c << CB:(c << CB) + 100] = rng.randbytes(100)
    (disk.pristine / "new.raw").write_bytes(bytes(data))
    return disk, bytes(data)


@pytest.mark.parametrize("form", ["safe", "unsafe-moved", "to-no-backing"])
def test_power_loss_during_rebase(fast_tmp: Path, form: str,
                                  pytestconfig: pytest.Config) -> None:
    disk, new_data = _rebase_disk(fast_tmp)
    if form == "safe":
        checks = _rebase_checks(disk, "new.raw", "raw", new_guest=new_data)
    elif form == "unsafe-moved":  # the backing file was moved: same bytes, new name
        shutil.copyfile(disk.pristine / "disk-base.raw", disk.pristine / "moved.raw")
        checks = _rebase_checks(disk, "moved.raw", "raw", unsafe=True)
    else:
        checks = _rebase_checks(disk, "", "")
    points = _replays(fast_tmp, disk, *checks)
    pytestconfig.stash[CRASH_POINTS].append(points)
    print(f"\n{points} crash points")


def test_power_loss_during_upgrade(fast_tmp: Path, pytestconfig: pytest.Config) -> None:
    image = random.Random(5).randbytes(4 << 16)  # 4 clusters of 64 KiB, 2 of them allocated
    pristine = fast_tmp / "pristine"
    pristine.mkdir()
    old = make_v1(pristine, image=image, bitmap=b"\x05", backing=b"\x77" * len(image))
    original = old.read_bytes()
    disk = Disk(pristine, _guest(old, len(image)))
    assert disk.guest == image[:1 << 16] + b"\x77" * (1 << 16) + image[2 << 16:3 << 16] \
        + b"\x77" * (1 << 16)

    def operate(d: Path, fs: FileSystem) -> object:
        addcow_ref.upgrade_v1(d / old.name, fs=fs)
        return None

    def verify(d: Path) -> None:
        if (d / old.name).read_bytes() != original:
            check_valid(d / old.name)
        assert _guest(d / old.name, len(image)) == disk.guest, "the guest disk changed"

    def finished(d: Path) -> None:
        with addcow_ref.open_image(d / old.name) as img:
            assert int(img.header.version) == VERSION_2

    points = _replays(fast_tmp, disk, operate, verify, finished)
    pytestconfig.stash[CRASH_POINTS].append(points)
    print(f"\n{points} crash points")


def test_the_replays_catch_a_commit_that_never_syncs_the_backing_file(
        fast_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """COMMIT-ORDER step 2 dropped: once the emptied overlay is durable, a power loss can
    lose the committed bytes, and the guest disk reads the old backing data."""
    monkeypatch.setattr(commit_mod._RawTarget, "sync", lambda self: None)
    disk = _raw_backed(fast_tmp)
    with pytest.raises(AssertionError, match="guest disk changed"):
        _replays(fast_tmp, disk, *_commit_checks(disk, "disk.addcow", "disk-base.raw",
                                                 keep=False))


def test_the_replays_catch_a_rename_of_an_unsynced_add_cow_file(
        fast_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The new add-cow file renamed over the old one before it is durable: a power loss that
    keeps the rename but not the writes leaves an empty or partial add-cow file."""
    real = safefile.adopt

    class Unsynced:
        def __init__(self, inner: BlockFile) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

        def fsync(self) -> None:
            pass

    monkeypatch.setattr(metafile, "adopt",
                        lambda fs, path, fd: Unsynced(real(fs, path, fd)))
    disk, new_data = _rebase_disk(fast_tmp)
    with pytest.raises(AssertionError, match=r"[(]metadata[)]: .*\[HDR-COMPLETE\]"):
        _replays(fast_tmp, disk, *_rebase_checks(disk, "new.raw", "raw", new_guest=new_data))
