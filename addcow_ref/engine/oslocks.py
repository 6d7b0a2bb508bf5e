"""Image locks between processes: open-file-description locks on the files of an open image
(spec page "Locking and concurrent use"; rules LOCK-WRITER, LOCK-READER, LOCK-CONFLICT,
LOCK-FORCE-SHARE).

Two writers of one image each keep their own bitmap cache and lose each other's bits at the
next flush, and a writer of a file that another image reads as its backing file changes that
image's guest data. So every opener locks each file it uses for as long as it has it open, as
QEMU does, and with QEMU's lock bytes, so that QEMU and these tools keep each other out too: a
writer uses "write" and "resize", a reader only "consistent read", and every opener denies
"write" and "resize" to others. Readers therefore share, a writer is alone, and nobody writes a
file that an open image reads as its backing file. The locks are OFD locks (``F_OFD_SETLK``):
they belong to the open file description, so closing another descriptor of the same file in
this process (a checker, a second reader) never drops them, as it would drop a classic
``F_SETLK`` lock. A conflict fails at once (``F_OFD_SETLK``, never ``F_OFD_SETLKW``): a tool
that waited for a lock held by a server would hang until the server stops.

Python's ``fcntl.lockf`` maps to process-associated locks, so ``struct flock`` is packed here.
A file system that cannot lock at all (some network file systems answer ``ENOLCK`` or
``EOPNOTSUPP``) is used unlocked, as QEMU does; a platform without OFD locks likewise.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
from collections.abc import Iterator

from addcow_ref.engine.fileio import BlockFile
from addcow_ref.format.errors import AddCowError

__all__ = ["ImageLockedError", "holding_lock", "lock_fd", "lock_file", "try_lock"]

#: ``struct flock`` of Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid (pid_t),
#: native alignment (two pad bytes after l_whence are inserted by ``@``), tail padding to 32.
_FLOCK = "@hhqqi4x"

_F_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)
_F_OFD_GETLK: int | None = getattr(fcntl, "F_OFD_GETLK", None)

#: QEMU's lock bytes (block/file-posix.c): ``PERM_BASE + p`` for a permission in use,
#: ``SHARED_BASE + p`` for a permission denied to others. Permissions, by bit number: 0
#: consistent read, 1 write, 3 resize.
PERM_BASE = 100
SHARED_BASE = 200
_CONSISTENT_READ, _WRITE, _RESIZE = 0, 1, 3
_READER_USES = (_CONSISTENT_READ,)
_WRITER_USES = (_CONSISTENT_READ, _WRITE, _RESIZE)
#: What every opener denies to others: a reader needs a file nobody writes or resizes, and a
#: writer needs to be the only one.
_UNSHARED = (_WRITE, _RESIZE)

#: The answers that mean "another open file description holds a conflicting lock".
_CONFLICT = frozenset({errno.EAGAIN, errno.EACCES})

#: The answers of a file system that does not do locks at all.
_UNSUPPORTED = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})


class ImageLockedError(AddCowError):
    """A file of the image is locked by another opener (LOCK-CONFLICT). Its text starts with
    the file's name, as the spec's example does: ``disk.add-cow is in use (...)``."""

    def __str__(self) -> str:
        text = f"{self.file or '<image>'} {self.message}"
        if self.rule_id:
            text += f" [{self.rule_id}]"
        return text


def _fcntl(fd: int, cmd: int, kind: int, start: int, length: int) -> int:
    """One ``fcntl`` lock call over ``[start, start + length)``; the answer's ``l_type``."""
    request = struct.pack(_FLOCK, kind, os.SEEK_SET, start, length, 0)
    answer = fcntl.fcntl(fd, cmd, request)
    kind_back: int = struct.unpack(_FLOCK, answer)[0]
    return kind_back


def _byte(fd: int, offset: int, kind: int) -> None:
    assert _F_OFD_SETLK is not None
    _fcntl(fd, _F_OFD_SETLK, kind, offset, 1)


def _held_elsewhere(fd: int, offset: int) -> bool:
    """Whether another open file description holds any lock on byte ``offset``."""
    assert _F_OFD_GETLK is not None
    return _fcntl(fd, _F_OFD_GETLK, fcntl.F_WRLCK, offset, 1) != fcntl.F_UNLCK


def try_lock(fd: int, *, exclusive: bool) -> bool:
    """Take the locks of a writer (``exclusive``) or a reader on ``fd``: True when they are
    held (or the file system cannot lock), False when another open file description holds a
    conflicting set (the bytes set here are then released again).

    The bytes are QEMU's, so that add-cow tools and QEMU keep each other out as well: a lock
    on byte ``PERM_BASE + p`` says "I use permission p", one on ``SHARED_BASE + p`` says "I
    let nobody else use p". All are shared locks; a conflict is found by asking (OFD GETLK)
    for the bytes that exclude this opener, after taking its own, so that of two openers
    racing, both see each other."""
    if _F_OFD_SETLK is None or _F_OFD_GETLK is None:
        return True
    uses = _WRITER_USES if exclusive else _READER_USES
    try:
        for p in uses:
            _byte(fd, PERM_BASE + p, fcntl.F_RDLCK)
        for p in _UNSHARED:
            _byte(fd, SHARED_BASE + p, fcntl.F_RDLCK)
        conflict = (any(_held_elsewhere(fd, SHARED_BASE + p) for p in uses)
                    or any(_held_elsewhere(fd, PERM_BASE + p) for p in _UNSHARED))
    except OSError as e:
        if e.errno in _CONFLICT:
            conflict = True
        elif e.errno in _UNSUPPORTED:
            return True
        else:
            raise
    if conflict:
        _fcntl(fd, _F_OFD_SETLK, fcntl.F_UNLCK, PERM_BASE, SHARED_BASE - PERM_BASE + 8)
        return False
    return True


def lock_fd(fd: int, path: str, *, exclusive: bool) -> None:
    """Lock the file open as ``fd`` for as long as that description stays open, or raise
    :class:`ImageLockedError` naming ``path`` (LOCK-CONFLICT)."""
    try:
        held = try_lock(fd, exclusive=exclusive)
    except OSError as e:
        raise AddCowError(f"cannot lock the file: {e.strerror or e}", file=path) from None
    if not held:
        hint = "" if exclusive else "; use -U to read it anyway"
        raise ImageLockedError(f"is in use (locked by another process){hint}", file=path,
                               rule_id="LOCK-CONFLICT")


def lock_file(file: BlockFile, path: str, *, exclusive: bool) -> None:
    """:func:`lock_fd` on an open :class:`BlockFile`. A file of a layer without OS descriptors
    (a test double) is shared with no other process and is not locked."""
    fd = file.fileno()
    if fd is not None:
        lock_fd(fd, path, exclusive=exclusive)


@contextlib.contextmanager
def holding_lock(path: str, *, exclusive: bool) -> Iterator[None]:
    """Hold a lock on ``path`` through a descriptor of its own, for a tool that works on a
    file it reads through an image opened with ``force_share`` (commit reads its overlay that
    way while it writes the overlay's backing file, which the overlay would lock shared)."""
    fd = os.open(path, (os.O_RDWR if exclusive else os.O_RDONLY) | os.O_CLOEXEC)
    try:
        lock_fd(fd, path, exclusive=exclusive)
        yield
    finally:
        os.close(fd)
