"""The map of a guest disk as ``qemu-img map`` prints it: JSON entries and the human table.

``addcow map`` is one user of these renderers; they live below the tools so that anything
comparing add-cow's map with qemu-img's (the interop tests, a benchmark, another tool) gets the
same entries and the same text without going through the command line. Entries come from the
library's extents, or from the hole-aware spans of :func:`addcow_ref.ops.holes.split_extents`
(which ``addcow map`` uses): a range whose layer's file holds a hole there is then ``present``
but ``zero: true, data: false``, as ``qemu-img map`` reports the holes of a raw file. Everything
streams:
the map of a very large disk is never held at once (:meth:`AddCowImage.iter_map
<addcow_ref.engine.image.AddCowImage.iter_map>` yields merged extents window by window).
"""

from __future__ import annotations

import itertools
import json
from array import array
from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, NotRequired, TextIO, TypedDict

from addcow_ref.engine.extents import ExtentArrays, merge_windows
from addcow_ref.engine.fileio import BlockFile
from addcow_ref.format.bitmap import RunColumn
from addcow_ref.ops.holes import Span, split_extents

if TYPE_CHECKING:
    from addcow_ref.engine.image import AddCowImage, Extent

__all__ = [
    "MapEntry",
    "SpanArrays",
    "iter_map_entries",
    "iter_render_map",
    "iter_span_arrays",
    "map_entries",
    "render_map",
    "write_image_map_json",
    "write_map_json",
]

#: Entries per ``json.dumps`` call when streaming the JSON map: one call per entry was the
#: slowest part of mapping a large disk; a batch goes through the C encoder at once.
JSON_BATCH = 4096


class MapEntry(TypedDict):
    """One ``qemu-img map --output=json`` entry, keys in qemu-img's order.

    ``depth`` is 0 for this image, 1 for the backing file and so on; ``present`` says some layer
    supplies the bytes, ``data`` that its file holds data there, ``zero`` that they read as
    zeros: no layer supplies them (no backing file, or past the end of the chain; then
    ``present`` is false too), or the layer's file holds a hole there; ``offset`` (only when
    present) is where the bytes lie in that layer's raw file (add-cow and raw map guest offsets
    to the same file offsets).
    ``allocated`` is add-cow's own: the cluster's bit is set in this image's bitmap.
    """

    start: int
    length: int
    depth: int
    present: bool
    zero: bool
    data: bool
    offset: NotRequired[int]
    allocated: bool


def map_entries(extents: Iterable[Extent | Span]) -> list[MapEntry]:
    """The ``qemu-img map --output=json`` entries for an image's extents (see
    :class:`MapEntry`)."""
    return list(iter_map_entries(extents))


def iter_map_entries(extents: Iterable[Extent | Span]) -> Iterator[MapEntry]:
    """:func:`map_entries`, one entry at a time. A library extent counts as data wherever a
    layer supplies it; a :class:`~addcow_ref.ops.holes.Span` says so itself."""
    for ext in extents:
        start, length, depth = int(ext.start), int(ext.length), int(ext.depth)
        allocated = bool(ext.allocated)
        if isinstance(ext, Span):
            present, data = ext.present, ext.data
        else:
            present = data = allocated or bool(ext.data)
        # Keyword order is the JSON key order: qemu-img's keys, then add-cow's ``allocated``.
        if present:
            entry = MapEntry(start=start, length=length, depth=depth, present=True,
                             zero=not data, data=data, offset=start, allocated=allocated)
        else:
            entry = MapEntry(start=start, length=length, depth=depth, present=False, zero=True,
                             data=False, allocated=allocated)
        yield entry


def write_map_json(entries: Iterable[MapEntry], out: TextIO) -> None:
    """Write ``entries`` to ``out`` as the JSON list ``qemu-img map --output=json`` prints.

    The text equals ``json.dumps`` of the whole list with one entry per line (``"},\\n{"``
    between entries) and a final newline, without holding the list.
    """
    entries = iter(entries)
    out.write("[")
    sep = ""
    while batch := list(itertools.islice(entries, JSON_BATCH)):
        out.write(sep + json.dumps(batch)[1:-1].replace("}, {", "},\n{"))
        sep = ",\n"
    out.write("]\n")


