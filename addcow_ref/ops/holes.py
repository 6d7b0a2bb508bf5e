"""Holes versus data in an image's map: each range split by the ``SEEK_DATA``/``SEEK_HOLE``
answers of the file that supplies it.

The library's map (:meth:`AddCowImage.iter_map <addcow_ref.engine.image.AddCowImage.iter_map>`)
says which layer of the chain answers each range; the bytes of that layer lie 1:1 at the same
offsets in one file: the image file of the add-cow layer (for a range allocated in it), or the
raw file at the bottom of the chain. Where that file has a hole, the range reads as zeros
without any layer holding data there (a hole punched inside an allocated cluster, a sparse
backing file). ``addcow map`` reports such a range ``zero: true, data: false``, as ``qemu-img
map`` reports the holes of a raw file, and ``addcow serve`` reports it ``HOLE|ZERO`` in NBD
block status (:mod:`addcow_ref.cli.nbdlayers`), so copies made through either stay thin. Both
use :func:`split_extents` over the files :class:`LayerFiles` opens, so they agree.

A layer whose file is not known (one of a chain opened from another kind of backing) is
reported as data: saying "data" where there are zeros costs space, saying "zero" where there is
data would lose it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence

from addcow_ref.engine.addcowbacking import AddCowBacking
from addcow_ref.engine.extents import Extent
from addcow_ref.engine.fileio import BlockFile, OSFile
from addcow_ref.engine.image import AddCowImage

__all__ = ["LayerFiles", "Span", "split_extents"]


@dataclasses.dataclass(frozen=True)
class Span:
    """A range of the guest disk with one status, hole-aware.

    ``depth`` and ``allocated`` are the library's (:class:`~addcow_ref.engine.extents.Extent`);
    ``present``: some layer supplies the range (its file may still hold a hole there);
    ``data``: that layer's file holds data there; False for a hole of the file and where no
    layer supplies the range (both read as zeros).
    """

    start: int
    length: int
    depth: int
    allocated: bool
    present: bool
    data: bool


def _open_ro(path: str) -> OSFile:
    return OSFile(path, os.open(path, os.O_RDONLY | os.O_CLOEXEC))


class LayerFiles:
    """The file that holds each layer's bytes 1:1, by depth, for an open image.

    Depth 0 is the image's own image file, opened once more read-only and without a lock (the
    library's locks are OFD locks on its own descriptions, which another read-only description
    neither takes nor releases; its own descriptor is private). Each add-cow backing layer gets
    its image file opened the same way; the raw file at the bottom is the library's own
    (:meth:`Backing.raw_file <addcow_ref.engine.backing.Backing.raw_file>`), not closed here.
    :meth:`close` closes only what this object opened.
    """

    def __init__(self, image: AddCowImage) -> None:
        self._opened: list[OSFile] = []
        self.files: list[BlockFile | None] = []
        layer: AddCowImage | None = image
        try:
            while layer is not None:
                own = _open_ro(layer.image_path)
                self._opened.append(own)
                self.files.append(own)
                backing = layer.backing
                layer = None
                if isinstance(backing, AddCowBacking):
                    below = backing.image
                    if isinstance(below, AddCowImage):
                        layer = below
                    else:
                        self.files.append(None)
                elif backing is not None:
                    self.files.append(backing.raw_file())
        except BaseException:
            self.close()
            raise

    @property
    def image_file(self) -> BlockFile:
        """The top image's image file (depth 0)."""
        return self._opened[0]

    def file_at(self, depth: int) -> BlockFile | None:
        """The file of layer ``depth``, or None when it is not known."""
        return self.files[depth] if 0 <= depth < len(self.files) else None

    def close(self) -> None:
        for f in self._opened:
            f.close()
        self._opened = self._opened[:0]

    def __enter__(self) -> LayerFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pieces(file: BlockFile, start: int, length: int) -> Iterator[tuple[int, int, bool]]:
    """``[start, start + length)`` of ``file`` as ``(start, length, is data)`` pieces."""
    pos, end = start, start + length
    for s, n in file.data_segments(start, length):
        if s > pos:
            yield pos, s - pos, False
        yield s, n, True
        pos = s + n
    if end > pos:
        yield pos, end - pos, False


def _split_one(ext: Extent, files: Sequence[BlockFile | None]
               ) -> Iterator[tuple[int, int, int, bool, bool, bool]]:
    """``ext`` as ``(start, length, depth, allocated, present, data)`` pieces."""
    start, length, depth = int(ext.start), int(ext.length), int(ext.depth)
    allocated = bool(ext.allocated)
    if not ext.data:
        yield start, length, depth, allocated, False, False
        return
    file = files[depth] if 0 <= depth < len(files) else None
    if file is None:
        yield start, length, depth, allocated, True, True
        return
    for s, n, data in _pieces(file, start, length):
        yield s, n, depth, allocated, True, data


def split_extents(extents: Iterable[Extent], files: Sequence[BlockFile | None]) -> Iterator[Span]:
    """The library's extents split where the file of their layer (``files[depth]``, see
    :class:`LayerFiles`) holds holes; adjacent spans of equal status merged. Streams: one
    extent's pieces at a time (plain tuples until a span is complete: a map of a million
    extents is mostly this loop)."""
    p_start = p_len = -1
    p_status: tuple[int, bool, bool, bool] | None = None
    for ext in extents:
        for start, length, depth, allocated, present, data in _split_one(ext, files):
            status = (depth, allocated, present, data)
            if status == p_status and p_start + p_len == start:
                p_len += length
                continue
            if p_status is not None:
                yield Span(p_start, p_len, *p_status)
            p_start, p_len, p_status = start, length, status
    if p_status is not None:
        yield Span(p_start, p_len, *p_status)
