"""The ``addcow-fields`` directive: a header struct's field table and byte-layout diagram.

Both are generated from :func:`addcow_ref.format.layout.field_table`, so the spec never holds a
second copy of the layout. Presentation choices, each answering what a reader needs:

* offsets show hex and decimal, because ``addcow-check`` prints ``0x0018`` and prose says 24;
* the diagram keeps its natural size inside a horizontally scrollable box: shrunk to a phone's
  width its 11 px labels would be 4 px;
* fill colours stand for the *kind* of field (identification, feature bits, geometry, location
  of another structure, text, reserved) and a legend says so, so the colours carry meaning;
* the diagram draws on its own light card, so it stays legible in the dark theme.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
from collections.abc import Sequence
from typing import Any

from addcow_spec import rule_xref
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from addcow_ref.format.layout import FieldInfo, field_table


@dataclasses.dataclass(frozen=True)
class FieldKind:
    """A class of header field, with its diagram fill and legend text."""

    key: str
    label: str
    fill: str


#: In legend order: six hues far enough apart to tell by eye, each pale enough for the dark
#: label text drawn on it (contrast above 11:1 against #111827).
KINDS = (
    FieldKind("ident", "identification (magic, version)", "#c7d2fe"),
    FieldKind("features", "feature bits", "#fbcfe8"),
    FieldKind("geometry", "disk geometry (size, clusters)", "#bbf7d0"),
    FieldKind("location", "offset or length of another structure", "#fde68a"),
    FieldKind("text", "text buffer (names, formats)", "#a5f3fc"),
    FieldKind("reserved", "reserved, must be zero", "#e5e7eb"),
)
_KIND = {k.key: k for k in KINDS}


def field_kind(info: FieldInfo) -> FieldKind:
    """The kind of a field, from its name and type (the schema has no other classification)."""
    if info.name.startswith("reserved"):
        return _KIND["reserved"]
    if info.name in ("magic", "version"):
        return _KIND["ident"]
    if info.name.endswith("_features"):
        return _KIND["features"]
    if info.name.endswith(("_offset", "_length")):
        return _KIND["location"]
    if info.ctype.startswith("u8["):
        return _KIND["text"]
    return _KIND["geometry"]


@dataclasses.dataclass(frozen=True)
class _Segment:
    field: int
    start: int  # byte offset inside the struct
    end: int


def _rows(fields: Sequence[FieldInfo], bytes_per_row: int
          ) -> tuple[list[list[_Segment]], list[list[_Segment] | tuple[int, int]]]:
    """The segments of each row, and the lines to draw: a row's segments, or (first, last) of a
    run of rows wholly inside one field, which collapses into a single "..." line."""
    total = fields[-1].offset + fields[-1].size if fields else 0
    rows: list[list[_Segment]] = []
    for row_start in range(0, total, bytes_per_row):
        row_end = min(row_start + bytes_per_row, total)
        rows.append([_Segment(i, max(f.offset, row_start), min(f.offset + f.size, row_end))
                     for i, f in enumerate(fields)
                     if f.offset < row_end and f.offset + f.size > row_start])

    def whole(i: int) -> int | None:
        """The field that covers all of row ``i``, if one does."""
        if not 0 <= i < len(rows) or len(rows[i]) != 1:
            return None
        seg = rows[i][0]
        return seg.field if seg.end - seg.start == bytes_per_row else None

    lines: list[list[_Segment] | tuple[int, int]] = []
    for i, segs in enumerate(rows):
        f = whole(i)
        if f is not None and whole(i - 1) == f and whole(i + 1) == f:
            prev = lines[-1] if lines else None
            if isinstance(prev, tuple):
                lines[-1] = (prev[0], i)
            else:
                lines.append((i, i))
        else:
            lines.append(segs)
    return rows, lines


def layout_svg(fields: Sequence[FieldInfo], title: str, bytes_per_row: int = 16) -> str:
    """A byte-layout diagram of ``fields``: one row per ``bytes_per_row`` bytes.

    Rows that lie wholly inside one field (the middle of a long name buffer) collapse into a
    single "..." row, so a 2560-byte v1 header stays as readable as the 128-byte v2 one.
    """
    cell, row_h, left, top = 40, 30, 64, 22
    rows, lines = _rows(fields, bytes_per_row)
    width = left + cell * bytes_per_row + 2
    height = top + row_h * len(lines) + 2
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="addcow-layout" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{html.escape(title)}">',
        f"<title>{html.escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        '<g font-family="monospace" font-size="11" text-anchor="middle" fill="#111827">',
    ]
    for col in range(bytes_per_row):
        out.append(f'<text x="{left + col * cell + cell / 2}" y="{top - 8}" fill="#4b5563">'
                   f"+{col:x}</text>")
    for n, line in enumerate(lines):
        y = top + n * row_h
        if isinstance(line, tuple):
            first, last = line
            label = (f"... {fields[rows[first][0].field].name} continues: "
                     f"bytes 0x{first * bytes_per_row:x}-0x{(last + 1) * bytes_per_row - 1:x} ...")
            out.append(f'<rect x="{left}" y="{y}" width="{cell * bytes_per_row}" height="{row_h}" '
                       f'fill="#f9fafb" stroke="#6b7280" stroke-dasharray="4 3"/>')
            out.append(f'<text x="{left + cell * bytes_per_row / 2}" y="{y + row_h / 2 + 4}" '
                       f'fill="#4b5563">{html.escape(label)}</text>')
            continue
        row_start = line[0].start - line[0].start % bytes_per_row if line else 0
        out.append(f'<text x="{left - 6}" y="{y + row_h / 2 + 4}" text-anchor="end" '
                   f'fill="#4b5563">0x{row_start:04x}</text>')
        for seg in line:
            info = fields[seg.field]
            kind = field_kind(info)
            x = left + (seg.start - row_start) * cell
            w = (seg.end - seg.start) * cell
            tip = (f"{info.name}: offset 0x{info.offset:04x} ({info.offset}), {info.size} bytes, "
                   f"{info.ctype}; {kind.label}")
            name = info.name
            max_chars = max(int(w / 7) - 1, 0)
            if len(name) > max_chars:
                name = name[: max(max_chars - 1, 0)] + "~" if max_chars >= 3 else ""
            out.append(f'<g data-field="{html.escape(info.name)}" data-kind="{kind.key}">'
                       f"<title>{html.escape(tip)}</title>"
                       f'<rect x="{x}" y="{y}" width="{w}" height="{row_h}" fill="{kind.fill}" '
                       f'stroke="#374151"/>')
            if name:
                out.append(f'<text x="{x + w / 2}" y="{y + row_h / 2 + 4}">'
                           f"{html.escape(name)}</text>")
            out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out)


def legend_html(fields: Sequence[FieldInfo]) -> str:
    """The legend of the kinds that ``fields`` use, in :data:`KINDS` order."""
    used = {field_kind(f).key for f in fields}
    items = "".join(
        f'<li data-kind="{k.key}"><span class="addcow-swatch" style="background:{k.fill}">'
        f"</span>{html.escape(k.label)}</li>"
        for k in KINDS if k.key in used)
    return f'<ul class="addcow-legend" aria-label="Colour key">{items}</ul>'


def hex_offset(offset: int) -> str:
    """``24`` -> ``0x0018``, the form ``addcow-check`` prints."""
    return f"0x{offset:04x}"


def _import_struct(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


class FieldsDirective(SphinxDirective):
    """The field table and byte-layout diagram of one schema struct."""

    required_arguments = 1
    option_spec = {"bytes-per-row": directives.positive_int}  # noqa: RUF012

    #: The type sits under the field name: a separate column made the table wider than furo's
    #: content column, clipping the Rules column.
    _COLUMNS = (("Offset", 8), ("Size", 5), ("Field", 20), ("Description", 32),
                ("Constraint", 18), ("Rules", 20))

    def _inline(self, text: str) -> list[nodes.Node]:
        parsed, messages = self.state.inline_text(text, self.lineno)
        return [*parsed, *messages]

    def _row(self, cells: Sequence[Sequence[nodes.Node] | str]) -> nodes.row:
        row = nodes.row()
        for (name, _), content in zip(self._COLUMNS, cells, strict=True):
            entry = nodes.entry(classes=[f"addcow-col-{name.lower()}"])
            para = nodes.paragraph()
            if isinstance(content, str):
                para += nodes.Text(content)
            else:
                para.extend(content)
            entry += para
            row += entry
        return row

    def _field_row(self, info: FieldInfo, slug: str) -> nodes.row:
        rules: list[nodes.Node] = []
        for i, rule_id in enumerate(info.rules):
            if i:
                rules.append(nodes.Text(", "))
            rules.append(rule_xref(rule_id, self.env.docname))
        offset: list[nodes.Node] = [
            nodes.inline(hex_offset(info.offset), hex_offset(info.offset),
                         classes=["addcow-offset-hex"]),
            nodes.Text(" "),
            nodes.inline(str(info.offset), str(info.offset), classes=["addcow-offset-dec"]),
        ]
        field: list[nodes.Node] = [
            nodes.literal(info.name, info.name, classes=["addcow-field-name"]),
            nodes.Text(" "),
            nodes.inline(info.ctype, info.ctype, classes=["addcow-field-type"]),
        ]
        row = self._row([offset, str(info.size), field, self._inline(info.doc),
                         self._inline(info.constraint), rules])
        row["ids"].append(f"field-{slug}-{info.name.replace('_', '-')}")
        return row

    def run(self) -> list[nodes.Node]:
        path = self.arguments[0]
        try:
            fields = field_table(_import_struct(path))
        except (ImportError, AttributeError, TypeError, AssertionError) as e:
            raise self.error(f"cannot read the field table of {path}: {e}") from e
        name = path.rpartition(".")[2]
        slug = name.lower().replace("_", "-")
        total = sum(f.size for f in fields)

        title = f"Byte layout of {name} ({total} bytes), generated from {path}"
        svg = layout_svg(fields, title, self.options.get("bytes-per-row", 16))
        figure = nodes.figure(classes=["addcow-layout-figure"])
        figure += nodes.raw("", f'<div class="addcow-scroll" tabindex="0">{svg}</div>'
                            + legend_html(fields), format="html")
        caption = (f"Byte layout of {name} ({total} bytes); colours stand for the kind of "
                   "field. Hover a field for its offset, size and type.")
        figure += nodes.caption(caption, caption)

        table = nodes.table(classes=["addcow-fields"])
        table["ids"].append(f"fields-{slug}")
        table += nodes.title(f"{name} fields", f"{name} fields")
        group = nodes.tgroup(cols=len(self._COLUMNS))
        table += group
        for _, width in self._COLUMNS:
            group += nodes.colspec(colwidth=width)
        thead = nodes.thead()
        thead += self._row([c for c, _ in self._COLUMNS])
        group += thead
        body = nodes.tbody()
        for info in fields:
            body += self._field_row(info, slug)
        group += body
        return [figure, table]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("addcow-fields", FieldsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
