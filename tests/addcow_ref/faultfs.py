"""Fault-injecting file systems for the reference implementation's tests.

``FaultFS`` calls a hook before every operation, which may raise (ENOSPC, EIO, a simulated
power loss) or sleep (to widen race windows). ``CrashFS`` also remembers, per file, the contents
as of the last ``fsync`` and every write and truncate since, so a test can stop a workload at any
operation boundary and materialise what a power loss would leave behind: the durable contents plus
none, all, or a random subset of the unsynced operations.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from addcow_ref.engine.fileio import BlockFile, OSFile, OSFileSystem
from addcow_ref.format.errors import AddCowError

Hook = Callable[[str, str], None]


class PowerLoss(BaseException):
    """Raised at the crash point; a BaseException so no ``except OSError`` swallows it."""


class FaultFile:
    def __init__(self, fs: FaultFS, inner: OSFile) -> None:
        self._fs = fs
        self._inner = inner

    @property
    def path(self) -> str:
        return self._inner.path

    def pread(self, offset: int, length: int) -> bytes:
        self._fs.hook("pread", self.path)
        return self._inner.pread(offset, length)

    def pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._fs.hook("pwrite", self.path)
        self._inner.pwrite(offset, data)
        self._fs.record(self.path, ("w", offset, bytes(data)))

    def fsync(self) -> None:
        self._fs.hook("fsync", self.path)
        self._inner.fsync()
        self._fs.synced(self.path)

    def truncate(self, size: int) -> None:
        self._fs.hook("truncate", self.path)
        self._inner.truncate(size)
        self._fs.record(self.path, ("t", size, b""))

    def size(self) -> int:
        return self._inner.size()

    def fileno(self) -> int | None:
        return None  # a copy *from* this file reads through the instrumented pread

    def copy_range(self, source: BlockFile, src_offset: int, dst_offset: int,
                   length: int) -> int:
        """One write boundary, recorded as the write of the bytes it copied. The copy itself is
        the real file's, whose source is instrumented (its ``fileno`` is None), so this runs
        :class:`OSFile`'s read-and-write fallback."""
        self._fs.hook("copy_range", self.path)
        n = self._inner.copy_range(source, src_offset, dst_offset, length)
        self._fs.record(self.path, ("w", dst_offset, self._inner.pread(dst_offset, n)))
        return n

    def data_segments(self, offset: int, length: int) -> Iterator[tuple[int, int]]:
        self._fs.hook("data_segments", self.path)
        yield from self._inner.data_segments(offset, length)

    def punch_hole(self, offset: int, length: int) -> None:
        """One write boundary, recorded as a write of zeros over the part inside the file."""
        self._fs.hook("punch_hole", self.path)
        n = min(length, self._inner.size() - offset)
        self._inner.punch_hole(offset, length)
        if n > 0:
            self._fs.record(self.path, ("w", offset, bytes(n)))

    def close(self) -> None:
        self._inner.close()


class FaultFS(OSFileSystem):
    """The real file system with a hook before every operation: ``hook(op, path)``."""

    def __init__(self, hook: Hook | None = None) -> None:
        self._hook = hook
        self.log: list[tuple[str, str]] = []
        self.opened: list[OSFile] = []

    def hook(self, op: str, path: str) -> None:
        self.log.append((op, path))
        if self._hook is not None:
            self._hook(op, path)

    def record(self, path: str, op: tuple[str, int, bytes]) -> None:
        pass

    def synced(self, path: str) -> None:
        pass

    def open(self, path: str, *, writable: bool, create: bool = False) -> FaultFile:  # type: ignore[override]
        self.hook("open", path)
        inner = super().open(path, writable=writable, create=create)
        self.opened.append(inner)
        return FaultFile(self, inner)

    def replace(self, src: str, dst: str) -> None:
        self.hook("replace", dst)
        super().replace(src, dst)

    def unlink(self, path: str) -> None:
        self.hook("unlink", path)
        super().unlink(path)

    def fsync_dir(self, path: str) -> None:
        self.hook("fsync_dir", path)
        super().fsync_dir(path)

    def close_all(self) -> None:
        for f in self.opened:
            f.close()


