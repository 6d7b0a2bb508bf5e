"""Add-cow backing files: an add-cow image opened read-only below another (spec: "Image file
and backing file"; rule BACK-FORMAT).

:mod:`addcow_ref.engine.backing` opens backing files by declared format through a registry, so
it never imports the image module; the image module registers :func:`add_cow_opener` over its
own opening function. This module sees the image only through :class:`OpenImage`, so it
imports neither.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from addcow_ref.engine.backing import Backing, BackingExtent, BackingOpener, ChainState
from addcow_ref.engine.fileio import BlockFile, FileSystem
from addcow_ref.engine.oslocks import ImageLockedError
from addcow_ref.format.constants import FORMAT_ADD_COW
from addcow_ref.format.errors import AddCowError, BackingFileError

__all__ = ["AddCowBacking", "ImageOpener", "OpenImage", "add_cow_opener"]


class _Extent(Protocol):
    @property
    def start(self) -> int: ...

    @property
    def length(self) -> int: ...

    @property
    def allocated(self) -> bool: ...

    @property
    def depth(self) -> int: ...

    @property
    def data(self) -> bool: ...


class OpenImage(Protocol):
    """What a backing file needs of an open add-cow image."""

    @property
    def path(self) -> str: ...

    @property
    def virtual_size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...

    def map(self, offset: int = 0, length: int | None = None) -> Sequence[_Extent]: ...

    def close(self) -> None: ...


#: Opens an add-cow file read-only at a place in a chain: ``(path, fs, chain)``.
ImageOpener = Callable[[str, FileSystem, ChainState], OpenImage]


class AddCowBacking:
    """An add-cow backing file, opened read-only as an image of its own."""

    format = FORMAT_ADD_COW

    def __init__(self, image: OpenImage) -> None:
        self.image = image
        self.path = image.path

    @property
    def size(self) -> int:
        return self.image.virtual_size

    def read(self, offset: int, length: int) -> bytes:
        size = self.image.virtual_size
        if offset >= size or length <= 0:
            return bytes(max(length, 0))
        n = min(length, size - offset)
        return self.image.read(offset, n).ljust(length, b"\0")

    def extents(self, offset: int, length: int) -> list[BackingExtent]:
        size = self.image.virtual_size
        end = offset + length
        out: list[BackingExtent] = []
        if offset < size:
            for e in self.image.map(offset, min(end, size) - offset):
                out.append(BackingExtent(e.start, e.length, e.allocated, e.depth, e.data))
        if end > size:
            s = max(offset, size)
            out.append(BackingExtent(s, end - s, False, 0, False))
        return out

    def raw_file(self) -> BlockFile | None:
        return None

    def close(self) -> None:
        self.image.close()


def add_cow_opener(open_image: ImageOpener) -> BackingOpener:
    """The :data:`~addcow_ref.engine.backing.BackingOpener` of add-cow backing files, opening
    them with ``open_image``; an invalid image becomes a BACK-FORMAT error of the chain."""

    def opener(path: str, fs: FileSystem, chain: ChainState) -> Backing:
        try:
            image = open_image(path, fs, chain)
        except (BackingFileError, ImageLockedError):
            raise  # already about the chain, or a lock: not a statement about the file's bytes
        except AddCowError as e:
            if e.rule_id == "IMG-IDENTITY":  # about the chain too: its files overlap
                raise BackingFileError(e.message, file=e.file, field=e.field,
                                       rule_id=e.rule_id) from None
            raise BackingFileError(f"backing file is not a valid add-cow image: {e}",
                                   file=path, rule_id="BACK-FORMAT") from None
        return AddCowBacking(image)

    return opener
