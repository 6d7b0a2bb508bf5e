"""The ``addcow-hexdump`` directive: an annotated hexdump of a vector's add-cow file.

A field table says where ``bitmap_offset`` lives; a dump of a real file shows it, next to the
bytes ``xxd`` prints for the same file, which is how the qcow2 and ELF documents teach their
layouts. The dump is generated when the site is built, from a committed vector
(``vectors/manifest.json``) and from :func:`addcow_ref.format.layout.field_table`, so it can
neither drift from the vectors nor from the schema::

   .. addcow-hexdump:: header/base

Two tables follow, each 16 bytes per row with a hex offset column and an ASCII column:

* the fixed header, every byte in a span of its field, coloured by the field's kind as in the
  byte-layout diagram (:mod:`addcow_layout`), and each field named once, with its decoded
  value, in the row where it starts;
* the name area and the first bitmap bytes, where the names, the zero rest of the name area
  (collapsed, as ``xxd`` collapses repeated lines) and each bitmap byte's clusters are named.

The tables keep their size inside a horizontally scrollable box, so on a phone they scroll
instead of wrapping a row of bytes.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path
from typing import Any

from addcow_conformance.harness.manifest import ManifestError, load_manifest
from addcow_layout import KINDS, FieldKind, field_kind, hex_offset
from addcow_spec import manifest_path
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from addcow_ref.format.constants import HEADER_LENGTH_V2
from addcow_ref.format.header import bitmap_length_for, cluster_count_for
from addcow_ref.format.layout import decode_field, field_table
from addcow_ref.format.schema import HEADER_V2

__all__ = ["BITMAP_KIND", "DumpPart", "Region", "dump_parts", "render_part"]

BYTES_PER_ROW = 16
#: The bitmap is not a header field, so the diagram's kinds lack it; a hue apart from theirs.
BITMAP_KIND = FieldKind("bitmap", "COW bitmap (bit i: cluster i in the image file)", "#fed7aa")
_KIND = {k.key: k for k in (*KINDS, BITMAP_KIND)}
#: How many bitmap bytes the second table shows: enough to see the bit order.
BITMAP_BYTES_SHOWN = BYTES_PER_ROW


@dataclasses.dataclass(frozen=True)
class Region:
    """A named byte range of the file: a header field, a name, padding or bitmap bytes."""

    start: int
    end: int
    name: str
    kind: FieldKind
    value: str

    @property
    def tip(self) -> str:
        return (f"{self.name}: bytes {hex_offset(self.start)}-{hex_offset(self.end - 1)} "
                f"({self.end - self.start} bytes); {self.kind.label}")


@dataclasses.dataclass(frozen=True)
class DumpPart:
    """One table of the dump: the bytes from ``start`` to ``end`` and their regions, in order.

    Rows wholly inside a zero region are not shown one by one (see :func:`render_part`).
    """

    title: str
    start: int
    end: int
    regions: tuple[Region, ...]


def _field_value(name: str, raw: bytes) -> str:
    value = decode_field(HEADER_V2, name, raw)
    if isinstance(value, int):
        return f"= {value}" if value < 1 << 16 else f"= {value} (0x{value:x})"
    if not value.strip(b"\0"):
        return "= all zero"
    text = value.rstrip(b"\0").decode("ascii", "backslashreplace")
    return f'= "{text}"' + (" + NUL padding" if len(text) < len(value) else "")


def _header_regions(data: bytes) -> tuple[Region, ...]:
    return tuple(Region(f.offset, f.end, f.name, field_kind(f),
                        _field_value(f.name, data[f.offset:f.end]))
                 for f in field_table(HEADER_V2))


def _bitmap_value(byte: int, first_cluster: int, clusters: int) -> str:
    set_bits = [first_cluster + b for b in range(8)
                if byte >> b & 1 and first_cluster + b < clusters]
    where = ("clusters " + ", ".join(map(str, set_bits)) + " in the image file") if set_bits \
        else "no cluster in the image file"
    return f"= 0b{byte:08b}: {where}"


def _names_and_bitmap(data: bytes, values: dict[str, int]) -> DumpPart:
    """The regions from the end of the fixed header to the last bitmap byte shown."""
    header_end = max(values["header_length"], HEADER_LENGTH_V2)
    bitmap_offset = values["bitmap_offset"]
    named: list[Region] = []
    if header_end > HEADER_LENGTH_V2:
        named.append(Region(HEADER_LENGTH_V2, header_end, "header extension",
                            _KIND["reserved"], "fields of a later minor version"))
    for who in ("image", "backing"):
        off, length = values[f"{who}_name_offset"], values[f"{who}_name_length"]
        if length:
            text = data[off:off + length].decode("utf-8", "backslashreplace")
            named.append(Region(off, off + length, f"{who} name", _KIND["text"],
                                f'= "{text}"'))
    named.sort(key=lambda r: r.start)
    regions: list[Region] = []
    pos = header_end
    for r in [*named, Region(bitmap_offset, bitmap_offset, "", _KIND["reserved"], "")]:
        if r.start > pos:
            regions.append(Region(pos, r.start, "name area, rest", _KIND["reserved"],
                                  "= all zero (NAME-AREA-ZERO)"))
        if r.end > r.start:
            regions.append(r)
        pos = max(pos, r.end)
    clusters = cluster_count_for(values["virtual_size"], values["cluster_bits"])
    shown = min(bitmap_length_for(values["virtual_size"], values["cluster_bits"]),
                BITMAP_BYTES_SHOWN, len(data) - bitmap_offset)
    for i in range(shown):
        regions.append(Region(bitmap_offset + i, bitmap_offset + i + 1, f"bitmap byte {i}",
                              BITMAP_KIND, _bitmap_value(data[bitmap_offset + i], 8 * i,
                                                         clusters)))
    return DumpPart("Name area and bitmap", header_end, bitmap_offset + shown, tuple(regions))


def dump_parts(data: bytes) -> tuple[DumpPart, DumpPart]:
    """The two tables of the dump of an add-cow v2 file: fixed header, then names and bitmap."""
    regions = _header_regions(data)
    values = {r.name: int.from_bytes(data[r.start:r.end], "big") for r in regions}
    return (DumpPart("Fixed header", 0, HEADER_LENGTH_V2, regions),
            _names_and_bitmap(data, values))


def _row_starts(part: DumpPart, data: bytes) -> list[int | tuple[int, int]]:
    """Row offsets to show. Two or more zero rows that continue one zero region become
    ``(first, end)``, one "skipped" line, as ``xxd`` prints ``*`` for repeated lines."""
    out: list[int | tuple[int, int]] = []
    for row in range(part.start - part.start % BYTES_PER_ROW, part.end, BYTES_PER_ROW):
        end = row + BYTES_PER_ROW
        skippable = row >= part.start and end <= part.end and not data[row:end].strip(b"\0") \
            and any(r.kind.key == "reserved" and r.start < row and end <= r.end
                    for r in part.regions)
        prev = out[-1] if out else None
        if skippable and isinstance(prev, tuple) and prev[1] == row:
            out[-1] = (prev[0], end)
        else:
            out.append((row, end) if skippable else row)
    return [r[0] if isinstance(r, tuple) and r[1] - r[0] <= BYTES_PER_ROW else r for r in out]


def _span(region: Region, raw: bytes) -> str:
    text = " ".join(f"{b:02x}" for b in raw)
    return (f'<span class="addcow-hx-span" data-field="{html.escape(region.name)}" '
            f'data-kind="{region.kind.key}" style="background:{region.kind.fill}" '
            f'title="{html.escape(region.tip)}">{text}</span>')


def _ascii(raw: bytes) -> str:
    return html.escape("".join(chr(b) if 0x20 <= b < 0x7f else "." for b in raw))


def _label(region: Region) -> str:
    return (f'<span class="addcow-hx-label" data-label="{html.escape(region.name)}">'
            f'<span class="addcow-swatch" style="background:{region.kind.fill}"></span>'
            f"<code>{html.escape(region.name)}</code> {html.escape(region.value)}</span>")


def _row_html(part: DumpPart, data: bytes, row: int) -> str:
    lo, hi = max(row, part.start), min(row + BYTES_PER_ROW, part.end)
    cells: list[str] = ["   " * (lo - row)] if lo > row else []
    labels: list[str] = []
    for r in part.regions:
        s, e = max(r.start, lo), min(r.end, hi)
        if s >= e:
            continue
        cells.append(_span(r, data[s:e]))
        if r.start == s:
            labels.append(_label(r))
    return (f'<tr data-offset="{row}"><td class="addcow-hx-off">{hex_offset(row)}</td>'
            f'<td class="addcow-hx-bytes">{" ".join(cells)}</td>'
            f'<td class="addcow-hx-ascii">{_ascii(data[lo:hi])}</td>'
            f'<td class="addcow-hx-labels">{"".join(labels)}</td></tr>')


def _skip_html(first: int, end: int) -> str:
    return (f'<tr class="addcow-hx-skip" data-skip="{first}-{end}">'
            f'<td class="addcow-hx-off">{hex_offset(first)}</td>'
            f'<td class="addcow-hx-bytes" colspan="2">… {end - first} zero bytes, to '
            f"{hex_offset(end - 1)} …</td>"
            '<td class="addcow-hx-labels"></td></tr>')


def render_part(part: DumpPart, data: bytes, vector: str) -> str:
    """One table of the dump, in its scroll box."""
    rows = [(_skip_html(*r) if isinstance(r, tuple) else _row_html(part, data, r))
            for r in _row_starts(part, data)]
    caption = html.escape(f"{part.title} of {vector}: bytes {hex_offset(part.start)}-"
                          f"{hex_offset(part.end - 1)}")
    return (f'<div class="addcow-scroll" tabindex="0">'
            f'<table class="addcow-hexdump" data-vector="{html.escape(vector)}" '
            f'data-start="{part.start}" data-end="{part.end}"><caption>{caption}</caption>'
            "<thead><tr><th>Offset</th><th>Bytes</th><th>ASCII</th><th>Field</th></tr></thead>"
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _legend(parts: tuple[DumpPart, ...]) -> str:
    used = {r.kind.key for p in parts for r in p.regions}
    items = "".join(
        f'<li data-kind="{k.key}"><span class="addcow-swatch" style="background:{k.fill}">'
        f"</span>{html.escape(k.label)}</li>"
        for k in (*KINDS, BITMAP_KIND) if k.key in used)
    return f'<ul class="addcow-legend" aria-label="Colour key">{items}</ul>'


class HexdumpDirective(SphinxDirective):
    """The annotated dump of one vector's add-cow file (argument: the vector id)."""

    required_arguments = 1

    def _vector_file(self, vector: str) -> tuple[Path, Path]:
        """The vector's add-cow file, and the vectors directory it lies in."""
        manifest = manifest_path(self.config.addcow_vectors_manifest)
        try:
            found = [v for v in load_manifest(manifest.parent).vectors if v.id == vector]
        except ManifestError as e:
            raise self.error(f"addcow-hexdump: {e}") from e
        if not found:
            raise self.error(f"addcow-hexdump: no vector {vector!r} in {manifest}")
        if found[0].spec.split(".")[0] != "2" or found[0].result != "valid":
            raise self.error(f"addcow-hexdump: {vector} is not a valid version 2 vector")
        self.env.note_dependency(str(manifest))
        path = found[0].directory / found[0].entry
        self.env.note_dependency(str(path))
        return path, manifest.parent

    def run(self) -> list[nodes.Node]:
        vector = self.arguments[0]
        path, root = self._vector_file(vector)
        data = path.read_bytes()
        parts = dump_parts(data)
        body = "".join(render_part(p, data, vector) for p in parts)
        figure = nodes.figure(classes=["addcow-hexdump-figure"])
        figure += nodes.raw("", body + _legend(parts), format="html")
        caption = (f"The add-cow file of the vector {vector} ({len(data)} bytes), as "
                   f"xxd shows it, each byte range named and coloured by its kind; generated "
                   f"from vectors/{path.relative_to(root)} when this page was built.")
        figure += nodes.caption(caption, caption)
        return [figure]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("addcow-hexdump", HexdumpDirective)
    app.add_css_file("addcow-hexdump.css")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