def _read_whole(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@dataclass
class _Rename:
    """A rename not yet made durable by an ``fsync`` of its directory: what ``dst`` held
    before (None: nothing), tracked as a file of its own, so a power loss can undo it."""

    src: str
    dst: str
    old_durable: bytes | None
    old_pending: list[tuple[str, int, bytes]]


class CrashFS(FaultFS):
    """Counts write/flush boundaries (pwrite, copy_range, punch_hole, fsync, truncate, replace,
    fsync_dir) and raises :class:`PowerLoss` at boundary number ``crash_at`` (1-based) and
    every one after it.

    A rename moves what is tracked of its source to its destination and stays undoable until
    an ``fsync_dir``: a power loss may then keep it or not (POSIX makes a rename durable only
    with its directory), leaving the old destination and the source file."""

    BOUNDARIES = frozenset({"pwrite", "copy_range", "punch_hole", "fsync", "truncate",
                            "replace", "fsync_dir"})

    def __init__(self, crash_at: int | None = None) -> None:
        super().__init__()
        self.crash_at = crash_at
        self.boundaries = 0
        self.crashed = False
        self.durable: dict[str, bytes] = {}
        self.pending: dict[str, list[tuple[str, int, bytes]]] = {}
        self.renames: list[_Rename] = []

    def hook(self, op: str, path: str) -> None:
        self.log.append((op, path))
        if op in self.BOUNDARIES:
            self.boundaries += 1
            if self.crash_at is not None and self.boundaries >= self.crash_at:
                self.crashed = True
                raise PowerLoss(f"power lost before {op} #{self.boundaries} on {path}")

    def open(self, path: str, *, writable: bool, create: bool = False) -> FaultFile:  # type: ignore[override]
        f = super().open(path, writable=writable, create=create)
        self._track(os.path.realpath(path))
        return f

    def _track(self, key: str) -> None:
        if key not in self.durable:
            self.durable[key] = _read_whole(key)
            self.pending[key] = []

    def replace(self, src: str, dst: str) -> None:
        s, d = os.path.realpath(src), os.path.realpath(dst)
        self._track(s)
        untracked = None if d in self.durable or not os.path.exists(d) else _read_whole(d)
        super().replace(src, dst)  # power lost before the rename: nothing moves
        before = ((self.durable.pop(d), self.pending.pop(d)) if d in self.durable
                  else (untracked, []))
        self.renames.append(_Rename(s, d, *before))
        self.durable[d], self.pending[d] = self.durable.pop(s), self.pending.pop(s)

    def fsync_dir(self, path: str) -> None:
        super().fsync_dir(path)
        directory = os.path.realpath(path)
        self.renames = [r for r in self.renames if os.path.dirname(r.dst) != directory]

    def record(self, path: str, op: tuple[str, int, bytes]) -> None:
        self.pending[os.path.realpath(path)].append(op)

    def synced(self, path: str) -> None:
        key = os.path.realpath(path)
        self.durable[key] = _read_whole(path)
        self.pending[key] = []

    def materialize(self, mode: str, rng: random.Random) -> int:
        """Rewrite every tracked file as a power loss would leave it. ``mode``: ``"drop"``
        (only durable contents and renames survive), ``"keep"`` (every write and rename
        reached the disk), ``"random"`` (a random subset, in order) or ``"metadata"`` (every
        rename, but only durable contents: a file system that journals names before data).
        Returns how many unsynced operations were kept."""
        self.close_all()

        def chosen(ops: list[tuple[str, int, bytes]]) -> list[tuple[str, int, bytes]]:
            if mode == "drop" or (mode == "metadata" and ops[:1] != [("r", 0, b"")]):
                return []
            if mode in ("keep", "metadata"):
                return list(ops)
            return [op for op in ops if rng.random() < 0.5]

        kept = 0
        contents: dict[str, bytes | None] = {}
        for path, base in self.durable.items():
            picked = chosen(self.pending[path])
            kept += len(picked)
            contents[path] = _apply(base, picked)
        for r in reversed(self.renames):  # undo the lost ones, latest first
            if chosen([("r", 0, b"")]):
                kept += 1
                continue
            contents[r.src] = contents[r.dst]
            old = (None if r.old_durable is None
                   else _apply(r.old_durable, chosen(r.old_pending)))
            contents[r.dst] = old
        for path, data in contents.items():
            if data is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            else:
                with open(path, "wb") as f:
                    f.write(data)
        return kept


def _apply(base: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    """``base`` after the writes (``"w"``) and truncates (``"t"``) of ``ops``, in order."""
    data = bytearray(base)
    for kind, a, payload in ops:
        if kind == "w":
            if len(data) < a:
                data.extend(bytes(a - len(data)))
            data[a:a + len(payload)] = payload
        else:
            del data[a:]
            data.extend(bytes(a - len(data)))
    return bytes(data)


def replay_crashes(scratch: Path, pristine: Path,
                   operate: Callable[[Path, CrashFS], object], verify: Callable[[Path], None],
                   *, finished: Callable[[Path], None], modes: Sequence[str],
                   rng: random.Random) -> CrashFS:
    """Run ``operate(directory, fs)`` on a copy of ``pristine`` once to count its boundaries,
    checking ``verify`` and ``finished`` on what a run without a crash leaves; then once per
    boundary and mode in a fresh copy, with power lost at that boundary, checking ``verify``
    on what survives. Returns the counting run's file system (its boundaries and log). A
    failure names the boundary and the mode; a file that no longer parses counts as one."""
    counter = CrashFS()
    work = scratch / "count"
    shutil.copytree(pristine, work)
    operate(work, counter)
    counter.close_all()
    verify(work)
    finished(work)
    shutil.rmtree(work)
    total = counter.boundaries
    for crash_at in range(1, total + 1):
        for mode in modes:
            work = scratch / f"c{crash_at}{mode}"
            shutil.copytree(pristine, work)
            fs = CrashFS(crash_at)
            with contextlib.suppress(PowerLoss):
                operate(work, fs)
            assert fs.crashed
            fs.materialize(mode, rng)
            try:
                verify(work)
            except (AssertionError, AddCowError) as e:
                raise AssertionError(f"power lost at boundary {crash_at} of {total} "
                                     f"({mode}): {e}") from None
            shutil.rmtree(work)
    return counter


#: ``config.stash`` key: crash points the crash tests exercised in this session (reported in the
#: terminal summary by this directory's conftest).
CRASH_POINTS: pytest.StashKey[list[int]] = pytest.StashKey()