class SpanArrays(NamedTuple):
    """:class:`~addcow_ref.ops.holes.Span` rows as six parallel columns (numpy arrays, or
    ``array.array`` for a window mapped the per-extent way; see
    :class:`~addcow_ref.engine.extents.ExtentArrays`): row ``i`` is ``Span(start[i],
    length[i], depth[i], allocated[i], present[i], data[i])``."""

    start: RunColumn
    length: RunColumn
    depth: RunColumn
    allocated: RunColumn
    present: RunColumn
    data: RunColumn

    def spans(self) -> list[Span]:
        """The rows as :class:`~addcow_ref.ops.holes.Span` objects (plain ints and bools)."""
        return [Span(s, n, d, bool(a), bool(p), bool(x)) for s, n, d, a, p, x in zip(
            self.start.tolist(), self.length.tolist(), self.depth.tolist(),
            self.allocated.tolist(), self.present.tolist(), self.data.tolist(), strict=True)]

    @classmethod
    def of(cls, spans: Iterable[Span]) -> SpanArrays:
        """``array.array`` columns holding ``spans``."""
        rows = [(p.start, p.length, p.depth, p.allocated, p.present, p.data) for p in spans]
        return cls(*(array(code, [r[i] for r in rows])
                     for i, code in enumerate(("q", "q", "q", "B", "B", "B"))))


def _split_window(np: ModuleType, ext: ExtentArrays, files: Sequence[BlockFile | None]
                  ) -> SpanArrays:
    """:func:`~addcow_ref.ops.holes.split_extents` of one window's numpy rows, vectorised.

    Each layer file is asked for its data segments once over the stretch of the window its
    extents cover (not once per extent: a map of a million extents over a sparse file was a
    million ``lseek`` pairs); every segment boundary inside one of that layer's extents cuts
    it, and each piece is data where a segment holds its first byte. The answers equal the
    per-extent ones because ``SEEK_DATA``/``SEEK_HOLE`` answer for the file, not the query.
    """
    start = np.asarray(ext.start, dtype=np.int64)
    end = int(start[-1]) + int(ext.length[-1])
    depth = np.asarray(ext.depth, dtype=np.int64)
    allocated = np.asarray(ext.allocated, dtype=bool)
    present = np.asarray(ext.data, dtype=bool)
    row_end = start + np.asarray(ext.length, dtype=np.int64)
    segments: list[tuple[int, Any, Any]] = []
    cuts: list[Any] = []
    for d in np.unique(depth[present]).tolist():
        file = files[d] if 0 <= d < len(files) else None
        if file is None:
            continue  # not known: data (see ops.holes)
        rows = np.flatnonzero(present & (depth == d))
        lo, hi = int(start[rows[0]]), int(row_end[rows[-1]])
        found = list(file.data_segments(lo, hi - lo))
        seg_start = np.array([s for s, _ in found], dtype=np.int64)
        seg_end = seg_start + np.array([n for _, n in found], dtype=np.int64)
        segments.append((d, seg_start, seg_end))
        points = np.concatenate([seg_start, seg_end])
        row = np.searchsorted(start, points, side="right") - 1
        inside = (row >= 0) & (points < end)
        row = np.where(inside, row, 0)
        inside &= present[row] & (depth[row] == d) & (points > start[row])
        cuts.append(points[inside])
    pieces = np.union1d(start, np.concatenate(cuts)) if cuts else start
    row = np.searchsorted(start, pieces, side="right") - 1 if cuts else np.arange(len(start))
    p_depth, p_alloc, p_present = depth[row], allocated[row], present[row]
    p_data = p_present.copy()
    for d, seg_start, seg_end in segments:
        sel = np.flatnonzero(p_present & (p_depth == d))
        at = pieces[sel]
        k = np.searchsorted(seg_start, at, side="right") - 1
        held = (k >= 0) & (at < seg_end[np.maximum(k, 0)]) if len(seg_start) else \
            np.zeros(len(at), dtype=bool)
        p_data[sel] = held
    keep = np.empty(len(pieces), dtype=bool)
    keep[0] = True
    keep[1:] = ((p_depth[1:] != p_depth[:-1]) | (p_alloc[1:] != p_alloc[:-1])
                | (p_present[1:] != p_present[:-1]) | (p_data[1:] != p_data[:-1]))
    if not keep.all():
        pieces, p_depth, p_alloc = pieces[keep], p_depth[keep], p_alloc[keep]
        p_present, p_data = p_present[keep], p_data[keep]
    length = np.empty_like(pieces)
    np.subtract(pieces[1:], pieces[:-1], out=length[:-1])
    length[-1] = end - pieces[-1]
    return SpanArrays(pieces, length, p_depth, p_alloc, p_present, p_data)


