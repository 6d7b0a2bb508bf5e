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
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, NotRequired, TextIO, TypedDict

from addcow_ref.ops.holes import Span

if TYPE_CHECKING:
    from addcow_ref.engine.image import Extent

__all__ = [
    "MapEntry",
    "iter_map_entries",
    "iter_render_map",
    "map_entries",
    "render_map",
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
