"""The map of an image: which layer of the chain answers each byte range (spec: "Reading";
like ``qemu-img map``).

The map is computed window by window (:data:`MAP_WINDOW_CLUSTERS` clusters per request), so a
caller that streams it holds a bounded number of extents whatever the disk's size, and merged
by one rule (:func:`mergeable`) within and across windows, so the result equals one pass over
the whole range.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TypedDict

from addcow_ref.engine.imagebase import ImageBase

__all__ = ["MAP_WINDOW_CLUSTERS", "Extent", "ExtentFields", "MapMixin", "mergeable"]

#: Clusters mapped per request by :meth:`MapMixin.iter_map`: 2**19 clusters (64 KiB of bitmap),
#: so a streaming caller holds a bounded number of extents (mapping a 64 TiB disk in one pass
#: peaked at 273 MiB RSS).
MAP_WINDOW_CLUSTERS = 1 << 19


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


class MapMixin(ImageBase):
    """``map`` and ``iter_map`` of :class:`~addcow_ref.engine.image.AddCowImage`."""

    def map(self, offset: int = 0, length: int | None = None) -> list[Extent]:
        """Merged extents covering ``[offset, offset + length)`` (the whole disk by default)."""
        return list(self.iter_map(offset, length))

    def iter_map(self, offset: int = 0, length: int | None = None) -> Iterator[Extent]:
        """:meth:`map`, one merged extent at a time, mapped ``MAP_WINDOW_CLUSTERS`` clusters
        per request (see the module docstring)."""
        self._check_open()
        if length is None:
            length = self.virtual_size - offset
        self._check_range(offset, length)
        step = MAP_WINDOW_CLUSTERS << self.cluster_bits
        pending: Extent | None = None
        end = offset + length
        for win in range(offset, end, step):
            for e in self._map_window(win, min(step, end - win)):
                if pending is not None and mergeable(pending, e):
                    pending = _joined(pending, e)
                    continue
                if pending is not None:
                    yield pending
                pending = e
        if pending is not None:
            yield pending

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
