"""Replacing an add-cow file whole, atomically, and emptying an image file.

``commit`` and ``rebase`` change the header, the name area or the whole bitmap of an image. The
add-cow file is small (header, names, one bit per cluster), so instead of patching it in place,
where a crash could leave a new name beside an old length, a complete new file is written next
to it (exclusively, under an unpredictable name in the same directory, by
:func:`addcow_ref.ops.safefile.temp_beside`, so the rename cannot cross file systems),
fsynced, renamed over the old one and the directory fsynced: a reader sees the old file or the
new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os

from addcow_ref.engine.fileio import DEFAULT_FS, fallocate_punch
from addcow_ref.format.errors import AddCowError
from addcow_ref.ops.safefile import copy_owner, temp_beside

__all__ = ["punch_file", "replace_metadata"]

#: Bytes copied per read when carrying the old bitmap into the new file.
COPY_CHUNK = 1 << 20


def replace_metadata(path: str, prefix: bytes, total: int, *,
                     bitmap_from: tuple[int, int] | None = None) -> None:
    """Replace the add-cow file ``path`` by one holding ``prefix`` (header and names, up to the
    bitmap offset), then the bitmap, ``total`` bytes in all.

    ``bitmap_from`` ``(offset, length)``: copy the old file's bitmap bytes from there to the end
    of ``prefix``; None leaves the bitmap all zeros (and sparse). The new file keeps the old
    one's permission bits (and, as root, its owner).
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        old = os.stat(path)
        fd, tmp = temp_beside(path, "rewrite")
    except OSError as e:
        raise AddCowError(f"cannot write a new add-cow file: {e.strerror}", file=path) from None
    try:
        try:
            copy_owner(fd, old)
            os.pwrite(fd, prefix, 0)
            if bitmap_from is not None:
                _copy_bitmap(path, fd, bitmap_from, len(prefix))
            os.ftruncate(fd, total)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        DEFAULT_FS.fsync_dir(directory)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise AddCowError(f"cannot write a new add-cow file: {e.strerror}", file=path) from None


def _copy_bitmap(path: str, fd: int, source: tuple[int, int], dest: int) -> None:
    offset, length = source
    with open(path, "rb") as old:
        done = 0
        while done < length:
            chunk = os.pread(old.fileno(), min(COPY_CHUNK, length - done), offset + done)
            if not chunk:
                raise AddCowError("add-cow file ends inside its bitmap", file=path,
                                  offset=offset + done)
            if chunk.count(0) != len(chunk):  # zero chunks stay holes
                os.pwrite(fd, chunk, dest + done)
            done += len(chunk)


def punch_file(path: str, length: int) -> bool:
    """Give the blocks of ``[0, length)`` of the regular file ``path`` back to the file system
    (``fallocate`` with ``PUNCH_HOLE | KEEP_SIZE``, as :func:`fallocate_punch` does for every
    hole the library punches); the size is unchanged and the range reads as zeros. Returns
    False where the file system or platform cannot punch (the data then stays, which is
    harmless once no bit points at it)."""
    if not os.path.isfile(path):
        return False
    fd = os.open(path, os.O_WRONLY)
    try:
        try:
            punched = fallocate_punch(fd, 0, length)
        except OSError as e:
            raise OSError(e.errno, e.strerror, path) from None
        if punched:
            os.fsync(fd)
    finally:
        os.close(fd)
    return punched
