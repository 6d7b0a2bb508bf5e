"""Backing files: name resolution, declared-format opening, chain depth and loop detection
(spec: "Names", "Image file and backing file"; rules READ-NAME-RELATIVE, READ-NO-PROBE,
BACK-EXISTS, BACK-FORMAT, BACK-LOOP, BACK-DEPTH, READ-PAST-BACKING-EOF).

A backing file is opened in exactly the format the header declares: a file declared ``raw`` that
happens to start with the add-cow magic is still read as raw bytes, because letting file contents
choose the format is how a guest that writes a fake header into its disk gets the host to open
arbitrary files (the qcow2 probing vulnerability the spec's security section describes).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Protocol

from addcow_ref.engine.fileio import BlockFile, FileSystem
from addcow_ref.engine.oslocks import lock_file
from addcow_ref.format.constants import FORMAT_RAW, MAX_CHAIN_DEPTH
from addcow_ref.format.errors import BackingFileError

__all__ = [
    "Backing",
    "BackingExtent",
    "BackingOpener",
    "ChainState",
    "MissingBacking",
    "NameConfinedError",
    "RawBacking",
    "confine_root",
    "is_confined",
    "open_backing",
    "register_backing_format",
    "resolve_name",
]


def resolve_name(container: str, name: bytes | str, *, confine: str | None = None,
                 field: str | None = None) -> str:
    """Resolve a stored name against the directory of the add-cow file ``container``
    (READ-NAME-RELATIVE), never against the current working directory.

    With ``confine`` (a directory, see :func:`confine_root`) the result must resolve, after
    symbolic links, inside it, or :class:`NameConfinedError` is raised before anything is
    opened (spec: "Checking an untrusted upload"); ``field`` is the header field it came from,
    for that error."""
    text = os.fsdecode(name)
    if os.path.isabs(text):
        path = text
    else:
        path = os.path.join(os.path.dirname(os.path.abspath(container)), text)
    if confine is not None and not is_confined(path, confine):
        raise NameConfinedError(f"name {text!r} resolves outside the confinement directory "
                                f"{confine}; not opened", file=container, field=field,
                                rule_id="NAME-CONFINED")
    return path


class NameConfinedError(BackingFileError):
    """A name that leaves the confinement directory (NAME-CONFINED under ``--confine``). The
    message never says whether the file it names exists: nothing outside was looked at."""


def confine_root(directory: str | os.PathLike[str]) -> str:
    """The confinement directory as :func:`is_confined` compares it: symlinks resolved."""
    return os.path.realpath(os.fspath(directory))


def is_confined(path: str | os.PathLike[str], root: str) -> bool:
    """Whether ``path`` resolves, after symbolic links, to ``root`` or a file below it
    (``root`` from :func:`confine_root`). Only ``realpath`` runs: no file is opened."""
    real = os.path.realpath(os.fspath(path))
    try:
        return os.path.commonpath([root, real]) == root
    except ValueError:  # one relative, one absolute: cannot happen after realpath
        return False


@dataclasses.dataclass(frozen=True)
class BackingExtent:
    """A byte range of a backing file: ``depth`` counts from that backing file (0 = itself);
    ``data`` is False where the range reads as zeros because nothing in the chain holds it."""

    start: int
    length: int
    allocated: bool
    depth: int
    data: bool


class Backing(Protocol):
    """What an add-cow image needs from the file below it."""

    path: str
    format: str

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes:
        """Bytes at ``offset``; zeros past the backing file's end (READ-PAST-BACKING-EOF)."""
        ...

    def extents(self, offset: int, length: int) -> list[BackingExtent]: ...

    def raw_file(self) -> BlockFile | None:
        """The underlying raw file when bytes map 1:1 (enables ``copy_file_range``)."""
        ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class ChainState:
    """Where in a chain an add-cow file is opened: the identities of the add-cow files above it
    (loop detection) and its depth (0 for the top image, 1 for its backing file, ...)."""

    seen: frozenset[tuple[int, int]]
    depth: int
    #: Skip the shared locks (LOCK-FORCE-SHARE): only ever set for read-only opens.
    force_share: bool = False
    #: The confinement directory (:func:`confine_root`) every name must stay in, if any.
    confine: str | None = None
    #: The identities of the image files of the add-cow files above: no file of the chain may
    #: be one of them (IMG-IDENTITY).
    images: frozenset[tuple[int, int]] = frozenset()


