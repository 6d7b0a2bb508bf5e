"""The map of an image: which layer of the chain answers each byte range (spec: "Reading";
like ``qemu-img map``).

The map is computed window by window (:data:`MAP_WINDOW_CLUSTERS` clusters per request), so a
caller that streams it holds a bounded number of extents whatever the disk's size, and merged
by one rule (:func:`mergeable`) within and across windows, so the result equals one pass over
the whole range.
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any, NamedTuple, TypedDict, TypeVar

from addcow_ref.engine.imagebase import ImageBase, os_error
from addcow_ref.format.bitmap import RunColumn, load_numpy, numpy_if_loaded
from addcow_ref.format.errors import AddCowError

__all__ = ["ARRAYS_AFTER_EXTENTS", "MAP_WINDOW_CLUSTERS", "Extent", "ExtentArrays",
           "ExtentFields", "MapMixin", "merge_windows", "mergeable"]

#: Clusters mapped per request by :meth:`MapMixin.iter_map`: 2**19 clusters (64 KiB of bitmap),
#: so a streaming caller holds a bounded number of extents (mapping a 64 TiB disk in one pass
#: peaked at 273 MiB RSS).
MAP_WINDOW_CLUSTERS = 1 << 19

#: :meth:`MapMixin.iter_extent_arrays` maps window by window one extent at a time until this
#: many extents have come out, then imports numpy (if it is not loaded) and maps each further
#: window as arrays. A map of a few extents never pays numpy's import (~60 ms here, the cost of
#: about 3000 extents the per-extent way); a map of millions pays it once.
ARRAYS_AFTER_EXTENTS = 2048


class ExtentFields(TypedDict):
    """:class:`Extent` as a plain mapping (:meth:`Extent.as_dict`)."""

    start: int
    length: int
    allocated: bool
    depth: int
    data: bool


@dataclasses.dataclass(frozen=True)
class Extent:
    """A byte range of the guest disk with one status, like a line of ``qemu-img map``.

    ``allocated``: the data is in *this* image's file. ``depth``: the layer of the chain that
    answers reads (0 = this image, 1 = its backing file, ...). ``data``: False where the range
    reads as zeros because no layer holds it (no backing file, or past its end).
    """

    start: int
    length: int
    allocated: bool
    depth: int
    data: bool = True

    def as_dict(self) -> ExtentFields:
        return ExtentFields(start=self.start, length=self.length, allocated=self.allocated,
                            depth=self.depth, data=self.data)


def mergeable(a: Extent, b: Extent) -> bool:
    """``b`` continues ``a`` with the same status, so the two are one extent."""
    return (a.start + a.length == b.start
            and (a.allocated, a.depth, a.data) == (b.allocated, b.depth, b.data))


def _joined(a: Extent, b: Extent) -> Extent:
    return dataclasses.replace(a, length=a.length + b.length)


class ExtentArrays(NamedTuple):
    """Extents as five parallel columns: row ``i`` is ``Extent(start[i], length[i],
    allocated[i], depth[i], data[i])``. numpy arrays (int64, int64, bool, int64, bool) for a
    window mapped with numpy; ``array.array`` ('q', 'q', 'B', 'q', 'B') for one mapped the
    per-extent way (see :data:`ARRAYS_AFTER_EXTENTS`). Both index, slice, take item assignment
    and ``tolist()`` alike, which is all the helpers here use."""

    start: RunColumn
    length: RunColumn
    allocated: RunColumn
    depth: RunColumn
    data: RunColumn

    @property
    def rows(self) -> int:
        """Number of extents (rows)."""
        return len(self.start)

    def extents(self) -> list[Extent]:
        """The rows as :class:`Extent` objects, with plain ints and bools."""
        return [Extent(s, n, bool(a), d, bool(x)) for s, n, a, d, x in zip(
            self.start.tolist(), self.length.tolist(), self.allocated.tolist(),
            self.depth.tolist(), self.data.tolist(), strict=True)]

    @classmethod
    def of(cls, extents: Iterable[Extent]) -> ExtentArrays:
        """``array.array`` columns holding ``extents``."""
        rows = [(e.start, e.length, e.allocated, e.depth, e.data) for e in extents]
        return cls(array("q", [r[0] for r in rows]), array("q", [r[1] for r in rows]),
                   array("B", [r[2] for r in rows]), array("q", [r[3] for r in rows]),
                   array("B", [r[4] for r in rows]))


#: A NamedTuple of columns whose first two are ``start`` and ``length`` and whose others are
#: the status that decides merging (:class:`ExtentArrays`, ``ops.mapping.SpanArrays``).
W = TypeVar("W", bound=tuple[Any, ...])


def merge_windows(windows: Iterable[W]) -> Iterator[W]:
    """Windows of contiguous, internally merged rows (each a NamedTuple of columns, ``start``
    and ``length`` first), with the last row of a window merged into the first of the next
    when their status columns are equal: the rows of all the windows together are then those
    of one pass over the whole range. Windows may mix numpy and ``array.array`` columns; a
    window is held back until the next one is known, and windows with no rows are dropped."""
    pending: W | None = None
    for w in windows:
        if not len(w[0]):
            continue
        if pending is not None:
            if all(bool(c[-1] == d[0]) for c, d in zip(pending[2:], w[2:], strict=True)):
                w[0][0] = pending[0][-1]
                w[1][0] = int(w[1][0]) + int(pending[1][-1])
                pending = type(pending)(*(c[:-1] for c in pending))
            if len(pending[0]):
                yield pending
        pending = w
    if pending is not None:
        yield pending


def _merged(np: ModuleType, start: Any, end: int, allocated: Any, depth: Any, data: Any
            ) -> ExtentArrays:
    """Contiguous rows (``start`` ascending, the last ending at ``end``) with consecutive
    rows of equal status merged."""
    keep = np.empty(len(start), dtype=bool)
    keep[0] = True
    keep[1:] = ((allocated[1:] != allocated[:-1]) | (depth[1:] != depth[:-1])
                | (data[1:] != data[:-1]))
    if not keep.all():
        start, allocated, depth, data = start[keep], allocated[keep], depth[keep], data[keep]
    length = np.empty_like(start)
    np.subtract(start[1:], start[:-1], out=length[:-1])
    length[-1] = end - start[-1]
    return ExtentArrays(start, length, allocated, depth, data)


class MapMixin(ImageBase):
    """``map``, ``iter_map`` and ``iter_extent_arrays`` of
    :class:`~addcow_ref.engine.image.AddCowImage`."""

    def map(self, offset: int = 0, length: int | None = None) -> list[Extent]:
        """Merged extents covering ``[offset, offset + length)`` (the whole disk by default)."""
        return list(self.iter_map(offset, length))

    def iter_map(self, offset: int = 0, length: int | None = None) -> Iterator[Extent]:
        """:meth:`map`, one merged extent at a time, mapped ``MAP_WINDOW_CLUSTERS`` clusters
        per request (see the module docstring)."""
        for window in self.iter_extent_arrays(offset, length):
            yield from window.extents()

    def extent_arrays(self, offset: int = 0, length: int | None = None) -> ExtentArrays:
        """:meth:`map` as one :class:`ExtentArrays` with numpy columns (numpy is imported if
        it is not loaded; an ``AddCowError`` where it cannot be). For callers that turn many
        extents into something else at once (NBD block status, a backing layer's map)."""
        np = load_numpy()
        if np is None:
            raise AddCowError("extent_arrays needs numpy, which cannot be imported here",
                              file=self.path)
        windows = [self._window_arrays(np, win, n)
                   for win, n in self._windows(offset, length)]
        merged = list(merge_windows(windows))
        if not merged:
            e = np.empty(0, dtype=np.int64)
            return ExtentArrays(e, e.copy(), np.empty(0, dtype=bool), e.copy(),
                                np.empty(0, dtype=bool))
        cols = [np.concatenate([np.asarray(w[i]) for w in merged]) for i in range(5)]
        return ExtentArrays(cols[0], cols[1], cols[2].astype(bool, copy=False), cols[3],
                            cols[4].astype(bool, copy=False))

    def iter_extent_arrays(self, offset: int = 0, length: int | None = None
                           ) -> Iterator[ExtentArrays]:
        """:meth:`map` as a stream of :class:`ExtentArrays`, one per window of
        ``MAP_WINDOW_CLUSTERS`` clusters (each under one request), merged across windows as
        :func:`merge_windows` says: their rows, in order, are exactly :meth:`map`'s extents.

        The first windows are mapped one extent at a time (``array.array`` columns); once
        :data:`ARRAYS_AFTER_EXTENTS` extents have come out, or from the start when numpy is
        loaded already, each window is mapped with numpy as a whole (numpy columns): bitmap
        runs from :meth:`BitmapCache.run_arrays
        <addcow_ref.engine.bitmapcache.BitmapCache.run_arrays>`, the backing file's map of
        the window laid under its unallocated runs in one vectorised step. Without numpy
        every window goes the per-extent way.
        """
        yield from merge_windows(self._iter_windows(offset, length))

    def _windows(self, offset: int, length: int | None) -> Iterator[tuple[int, int]]:
        self._check_open()
        if length is None:
            length = self.virtual_size - offset
        self._check_range(offset, length)
        step = MAP_WINDOW_CLUSTERS << self.cluster_bits
        end = offset + length
        for win in range(offset, end, step):
            yield win, min(step, end - win)

    def _iter_windows(self, offset: int, length: int | None) -> Iterator[ExtentArrays]:
        np = numpy_if_loaded()
        produced = 0
        asked = False
        for win, n in self._windows(offset, length):
            if np is None and not asked and produced >= ARRAYS_AFTER_EXTENTS:
                np = load_numpy()
                asked = True
            if np is not None:
                window = self._window_arrays(np, win, n)
            else:
                window = ExtentArrays.of(self._map_window(win, n))
            produced += window.rows
            yield window

    def _window_arrays(self, np: ModuleType, offset: int, length: int) -> ExtentArrays:
        """The merged extents of one window as numpy columns, under one request; the same
        rows as :meth:`_map_window`."""
        cb = self.cluster_bits
        end = offset + length
        first, last = offset >> cb, (end - 1) >> cb
        with self._request():
            if self.all_allocated:
                cs = np.array([first], dtype=np.int64)
                cv = np.ones(1, dtype=bool)
            else:
                try:
                    runs = self._cache.run_arrays(np, first, last - first + 1)
                except OSError as e:
                    raise os_error(e, self.path, None, "bitmap read", AddCowError) from None
                cs, cv = runs.starts, runs.values
            start = cs << cb
            start[0] = offset  # the first run begins at the window, not at its cluster
            if self._backing is None or cv.all():
                return _merged(np, start, end, cv, np.zeros(len(start), dtype=np.int64),
                               cv.copy() if self._backing is None else np.ones_like(cv))
            below = self._backing_arrays(np, offset, length)
        # Lay the backing file's map under the unallocated runs: every boundary of either is
        # a boundary of the result, and each piece takes its status from the run above it
        # when allocated, else from the backing extent below it.
        if len(below.start) == 1:
            pieces = start
        else:
            pieces = np.union1d(start, np.asarray(below.start, dtype=np.int64))
        top = np.searchsorted(start, pieces, side="right") - 1
        under = np.searchsorted(np.asarray(below.start, dtype=np.int64), pieces,
                                side="right") - 1
        allocated = cv[top]
        depth = np.where(allocated, 0, np.asarray(below.depth, dtype=np.int64)[under] + 1)
        data = allocated | np.asarray(below.data, dtype=bool)[under]
        return _merged(np, pieces, end, allocated, depth, data)

    def _backing_arrays(self, np: ModuleType, offset: int, length: int) -> ExtentArrays:
        """The backing file's map of ``[offset, offset + length)`` (its own depths: 0 is the
        backing file), as columns: an add-cow backing image maps itself as arrays, any other
        backing answers :meth:`Backing.extents
        <addcow_ref.engine.backing.Backing.extents>`."""
        backing = self._backing
        assert backing is not None
        image = getattr(backing, "image", None)
        end = offset + length
        if isinstance(image, MapMixin):
            size = image.virtual_size
            parts: list[ExtentArrays] = []
            if offset < size:
                parts.append(image.extent_arrays(offset, min(end, size) - offset))
            if end > size:  # past the backing image's end: zeros, as AddCowBacking says
                s = max(offset, size)
                parts.append(ExtentArrays(np.array([s]), np.array([end - s]),
                                          np.zeros(1, dtype=bool), np.zeros(1, dtype=np.int64),
                                          np.zeros(1, dtype=bool)))
            return ExtentArrays(*(np.concatenate([np.asarray(p[i]) for p in parts])
                                  for i in range(5)))
        rows = backing.extents(offset, length)
        return ExtentArrays(np.array([b.start for b in rows], dtype=np.int64),
                            np.array([b.length for b in rows], dtype=np.int64),
                            np.array([b.allocated for b in rows], dtype=bool),
                            np.array([b.depth for b in rows], dtype=np.int64),
                            np.array([b.data for b in rows], dtype=bool))

    def _map_window(self, offset: int, length: int) -> list[Extent]:
        """The merged extents of one window, under one request."""
        out: list[Extent] = []

        def add(e: Extent) -> None:
            if e.length <= 0:
                return
            if out and mergeable(out[-1], e):
                out[-1] = _joined(out[-1], e)
                return
            out.append(e)

        with self._request():
            for s, n, allocated in self._byte_runs(offset, length):
                if allocated:
                    add(Extent(s, n, True, 0, True))
                elif self._backing is None:
                    add(Extent(s, n, False, 0, False))
                else:
                    for b in self._backing.extents(s, n):
                        add(Extent(b.start, b.length, False, b.depth + 1, b.data))
        return out
