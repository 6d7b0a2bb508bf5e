"""Replacing an add-cow file whole, atomically, and emptying an image file.

``commit`` and ``rebase`` change the header, the name area or the whole bitmap of an image. The
add-cow file is small (header, names, one bit per cluster), so instead of patching it in place,
where a crash could leave a new name beside an old length, a complete new file is written next
to it (exclusively, under an unpredictable name in the same directory, by
:func:`addcow_ref.ops.safefile.temp_beside`, so the rename cannot cross file systems),
fsynced, renamed over the old one and the directory fsynced: a reader sees the old file or the
new one, never a mix.

Every file is reached through a :class:`~addcow_ref.engine.fileio.FileSystem` (the real one by
default), so that the crash tests can lose power at each write, sync and rename of a commit or
a rebase.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from addcow_ref.engine.fileio import DEFAULT_FS, BlockFile, FileSystem, fallocate_punch
from addcow_ref.format.errors import AddCowError
from addcow_ref.ops.safefile import adopt, copy_owner, temp_beside

__all__ = ["punch_file", "replace_metadata", "write_beside"]

#: Bytes copied per read when carrying the old bitmap into the new file.
COPY_CHUNK = 1 << 20


def replace_metadata(path: str, prefix: bytes, total: int, *,
                     bitmap_from: tuple[int, int] | None = None,
                     fs: FileSystem | None = None) -> None:
    """Replace the add-cow file ``path`` by one holding ``prefix`` (header and names, up to the
    bitmap offset), then the bitmap, ``total`` bytes in all.

    ``bitmap_from`` ``(offset, length)``: copy the old file's bitmap bytes from there to the end
    of ``prefix``; None leaves the bitmap all zeros (and sparse). The new file keeps the old
    one's permission bits (and, as root, its owner).
    """
    try:
        old = os.stat(path)
    except OSError as e:
        raise AddCowError(f"cannot write a new add-cow file: {e.strerror}", file=path) from None
    write_beside(path, prefix, total, fs=fs or DEFAULT_FS, tag="rewrite",
                 mode=lambda fd: copy_owner(fd, old), bitmap_from=bitmap_from,
                 what="a new add-cow file")


def write_beside(path: str, prefix: bytes, total: int, *, fs: FileSystem, tag: str,
                 mode: Callable[[int], None], what: str,
                 bitmap_from: tuple[int, int] | None = None) -> None:
    """Write a complete add-cow file beside ``path`` and rename it over ``path``: ``prefix``,
    then the old file's bitmap bytes from ``bitmap_from`` (if given), ``total`` bytes in all,
    synced before the rename and the directory synced after it. ``mode(fd)`` sets the new
    file's permission bits first (``create`` gives new ones, a replacement keeps the old
    ones'). A failure removes the new file and raises a one-line error naming ``path`` and
    ``what`` was being written."""
    tmp = ""
    try:
        fd, tmp = temp_beside(path, tag)
        try:
            mode(fd)
        except BaseException:
            os.close(fd)
            raise
        new = adopt(fs, tmp, fd)
        try:
            new.pwrite(0, prefix)
            if bitmap_from is not None:
                _copy_bitmap(path, fs, new, bitmap_from, len(prefix))
            new.truncate(total)  # an all-zero bitmap not copied stays sparse
            new.fsync()
        finally:
            new.close()
        fs.replace(tmp, path)
        fs.fsync_dir(os.path.dirname(os.path.abspath(path)))
    except OSError as e:
        if tmp:
            with contextlib.suppress(OSError):
                fs.unlink(tmp)
        raise AddCowError(f"cannot write {what}: {e.strerror}", file=path) from None


def _copy_bitmap(path: str, fs: FileSystem, new: BlockFile, source: tuple[int, int],
                 dest: int) -> None:
    offset, length = source
    old = fs.open(path, writable=False)
    try:
        done = 0
        while done < length:
            chunk = old.pread(offset + done, min(COPY_CHUNK, length - done))
            if not chunk:
                raise AddCowError("add-cow file ends inside its bitmap", file=path,
                                  offset=offset + done)
            if chunk.count(0) != len(chunk):  # zero chunks stay holes
                new.pwrite(dest + done, chunk)
            done += len(chunk)
    finally:
        old.close()


def punch_file(path: str, length: int, *, fs: FileSystem | None = None) -> bool:
    """Give the blocks of ``[0, length)`` of the regular file ``path`` back to the file system
    (``fallocate`` with ``PUNCH_HOLE | KEEP_SIZE``, as :func:`fallocate_punch` does for every
    hole the library punches); the size is unchanged and the range reads as zeros. Returns
    False where the file system or platform cannot punch (the data then stays, which is
    harmless once no bit points at it, and writing zeros over a whole disk instead would
    cost as much as writing the disk)."""
    fs = fs or DEFAULT_FS
    if fs.kind(path) != "file":
        return False
    f = fs.open(path, writable=True)
    try:
        fd = f.fileno()
        try:
            if fd is None:  # a layer without descriptors (a test's): its own punch_hole
                f.punch_hole(0, length)
                punched = True
            else:
                punched = fallocate_punch(fd, 0, length)
        except OSError as e:
            raise OSError(e.errno, e.strerror, path) from None
        if punched:
            f.fsync()
    finally:
        f.close()
    return punched
