"""Everything the checks of one image share: the open file, the parsed header, memoised results.

Checks are small functions keyed by rule ID, but several rules are decided by one pass of the
reference's predicates (``validate.check_names`` reports five name rules at once) or one bitmap
scan; the context computes each pass once and hands every check its share.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from addcow_conformance.checker.findings import Report
from addcow_ref.engine.backing import confine_root, is_confined
from addcow_ref.engine.oslocks import try_lock
from addcow_ref.format.constants import (
    HEADER_LENGTH_V1,
    HEADER_LENGTH_V2,
    MAX_CLUSTER_BITS,
    MAX_VIRTUAL_SIZE,
    MIN_CLUSTER_BITS,
    VERSION_1,
    VERSION_2,
)
from addcow_ref.format.header import HeaderV1, HeaderV2, parse_header, parse_header_v1, read_version

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_NAME_READ",
    "BackingChecker",
    "CannotCheckError",
    "CheckContext",
    "CheckOptions",
    "FileIdentity",
    "NotApplicableError",
    "confine_root",
    "describe_mode",
    "next_data",
    "open_regular_file",
    "os_reason",
]

#: Bitmap and name reads use chunks of this size: memory stays flat whatever the header claims.
DEFAULT_CHUNK_SIZE = 1 << 20

#: Longer names cannot be paths on any system we know (Linux PATH_MAX is 4096); reading them
#: whole would let a header make us allocate up to 4 GiB.
MAX_NAME_READ = 1 << 16

FileIdentity = tuple[int, int]
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class CheckOptions:
    """How to check. ``follow=False`` is ``--no-follow``: only the metadata file is opened.
    ``confine`` is ``--confine DIR`` (symlinks resolved,
    :func:`~addcow_ref.engine.backing.confine_root`): no file outside it is opened.
    ``force_share`` is ``-U``: the add-cow files are read without a shared lock."""

    follow: bool = True
    progress: bool = False
    fail_on_warning: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE
    confine: str | None = None
    force_share: bool = False


class CannotCheckError(Exception):
    """The file cannot be checked at all (missing, unreadable, not a regular file): exit 1."""


class NotApplicableError(Exception):
    """Raised by a check whose rule does not apply to this image; the message says why."""


def open_regular_file(path: str | bytes, *,
                      confine: str | None = None) -> tuple[int, os.stat_result]:
    """Open ``path`` read-only, refusing anything but a regular file, and with ``confine``
    anything that does not resolve inside that directory (checked before the ``stat``, so
    nothing is learnt about a file outside).

    ``stat`` comes first and the open is non-blocking, so a FIFO given as the image can never
    block the checker waiting for a writer; ``fstat`` then confirms what was opened.
    """
    if confine is not None and not is_confined(os.fsdecode(path), confine):
        raise CannotCheckError(f"resolves outside --confine {confine}; not opened "
                               "[NAME-CONFINED]")
    try:
        st = os.stat(path)
    except OSError as e:
        raise CannotCheckError(os_reason(e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise CannotCheckError("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise CannotCheckError(f"is not a regular file ({describe_mode(st.st_mode)})")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise CannotCheckError(os_reason(e)) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise CannotCheckError(f"is not a regular file ({describe_mode(st.st_mode)})")
    return fd, st


def describe_mode(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISLNK, "symbolic link"),
                       (stat.S_ISREG, "regular file")):
        if test(mode):
            return name
    return f"mode 0o{mode:o}"


def os_reason(e: OSError) -> str:
    """The OS's reason in words, naming symlink loops plainly (ELOOP's text is obscure)."""
    if e.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links)"
    return e.strerror or str(e)


def next_data(fd: int, pos: int, end: int) -> int:
    """Where data resumes at or after ``pos`` (``end`` if nowhere before it); ``pos`` itself
    when the file system cannot tell (then everything is read)."""
    try:
        return min(os.lseek(fd, pos, os.SEEK_DATA), end)
    except OSError as e:
        return end if e.errno == errno.ENXIO else pos


class BackingChecker(Protocol):
    """Checks an add-cow backing file one level down the chain (the engine's ``check_path``)."""

    def __call__(self, path: str, options: CheckOptions, *, chain: tuple[FileIdentity, ...],
                 depth: int) -> Report: ...


class CheckContext:
    """One image being checked. Owns its file descriptor (``close`` releases it).

    ``check_backing`` is how a check reaches the engine to check an add-cow backing file: the
    engine passes itself in, so the checks never import the engine that runs them.
    """

    def __init__(self, path: str, fd: int, st: os.stat_result, options: CheckOptions, *,
                 chain: tuple[FileIdentity, ...] = (), depth: int = 0,
                 check_backing: BackingChecker | None = None) -> None:
        self.path = path
        self.fd = fd
        self.file_size = st.st_size
        self.identity: FileIdentity = (st.st_dev, st.st_ino)
        self.options = options
        #: Identities of the add-cow files above this one in the chain being checked.
        self.chain = chain
        #: How many add-cow files sit above this one (0 for the image the user named).
        self.depth = depth
        self.directory = os.path.dirname(os.path.abspath(os.fsencode(path)))
        if not options.force_share and not try_lock(fd, exclusive=False):
            # A writer holds the file (LOCK-READER): its bitmap is changing under us, and a
            # verdict on it would be a guess. The engine reports an OSError as "cannot check".
            raise OSError(errno.EAGAIN, f"{path} is in use (locked by another process); use "
                          "-U to read it anyway [LOCK-CONFLICT]")
        self._check_backing = check_backing
        self._memo: dict[str, Any] = {}
        self.prefix = self.read_at(0, HEADER_LENGTH_V1)
        self.version = read_version(self.prefix)
        self.header: HeaderV2 | HeaderV1 | None = None
        #: Why rules that need the header do not apply, when ``header`` is None.
        self.no_header_reason = ""
        self._parse()

    def _parse(self) -> None:
        if len(self.prefix) < HEADER_LENGTH_V2:
            self.no_header_reason = "the file is too short to hold a header (HDR-COMPLETE)"
        elif self.version == VERSION_1:
            if len(self.prefix) < HEADER_LENGTH_V1:
                self.no_header_reason = ("the file is too short to hold a version 1 header "
                                         "(HDR-COMPLETE)")
            else:
                self.header = parse_header_v1(self.prefix, file=self.path)
        else:
            self.header = parse_header(self.prefix, file=self.path)

    # -- access ----------------------------------------------------------------------------

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; empty past EOF. Never allocates more than the
        file holds, whatever offsets a hostile header supplies."""
        if offset < 0 or length <= 0 or offset >= self.file_size:
            return b""
        length = min(length, self.file_size - offset)
        data = os.pread(self.fd, length, offset)
        if len(data) == length or not data:
            return data
        out = bytearray(data)
        while len(out) < length:
            data = os.pread(self.fd, length - len(out), offset + len(out))
            if not data:
                break
            out += data
        return bytes(out)

    def check_backing_file(self, path: str) -> Report:
        """The report on an add-cow backing file of this image, checked one level deeper and
        carrying the identities of the files above it (how loops and over-deep chains are
        caught without unbounded recursion)."""
        if self._check_backing is None:
            raise RuntimeError("this image's context was made without a backing-file checker")
        return self._check_backing(path, dataclasses.replace(self.options, progress=False),
                                   chain=(*self.chain, self.identity), depth=self.depth + 1)

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """Compute a shared result once per image (a pass that decides several rules)."""
        if key not in self._memo:
            self._memo[key] = compute()
        value: T = self._memo[key]
        return value

    # -- what applies ----------------------------------------------------------------------

    @property
    def layout_known(self) -> bool:
        return self.header is not None and self.version in (VERSION_1, VERSION_2)

    def v2(self) -> HeaderV2:
        """The v2 header, or NotApplicableError for v1 files and unknown layouts."""
        if not self.layout_known:
            raise NotApplicableError(self.no_header_reason or
                                     f"version {self.version} has an unknown layout")
        if not isinstance(self.header, HeaderV2):
            raise NotApplicableError("version 1 file: the v1 rules apply instead")
        return self.header

    def v1(self) -> HeaderV1:
        if not self.layout_known:
            raise NotApplicableError(self.no_header_reason or
                                     f"version {self.version} has an unknown layout")
        if not isinstance(self.header, HeaderV1):
            raise NotApplicableError("version 2 file: a rule of the version 1 layout")
        return self.header

    def require_follow(self) -> None:
        if not self.options.follow:
            raise NotApplicableError("--no-follow: the image and backing files are not opened")

    def geometry_valid(self) -> bool:
        """Whether ``cluster_count`` and ``bitmap_length`` mean anything for this header."""
        h = self.header
        if isinstance(h, HeaderV1):
            return True
        if h is None:
            return False
        return (MIN_CLUSTER_BITS <= int(h.cluster_bits) <= MAX_CLUSTER_BITS
                and int(h.virtual_size) <= MAX_VIRTUAL_SIZE)