def iter_span_arrays(image: AddCowImage, files: Sequence[BlockFile | None], offset: int = 0,
                     length: int | None = None) -> Iterator[SpanArrays]:
    """The hole-aware map of ``[offset, offset + length)`` as a stream of :class:`SpanArrays`,
    merged across windows: their rows, in order, are exactly ``split_extents(image.iter_map(
    offset, length), files)`` (``files`` as :class:`~addcow_ref.ops.holes.LayerFiles` opens
    them). Windows the engine mapped with numpy are split with numpy
    (:func:`_split_window`); the others span by span."""
    def windows() -> Iterator[SpanArrays]:
        for ext in image.iter_extent_arrays(offset, length):
            np = _numpy_of(ext.start)
            if np is None:
                yield SpanArrays.of(split_extents(ext.extents(), files))
            else:
                yield _split_window(np, ext, files)

    yield from merge_windows(windows())


def _numpy_of(column: RunColumn) -> ModuleType | None:
    """numpy when ``column`` is a numpy array (it is then loaded), else None."""
    if isinstance(column, array):
        return None
    import numpy

    return numpy


#: ``qemu-img map --output=json`` entries as text, by ``4 * present + 2 * data + allocated``:
#: the bytes ``json.dumps`` writes for the :class:`MapEntry` (keys in its order), with the
#: numbers left to ``%`` (start, length, depth, and the offset, which equals the start).
_ENTRY_TEXT = {
    4 * present + 2 * data + allocated: (
        '{"start": %d, "length": %d, "depth": %d, "present": true, '
        f'"zero": {json.dumps(not data)}, "data": {json.dumps(data)}, "offset": %d, '
        f'"allocated": {json.dumps(allocated)}}}' if present else
        '{"start": %d, "length": %d, "depth": %d, "present": false, "zero": true, '
        f'"data": false, "allocated": {json.dumps(allocated)}}}%.0s')
    for present in (False, True) for data in (False, True) for allocated in (False, True)
}


def _entries_text(spans: SpanArrays) -> str:
    """The JSON text of the entries of ``spans``, joined by ``",\n"`` (as
    :func:`write_map_json` writes them)."""
    kind = [4 * bool(p) + 2 * bool(x) + bool(a) for p, x, a in zip(
        spans.present.tolist(), spans.data.tolist(), spans.allocated.tolist(), strict=True)]
    starts = spans.start.tolist()
    return ",\n".join([_ENTRY_TEXT[k] % (s, n, d, s) for k, s, n, d in zip(
        kind, starts, spans.length.tolist(), spans.depth.tolist(), strict=True)])


def write_image_map_json(image: AddCowImage, files: Sequence[BlockFile | None], out: TextIO,
                         offset: int = 0, length: int | None = None) -> None:
    """Write the map of ``[offset, offset + length)`` as ``addcow map --output=json`` prints
    it: the same text as :func:`write_map_json` of ``iter_map_entries(split_extents(
    image.iter_map(offset, length), files))``, made from :func:`iter_span_arrays` without an
    object per entry (a 64 TiB map of 262,144 entries took 5.9 s the per-entry way)."""
    out.write("[")
    sep = ""
    for spans in iter_span_arrays(image, files, offset, length):
        out.write(sep + _entries_text(spans))
        sep = ",\n"
    out.write("]\n")


def render_map(entries: Iterable[MapEntry], names: Sequence[str]) -> str:
    """The human map: every extent with the file its bytes come from.

    ``names[d]`` is the file of depth ``d`` (the image's raw file, then the backing file);
    deeper layers are named by their depth. A range that file holds as a hole says so.
    """
    return "\n".join(iter_render_map(entries, names))


def iter_render_map(entries: Iterable[MapEntry], names: Sequence[str]) -> Iterator[str]:
    """:func:`render_map`, one line at a time (the header line first)."""
    yield f"{'Offset':<18}{'Length':<18}{'Depth':<7}Where"
    for e in entries:
        depth = int(e["depth"])
        if not e["present"]:
            where = "zeros (no layer holds data)"
        elif depth < len(names):
            where = ("image file " if depth == 0 else "backing file ") + names[depth]
        else:
            where = f"backing file at depth {depth}"
        if e["present"] and not e["data"]:
            where += " (a hole: zeros)"
        yield f"{e['start']:<#18x}{e['length']:<#18x}{depth:<7}{where}"
