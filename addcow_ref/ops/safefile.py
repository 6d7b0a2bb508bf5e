"""Creating files only where meant: exclusive, never through a symbolic link.

Every file the operations create (a new image file, the temporary add-cow file that ``create``,
``upgrade``, ``commit`` and ``rebase`` rename into place) is made with ``O_CREAT | O_EXCL``.
That fails on any existing name, a symbolic link included (dangling or not), so a link planted
at a predictable name can neither redirect the write nor truncate a file elsewhere, and the
rename moves a regular file we made, never a planted link. Temporary names come from
``tempfile.mkstemp`` in the target's own directory, so they are unpredictable and the rename
never crosses file systems.

The operations do their I/O through a :class:`~addcow_ref.engine.fileio.FileSystem` (the seam
where tests inject faults). With the real one, the descriptor made here is used directly; with
any other, the file is opened again through it and checked to be the same inode, so a name
swapped in between is refused rather than written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile

from addcow_ref.engine.fileio import BlockFile, FileSystem, OSFile, OSFileSystem

__all__ = ["NEW_FILE_MODE", "adopt", "copy_owner", "create_exclusive", "default_mode",
           "temp_beside"]

#: Permission bits of a new file before the umask (what ``open(2)`` with 0o644 gave before).
NEW_FILE_MODE = 0o644


def default_mode() -> int:
    """``NEW_FILE_MODE`` under this process's umask: the bits an ordinary create would give,
    for files that ``mkstemp`` makes 0600."""
    mask = 0o022
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Umask:"):
                mask = int(line.split()[1], 8)
                break
    return NEW_FILE_MODE & ~mask


def temp_beside(path: str, tag: str) -> tuple[int, str]:
    """A new, empty, exclusively created file ``.NAME.TAG-RANDOM.tmp`` in ``path``'s
    directory: ``(descriptor, path)``; the caller owns both."""
    directory = os.path.dirname(os.path.abspath(path))
    return tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.{tag}-",
                            suffix=".tmp")


def create_exclusive(path: str) -> int:
    """Create ``path``, which must not exist (not even as a symbolic link): a read-write
    descriptor, mode :data:`NEW_FILE_MODE` under the umask."""
    flags = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0))
    return os.open(path, flags, NEW_FILE_MODE)


def adopt(fs: FileSystem, path: str, fd: int) -> BlockFile:
    """The file just created as ``fd`` at ``path``, as a :class:`BlockFile` of ``fs``.

    Takes ownership of ``fd``. The real file system wraps it; another one (a test's) opens
    ``path`` again and must reach the same inode, or ``EEXIST`` is raised."""
    if type(fs) is OSFileSystem:
        return OSFile(path, fd)
    try:
        own = os.fstat(fd)
        f = fs.open(path, writable=True)
        try:
            theirs = f.fileno()
            st = os.fstat(theirs) if theirs is not None else os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (own.st_dev,
                                                                           own.st_ino):
                raise OSError(errno.EEXIST, "the new file was replaced after it was created",
                              path)
        except BaseException:
            f.close()
            raise
        return f
    finally:
        os.close(fd)


def copy_owner(fd: int, st: os.stat_result) -> None:
    """Give the new file ``fd`` the permission bits of the file it replaces (``st``) and, when
    we may (as root), its owner, so a rewrite does not hand an image over to whoever ran it."""
    if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):
            os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
