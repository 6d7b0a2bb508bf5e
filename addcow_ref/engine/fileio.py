"""The thin file layer under the reference implementation.

Every byte the library reads or writes, every ``fsync``, truncate, copy and rename, and every
question about which parts of a file hold data, goes through a :class:`FileSystem` object. The
default one is a few lines over ``os``; tests swap in one that fails on demand (ENOSPC, EIO) or
forgets every write since the last ``fsync`` (power loss), which is how the crash-consistency
argument of the spec (rule WRITE-DATA-BEFORE-BIT) is tested rather than asserted. ``OSError``
is raised here and translated into typed errors by the callers, which know which file and which
rule are involved.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Callable, Iterator
from typing import Protocol

__all__ = ["COPY_PIECE", "DEFAULT_FS", "BlockFile", "FileKind", "FileSystem", "OSFile",
           "OSFileSystem", "copy_by_reading", "fallocate_punch", "zero_by_writing"]

#: Largest piece :func:`copy_by_reading` (and :func:`zero_by_writing`) holds in memory at a time.
COPY_PIECE = 1 << 20

#: ``fallocate`` mode bits (linux/falloc.h): keep the file's size, deallocate the range.
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02

#: The answers of ``fallocate`` that mean "this file (system) cannot punch": write zeros instead.
_NO_PUNCH = frozenset({errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.ENODEV,
                       errno.EPERM})


@functools.cache
def _libc_fallocate() -> Callable[[int, int, int, int], int] | None:
    """libc's ``fallocate(2)`` wrapper (Python before 3.13 has no ``os.fallocate``), loaded on
    the first punch: ``ctypes`` is a start-up cost of every tool that only reads."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
    fn.restype = ctypes.c_int
    return fn



def fallocate_punch(fd: int, offset: int, length: int) -> bool:
    """Punch a hole over ``[offset, offset + length)`` of ``fd`` without changing its size.

    Returns False where the file system or the platform cannot punch (the caller then writes
    zeros); raises ``OSError`` for real failures (EIO, ENOSPC on a file system that must split
    an extent). ``os.posix_fallocate`` only allocates, so libc's ``fallocate`` is called.
    """
    if length <= 0:
        return True
    fallocate = _libc_fallocate()
    if fallocate is None:
        return False
    if fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return True
    import ctypes

    err = ctypes.get_errno()
    if err in _NO_PUNCH:
        return False
    raise OSError(err, os.strerror(err))


def zero_by_writing(file: BlockFile, offset: int, length: int) -> None:
    """Make ``[offset, offset + length)`` of ``file`` read as zeros by writing zeros over the
    parts that may hold data (:meth:`BlockFile.data_segments`); holes already read as zeros."""
    for pos, n in list(file.data_segments(offset, length)):
        end = pos + n
        while pos < end:
            k = min(COPY_PIECE, end - pos)
            file.pwrite(pos, bytes(k))
            pos += k


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
        """The OS descriptor when there is one (lets :meth:`copy_range` copy in the kernel),
        else None."""
        ...

    def copy_range(self, source: BlockFile, src_offset: int, dst_offset: int,
                   length: int) -> int:
        """Copy ``length`` bytes at ``src_offset`` of ``source`` to ``dst_offset`` of this file.

        Returns how many bytes were copied: fewer only where ``source`` ends. Raises on a
        failed write, like :meth:`pwrite`.
        """
        ...

    def data_segments(self, offset: int, length: int) -> Iterator[tuple[int, int]]:
        """``(start, length)`` pieces of ``[offset, offset + length)`` that may hold data, in
        order; the bytes between them are holes of a sparse file and read as zeros. A file
        that cannot tell (no ``SEEK_DATA``) yields the whole range."""
        ...

    def punch_hole(self, offset: int, length: int) -> None:
        """Make ``[offset, offset + length)`` read as zeros, deallocating it where the file
        system can (a hole of a sparse file), without changing the file's size; bytes past the
        end of the file are left alone. Used by write-zeroes, discard, grow and hydrate."""
        ...

    def close(self) -> None: ...