class RawBacking:
    """A raw backing file: its bytes are the guest disk, zeros past its end."""

    format = FORMAT_RAW

    def __init__(self, path: str, file: BlockFile) -> None:
        self.path = path
        self._file = file
        self._size = file.size()

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        if offset >= self._size or length <= 0:
            return bytes(max(length, 0))
        try:
            data = self._file.pread(offset, min(length, self._size - offset))
        except OSError as e:
            raise BackingFileError(f"cannot read backing file: {e.strerror}", file=self.path,
                                   offset=offset) from None
        return data.ljust(length, b"\0")

    def extents(self, offset: int, length: int) -> list[BackingExtent]:
        end = offset + length
        out: list[BackingExtent] = []
        if offset < self._size:
            n = min(end, self._size) - offset
            out.append(BackingExtent(offset, n, True, 0, True))
        if end > self._size:
            s = max(offset, self._size)
            out.append(BackingExtent(s, end - s, False, 0, False))
        return out

    def raw_file(self) -> BlockFile | None:
        return self._file

    def close(self) -> None:
        self._file.close()


class MissingBacking:
    """A backing file that does not exist (or, for ``addcow info``'s lenient open, one that
    could not be opened). An image refuses it at open (BACK-EXISTS); where an image is opened
    leniently to show its header, reading an unallocated cluster raises instead of returning
    zeros."""

    size = 0

    def __init__(self, path: str, format: str, reason: str) -> None:
        self.path = path
        self.format = format
        self.reason = reason

    def _error(self) -> BackingFileError:
        return BackingFileError(f"backing file is needed but {self.reason}", file=self.path,
                                rule_id="BACK-EXISTS")

    def read(self, offset: int, length: int) -> bytes:
        raise self._error()

    def extents(self, offset: int, length: int) -> list[BackingExtent]:
        raise self._error()

    def raw_file(self) -> BlockFile | None:
        return None

    def close(self) -> None:
        pass


#: Opens a backing file of one image format: ``(path, fs, chain)`` where ``chain`` already counts
#: the file being opened. Raw is built in; formats that are images of their own (add-cow) are
#: registered by the engine module that reads them, so this module never imports it.
BackingOpener = Callable[[str, FileSystem, "ChainState"], "Backing"]

_OPENERS: dict[str, BackingOpener] = {}


def register_backing_format(fmt: str, opener: BackingOpener) -> None:
    """Make ``fmt`` a backing format that :func:`open_backing` can open through ``opener``."""
    _OPENERS[fmt] = opener


def open_backing(container: str, name: bytes | str, fmt: str, fs: FileSystem,
                 chain: ChainState) -> Backing:
    """Open the backing file ``name`` of the add-cow file ``container`` as format ``fmt``.

    ``chain`` describes the add-cow files above it. Raises :class:`BackingFileError` for loops
    (BACK-LOOP), too deep chains (BACK-DEPTH), a file that is the image file of an add-cow file
    above (IMG-IDENTITY), a FIFO, socket, character device or directory (IMG-FILE-TYPE, learnt
    by ``stat`` before any open: READ-FILE-TYPE), unsupported formats and unreadable files. A
    file that does not exist yields a :class:`MissingBacking`, which an image refuses when it
    opens (BACK-EXISTS); tools that only name the file (create, rebase) report it their way.
    """
    path = resolve_name(container, name, confine=chain.confine, field="backing_name_offset")
    kind = fs.kind(path)
    if kind == "missing":
        return MissingBacking(path, fmt, "it does not exist")
    if kind not in ("file", "block"):
        raise BackingFileError(f"backing file is a {kind}, not a regular file or block device",
                               file=path, rule_id="IMG-FILE-TYPE")
    try:
        ident = fs.identity(path)
    except OSError as e:
        raise BackingFileError(f"cannot stat backing file: {e.strerror}", file=path,
                               rule_id="BACK-EXISTS") from None
    if ident in chain.images:
        raise BackingFileError("backing file is the image file of an add-cow file above it",
                               file=container, field="backing_name_offset",
                               rule_id="IMG-IDENTITY")
    if fmt == FORMAT_RAW:
        try:
            file = fs.open(path, writable=False)
        except OSError as e:
            raise BackingFileError(f"cannot open backing file: {e.strerror}",
                                   file=path, rule_id="BACK-EXISTS") from None
        if not chain.force_share:
            try:  # every opener shares the backing files of its chain (LOCK-WRITER, -READER)
                lock_file(file, path, exclusive=False)
            except BaseException:
                file.close()
                raise
        return RawBacking(path, file)
    if fmt not in _OPENERS:
        raise BackingFileError(f"backing format {fmt!r} is not supported",
                               file=path, field="backing_format", rule_id="FMT-BACKING-KNOWN")
    if ident in chain.seen:
        raise BackingFileError(f"backing chain loops back to {path}", file=container,
                               field="backing_name_offset", rule_id="BACK-LOOP")
    if chain.depth > MAX_CHAIN_DEPTH:
        raise BackingFileError(
            f"backing chain holds more than {MAX_CHAIN_DEPTH} add-cow files below the top image",
            file=container, field="backing_name_offset", rule_id="BACK-DEPTH")
    return _OPENERS[fmt](path, fs, dataclasses.replace(chain, seen=chain.seen | {ident}))
