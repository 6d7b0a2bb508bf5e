"""Fault-injecting file systems for the reference implementation's tests.

``FaultFS`` calls a hook before every operation, which may raise (ENOSPC, EIO, a simulated
power loss) or sleep (to widen race windows). ``CrashFS`` also remembers, per file, the contents
as of the last ``fsync`` and every write and truncate since, so a test can stop a workload at any
operation boundary and materialise what a power loss would leave behind: the durable contents plus
none, all, or a random subset of the unsynced operations.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator

import pytest

from addcow_ref.engine.fileio import BlockFile, OSFile, OSFileSystem

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


class CrashFS(FaultFS):
    """Counts write/flush boundaries (pwrite, copy_range, punch_hole, fsync, truncate) and raises
    :class:`PowerLoss` at boundary number ``crash_at`` (1-based) and every one after it."""

    BOUNDARIES = frozenset({"pwrite", "copy_range", "punch_hole", "fsync", "truncate"})

    def __init__(self, crash_at: int | None = None) -> None:
        super().__init__()
        self.crash_at = crash_at
        self.boundaries = 0
        self.crashed = False
        self.durable: dict[str, bytes] = {}
        self.pending: dict[str, list[tuple[str, int, bytes]]] = {}

    def hook(self, op: str, path: str) -> None:
        if op in self.BOUNDARIES:
            self.boundaries += 1
            if self.crash_at is not None and self.boundaries >= self.crash_at:
                self.crashed = True
                raise PowerLoss(f"power lost before {op} #{self.boundaries} on {path}")

    def open(self, path: str, *, writable: bool, create: bool = False) -> FaultFile:  # type: ignore[override]
        f = super().open(path, writable=writable, create=create)
        key = os.path.realpath(path)
        if key not in self.durable:
            self.durable[key] = _read_whole(path)
            self.pending[key] = []
        return f

    def record(self, path: str, op: tuple[str, int, bytes]) -> None:
        self.pending[os.path.realpath(path)].append(op)

    def synced(self, path: str) -> None:
        key = os.path.realpath(path)
        self.durable[key] = _read_whole(path)
        self.pending[key] = []

    def materialize(self, mode: str, rng: random.Random) -> int:
        """Rewrite every tracked file as a power loss would leave it. ``mode``: ``"drop"``
        (only durable contents survive), ``"keep"`` (every write reached the disk) or
        ``"random"`` (a random subset, in order). Returns how many unsynced ops were kept."""
        self.close_all()
        kept = 0
        for path, base in self.durable.items():
            ops = self.pending[path]
            if mode == "drop":
                chosen: list[tuple[str, int, bytes]] = []
            elif mode == "keep":
                chosen = list(ops)
            else:
                chosen = [op for op in ops if rng.random() < 0.5]
            kept += len(chosen)
            data = bytearray(base)
            for kind, a, payload in chosen:
                if kind == "w":
                    if len(data) < a:
                        data.extend(bytes(a - len(data)))
                    data[a:a + len(payload)] = payload
                else:
                    del data[a:]
                    data.extend(bytes(a - len(data)))
            with open(path, "wb") as f:
                f.write(data)
        return kept


#: ``config.stash`` key: crash points the crash tests exercised in this session (reported in the
#: terminal summary by this directory's conftest).
CRASH_POINTS: pytest.StashKey[list[int]] = pytest.StashKey()