#: "file", "block", "missing", or a type an image file or raw backing file must not have
#: (IMG-FILE-TYPE): "directory", "fifo", "socket", "char device" or "other". Learnt by ``stat``,
#: never by opening (opening a FIFO blocks: READ-FILE-TYPE).
FileKind = str

_OTHER_KINDS = ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "fifo"),
                (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "char device"))


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

    def copy_range(self, source: BlockFile, src_offset: int, dst_offset: int,
                   length: int) -> int:
        """``copy_file_range`` when ``source`` has a descriptor too (no bytes through user
        space; a reflink on file systems that share extents), else or where the kernel refuses
        (EXDEV, EINVAL, ENOSYS on this pair of files), :func:`copy_by_reading`."""
        copied = 0
        src_fd = source.fileno()
        if src_fd is not None and hasattr(os, "copy_file_range"):
            try:
                while copied < length:
                    k = os.copy_file_range(src_fd, self._fd, length - copied,
                                           src_offset + copied, dst_offset + copied)
                    if k <= 0:
                        break  # the source ends here
                    copied += k
            except OSError:
                pass  # the kernel cannot copy between these files: read and write instead
            else:
                return copied
        return copied + copy_by_reading(self, source, src_offset + copied, dst_offset + copied,
                                        length - copied)

    def data_segments(self, offset: int, length: int) -> Iterator[tuple[int, int]]:
        """``SEEK_DATA``/``SEEK_HOLE``; where they fail (a file system or device without
        them), the rest of the range counts as data."""
        end = offset + length
        pos = offset
        while pos < end:
            try:
                pos = max(pos, os.lseek(self._fd, pos, os.SEEK_DATA))
            except OSError as e:
                if e.errno == errno.ENXIO:
                    return  # only holes from here to the end of the file
                yield pos, end - pos
                return
            if pos >= end:
                return
            try:
                seg_end = min(end, os.lseek(self._fd, pos, os.SEEK_HOLE))
            except OSError:
                seg_end = end
            yield pos, seg_end - pos
            pos = seg_end

    def punch_hole(self, offset: int, length: int) -> None:
        """``fallocate(PUNCH_HOLE | KEEP_SIZE)``; zeros written where the file cannot punch."""
        length = min(length, self.size() - offset)
        if length <= 0:
            return
        if not fallocate_punch(self._fd, offset, length):
            zero_by_writing(self, offset, length)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def copy_by_reading(dst: BlockFile, source: BlockFile, src_offset: int, dst_offset: int,
                    length: int) -> int:
    """:meth:`BlockFile.copy_range` through ``pread`` and ``pwrite``, :data:`COPY_PIECE` bytes
    at a time; returns how many bytes were copied (fewer only where ``source`` ends)."""
    copied = 0
    while copied < length:
        data = source.pread(src_offset + copied, min(COPY_PIECE, length - copied))
        if not data:
            break
        dst.pwrite(dst_offset + copied, data)
        copied += len(data)
    return copied


class OSFileSystem:
    """The real file system."""

    def open(self, path: str, *, writable: bool, create: bool = False) -> OSFile:
        """Open ``path``; it must be a regular file or a block device (IMG-FILE-TYPE).

        ``O_NONBLOCK`` keeps a FIFO swapped in after the caller's :meth:`kind` from blocking
        the open (READ-FILE-TYPE); it changes nothing for regular files and block devices, and
        the type is checked again on the open descriptor (``EINVAL`` for any other type)."""
        flags = ((os.O_RDWR if writable else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0)
                 | getattr(os, "O_NONBLOCK", 0))
        if create:
            flags |= os.O_CREAT
        fd = os.open(path, flags, 0o644)
        try:
            mode = os.fstat(fd).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
                raise OSError(errno.EINVAL, "not a regular file or block device", path)
            if flags & getattr(os, "O_NONBLOCK", 0):
                os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return OSFile(path, fd)

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
        for test, name in _OTHER_KINDS:
            if test(st.st_mode):
                return name
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
