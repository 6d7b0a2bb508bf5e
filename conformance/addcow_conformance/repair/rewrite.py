"""Replacing an add-cow file by a fixed copy of itself, atomically.

A repair may change several places of the add-cow file at once: header fields in the first
sector, stray bytes anywhere in the name area, the padding bits of the last bitmap byte and the
file's length. The spec's one storage assumption (spec/crash-consistency.rst, "What is not
protected") covers a write of the 128-byte header only, so in-place writes of the other places
could be torn by a crash, and several of them could land in any order. Instead the whole file
is copied, with the fixes applied, into a new file made exclusively beside it
(:func:`addcow_ref.ops.safefile.temp_beside`, so the rename stays on one file system); the copy
is fsynced, renamed over the original and the directory fsynced. A crash or a failed call at
any step leaves the old file or the new one, never a mix, and a failure before the rename
removes the copy. This is the scheme ``commit`` and ``rebase`` use
(:mod:`addcow_ref.ops.metafile`); its ``replace_metadata`` copies the bitmap verbatim, which
cannot clear padding bits, hence this variant with byte patches.

The copy keeps the old file's permission bits (and, as root, its owner) and its holes: runs of
zeros are not written, so a sparse bitmap stays sparse. The add-cow file gets a new inode, so a
hard link to the old one keeps the old bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
from collections.abc import Sequence

from addcow_ref.engine.fileio import DEFAULT_FS
from addcow_ref.format.errors import AddCowError
from addcow_ref.ops.safefile import copy_owner, temp_beside

__all__ = ["COPY_CHUNK", "Patch", "rewrite_file"]

#: Bytes copied per read: memory stays flat whatever the bitmap's size.
COPY_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Patch:
    """Bytes that replace the old ones at ``offset`` in the copy."""

    offset: int
    data: bytes

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


def _next_data(fd: int, pos: int, end: int) -> int:
    try:
        return min(os.lseek(fd, pos, os.SEEK_DATA), end)
    except OSError as e:
        return end if e.errno == errno.ENXIO else pos


def _copy(src: int, dst: int, total: int, zeroed: Sequence[tuple[int, int]]) -> None:
    """Copy ``[0, total)`` of ``src`` into ``dst``, leaving the ``zeroed`` ranges and every
    run of zeros unwritten (they read as zeros in the new, sparse file)."""
    pos = 0
    while pos < total:
        pos = _next_data(src, pos, total)
        if pos >= total:
            break
        chunk = os.pread(src, min(COPY_CHUNK, total - pos), pos)
        if not chunk:
            break
        buf = bytearray(chunk)
        for start, end in zeroed:
            lo, hi = max(start, pos), min(end, pos + len(buf))
            if lo < hi:
                buf[lo - pos:hi - pos] = bytes(hi - lo)
        if buf.count(0) != len(buf):
            os.pwrite(dst, buf, pos)
        pos += len(buf)


def rewrite_file(path: str, src_fd: int, *, total: int, patches: Sequence[Patch] = (),
                 zeroed: Sequence[tuple[int, int]] = ()) -> None:
    """Replace ``path`` (open as ``src_fd``) by a copy of its first ``total`` bytes with
    ``zeroed`` ranges zeroed and ``patches`` applied; longer than the old file, the copy is
    extended with zeros.

    Raises :class:`~addcow_ref.format.errors.AddCowError` naming the file when any step fails;
    the original is then unchanged unless the failure came after the rename (the directory
    fsync), when the new file is already complete in its place.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        old = os.fstat(src_fd)
        fd, tmp = temp_beside(path, "repair")
    except OSError as e:
        raise AddCowError(f"cannot write the repaired copy: {e.strerror or e}",
                          file=path) from None
    renamed = False
    try:
        try:
            copy_owner(fd, old)
            _copy(src_fd, fd, total, zeroed)
            for patch in patches:
                os.pwrite(fd, patch.data, patch.offset)
            os.ftruncate(fd, total)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        renamed = True
        DEFAULT_FS.fsync_dir(directory)
    except OSError as e:
        if not renamed:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        step = "sync its directory" if renamed else "write the repaired copy"
        raise AddCowError(f"cannot {step}: {e.strerror or e}", file=path) from None
