"""The thin file layer under the reference implementation.

Every byte the library reads or writes, every ``fsync``, truncate and rename goes through a
:class:`FileSystem` object. The default one is a few lines over ``os``; tests swap in one that
fails on demand (ENOSPC, EIO) or forgets every write since the last ``fsync`` (power loss), which
is how the crash-consistency argument of the spec (rule WRITE-DATA-BEFORE-BIT) is tested rather
than asserted. ``OSError`` is raised here and translated into typed errors by the callers, which
know which file and which rule are involved.
"""

from __future__ import annotations

import os
import stat
from typing import Protocol

__all__ = ["DEFAULT_FS", "BlockFile", "FileKind", "FileSystem", "OSFile", "OSFileSystem"]


class BlockFile(Protocol):
    """An open file addressed by offset; no shared file position, so threads need no lock."""

    @property
    def path(self) -> str: ...

    def pread(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; fewer only at end of file."""
        ...

    def pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data`` at ``offset`` (or raise)."""
        ...

    def fsync(self) -> None: ...

    def truncate(self, size: int) -> None: ...

    def size(self) -> int: ...

    def fileno(self) -> int | None:
        """The OS descriptor when there is one (enables ``os.copy_file_range``), else None."""
        ...

    def close(self) -> None: ...


FileKind = str  # "file", "block", "missing" or "other"


class FileSystem(Protocol):
    """Opening, naming and renaming files; the seam where tests inject faults."""

    def open(self, path: str, *, writable: bool, create: bool = False) -> BlockFile: ...

    def kind(self, path: str) -> FileKind: ...

    def identity(self, path: str) -> tuple[int, int]:
        """``(st_dev, st_ino)``: the key for backing-chain loop detection."""
        ...

    def replace(self, src: str, dst: str) -> None: ...

    def unlink(self, path: str) -> None: ...

    def fsync_dir(self, path: str) -> None: ...


class OSFile:
    """A :class:`BlockFile` over an OS file descriptor."""

    def __init__(self, path: str, fd: int) -> None:
        self._path = path
        self._fd = fd

    @property
    def path(self) -> str:
        return self._path

    def pread(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        data = os.pread(self._fd, length, offset)
        if len(data) == length or not data:
            return data
        # A short read before EOF (signals, odd file systems): keep reading until EOF.
        parts = [data]
        got = len(data)
        while got < length:
            more = os.pread(self._fd, length - got, offset + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        n = os.pwrite(self._fd, data, offset)
        if n == len(data):
            return
        view = memoryview(data)[n:]
        offset += n
        while view:
            n = os.pwrite(self._fd, view, offset)
            view = view[n:]
            offset += n

    def fsync(self) -> None:
        os.fsync(self._fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    def size(self) -> int:
        st = os.fstat(self._fd)
        if stat.S_ISBLK(st.st_mode):
            return os.lseek(self._fd, 0, os.SEEK_END)
        return st.st_size

    def fileno(self) -> int | None:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class OSFileSystem:
    """The real file system."""

    def open(self, path: str, *, writable: bool, create: bool = False) -> OSFile:
        flags = (os.O_RDWR if writable else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0)
        if create:
            flags |= os.O_CREAT
        return OSFile(path, os.open(path, flags, 0o644))

    def kind(self, path: str) -> FileKind:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return "missing"
        except OSError:
            return "other"  # e.g. a name too long: not something we can open
        if stat.S_ISREG(st.st_mode):
            return "file"
        if stat.S_ISBLK(st.st_mode):
            return "block"
        return "other"

    def identity(self, path: str) -> tuple[int, int]:
        st = os.stat(path)
        return (st.st_dev, st.st_ino)

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


DEFAULT_FS: FileSystem = OSFileSystem()
