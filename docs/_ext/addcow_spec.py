"""Sphinx extension that renders the add-cow spec from its two sources of truth.

* ``.. rule:: ID`` renders a normative clause with a stable anchor ``rule-<id lowercase>``
  derived from the ID (never from a section number), and fails the build when the directive
  disagrees with ``addcow_ref/format/rules.json``: the registry the checker and the vectors import
  must be
  the text the reader sees.
* ``.. addcow-fields:: addcow_ref.format.schema.HEADER_V2`` renders the field table and a
  byte-layout
  SVG from :func:`addcow_ref.format.layout.field_table`, so the spec never holds a second copy of
  the
  layout.
* ``.. addcow-rule-index::`` renders the table of every rule from ``rules.json``.
* ``:rule:`HDR-MAGIC``` links to a rule's anchor; an unknown ID is a build warning.
* Each rule box ends with "Tested by": the vectors of ``vectors/manifest.json`` that obey the
  rule (valid vectors exercising it) and those that break it, read at build time and linked to
  their rows on the coverage page, so the clause and its evidence are seen together.
* ``:vector-target:`area/slug``` marks a vector's row on the coverage page (anchor
  ``vector-area--slug``); ``:vector:`area/slug``` links to it, and an unknown id is a build
  warning.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective, SphinxRole

import addcow_ref
from addcow_ref.format.layout import FieldInfo, field_table
from addcow_ref.format.rulesource import anchor_for

logger = logging.getLogger(__name__)

_LEVELS = ("MUST", "SHOULD")
_SEVERITIES = ("error", "warning", "info")
_APPLIES = ("file", "reader", "writer")
_TESTABILITY = ("file", "reader", "writer", "untestable")


def _exact_choice(values: Sequence[str]) -> Any:
    """Like ``directives.choice`` but case-sensitive: ``must`` is not the RFC 2119 ``MUST``."""

    def convert(argument: str | None) -> str:
        value = (argument or "").strip()
        if value not in values:
            raise ValueError(f"{value!r} is not one of {', '.join(values)}")
        return value

    return convert


def load_registry() -> dict[str, dict[str, Any]]:
    """Read ``rules.json`` afresh on every call.

    Not cached: an incremental build after ``python -m addcow_ref.format.rulesource`` must compare
    against the regenerated file, not a copy kept from an earlier read.
    """
    text = resources.files("addcow_ref.format").joinpath("rules.json").read_text("utf-8")
    return {r["id"]: r for r in json.loads(text)["rules"]}


def vector_anchor(vector_id: str) -> str:
    """``header/magic-last-byte-fe`` -> ``vector-header--magic-last-byte-fe``: id segments never
    hold ``--``, so distinct ids get distinct anchors."""
    return "vector-" + vector_id.replace("/", "--")


def manifest_path(configured: str) -> Path:
    """The vectors manifest: ``addcow_vectors_manifest`` if set, else the checkout's own."""
    if configured:
        return Path(configured)
    return Path(addcow_ref.__file__).resolve().parents[1] / "vectors" / "manifest.json"


_TESTED_BY: dict[tuple[str, int], dict[str, tuple[list[str], list[str]]]] = {}


def tested_by(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Rule ID -> (valid vectors that exercise it, vectors that break it), ids sorted.

    Cached per file and modification time: read once per build, re-read after a regeneration.
    """
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _TESTED_BY:
        manifest = json.loads(path.read_text("utf-8"))
        table: dict[str, tuple[list[str], list[str]]] = {}
        for v in manifest["vectors"]:
            if v["result"] == "valid":
                for rule in v["exercises"]:
                    table.setdefault(rule, ([], []))[0].append(v["id"])
            for rule in v["violates"]:
                table.setdefault(rule, ([], []))[1].append(v["id"])
        _TESTED_BY.clear()
        _TESTED_BY[key] = {r: (sorted(o), sorted(b)) for r, (o, b) in table.items()}
    return _TESTED_BY[key]


def _vector_xref(vector_id: str, docname: str) -> addnodes.pending_xref:
    ref = addnodes.pending_xref(
        "", refdomain="std", reftype="ref", reftarget=vector_anchor(vector_id),
        refexplicit=True, refwarn=True, refdoc=docname,
    )
    ref += nodes.literal(vector_id, vector_id, classes=["addcow-vector-ref"])
    return ref


def _normalize(lines: Sequence[str]) -> str:
    """The rule text as ``rulesource`` stores it: whitespace runs folded to one space."""
    return " ".join(" ".join(line.strip() for line in lines).split())


def _rule_xref(rule_id: str, docname: str) -> addnodes.pending_xref:
    """A link to a rule's anchor through the std domain, so a missing rule warns at build time."""
    ref = addnodes.pending_xref(
        "", refdomain="std", reftype="ref", reftarget=anchor_for(rule_id),
        refexplicit=True, refwarn=True, refdoc=docname,
    )
    ref += nodes.literal(rule_id, rule_id, classes=["addcow-rule-ref"])
    return ref


def _seen(env: BuildEnvironment) -> dict[str, str]:
    """Rule ID -> docname of every ``rule`` directive read so far (kept on the environment)."""
    if not hasattr(env, "addcow_rules_seen"):
        env.addcow_rules_seen = {}  # type: ignore[attr-defined]
    seen: dict[str, str] = env.addcow_rules_seen  # type: ignore[attr-defined]
    return seen


class RuleDirective(SphinxDirective):
    """One normative clause; its options must equal the registry's entry."""

    required_arguments = 1
    has_content = True
    option_spec = {  # noqa: RUF012 - docutils reads this class attribute
        "level": _exact_choice(_LEVELS),
        "severity": _exact_choice(_SEVERITIES),
        "applies-to": _exact_choice(_APPLIES),
        "testability": _exact_choice(_TESTABILITY),
        "field": directives.unchanged,
        "unbreakable": directives.flag,
        "reason": directives.unchanged,
        "since": directives.unchanged,
        "retired": directives.flag,
    }

    def _disagreements(self, rule_id: str, entry: dict[str, Any] | None) -> list[str]:
        if entry is None:
            return ["it is not in rules.json"]
        opts = self.options
        pairs: list[tuple[str, object, object]] = [
            (":level:", opts.get("level"), entry["level"]),
            (":severity:", opts.get("severity"), entry["severity"]),
            (":applies-to:", opts.get("applies-to"), entry["applies_to"]),
            (":testability:", opts.get("testability"), entry["testability"]),
            (":field:", opts.get("field") or None, entry["field"]),
            (":unbreakable:", "unbreakable" in opts, entry["unbreakable"]),
            (":reason:", (opts.get("reason") or "").strip() or None, entry["reason"]),
            (":retired:", "retired" in opts, entry["status"] == "retired"),
            ("page", self.env.docname, entry["page"]),
            ("text", _normalize(self.content), entry["text"]),
        ]
        if "since" in opts:
            pairs.append((":since:", opts["since"].strip(), entry["spec_since"]))
        return [f"{what} is {mine!r} here but {theirs!r} in rules.json"
                for what, mine, theirs in pairs if mine != theirs]

    def run(self) -> list[nodes.Node]:
        rule_id = self.arguments[0]
        problems = self._disagreements(rule_id, load_registry().get(rule_id))
        if problems:
            raise self.error(
                f"rule {rule_id} disagrees with addcow_ref/format/rules.json: "
                f"{'; '.join(problems)}. "
                "Regenerate it with `python -m addcow_ref.format.rulesource`.")
        seen = _seen(self.env)
        if seen.get(rule_id, self.env.docname) != self.env.docname:
            raise self.error(f"rule {rule_id} is also declared in {seen[rule_id]}")
        seen[rule_id] = self.env.docname

        anchor = anchor_for(rule_id)
        level, severity = self.options["level"], self.options["severity"]
        box = nodes.container(classes=[
            "addcow-rule", f"addcow-level-{level.lower()}", f"addcow-severity-{severity}"])
        box["ids"].append(anchor)
        self.set_source_info(box)
        self.env.get_domain("std").note_hyperlink_target(  # type: ignore[attr-defined]
            anchor, self.env.docname, anchor, rule_id)

        head = nodes.paragraph(classes=["addcow-rule-head"])
        link = nodes.reference("", "", internal=True, refid=anchor, classes=["addcow-rule-id"])
        link += nodes.literal(rule_id, rule_id)
        head += link
        for text, cls in ((level, f"level-{level.lower()}"), (severity, f"severity-{severity}")):
            head += nodes.Text(" ")
            head += nodes.inline(text, text, classes=["addcow-badge", f"addcow-badge-{cls}"])
        meta = (f"applies to: {self.options['applies-to']}; "
                f"testability: {self.options['testability']}")
        if "field" in self.options:
            meta += f"; field: {self.options['field']}"
        if "retired" in self.options:
            meta += "; retired"
        head += nodes.Text(" ")
        head += nodes.inline(meta, meta, classes=["addcow-rule-meta"])
        box += head
        box += self.parse_content_to_nodes()
        if self.options.get("reason"):
            reason = "Why untestable: " + self.options["reason"]
            box += nodes.paragraph(reason, reason, classes=["addcow-rule-reason"])
        evidence = self._tested_by(rule_id)
        if evidence is not None:
            box += evidence
        return [box]

    def _tested_by(self, rule_id: str) -> nodes.paragraph | None:
        """The "Tested by" paragraph, from the vectors manifest if there is one."""
        path = manifest_path(self.config.addcow_vectors_manifest)
        if not path.is_file():
            return None
        self.env.note_dependency(str(path))
        obeys, breaks = tested_by(path).get(rule_id, ([], []))
        linked = self.config.addcow_coverage_doc in self.env.found_docs
        para = nodes.paragraph(classes=["addcow-tested-by"])
        para += nodes.strong("Tested by:", "Tested by:")
        if "unbreakable" in self.options:
            none_broken = "none (a file cannot break it)"
        elif self.options["testability"] == "untestable":
            none_broken = "none (untestable)"
        else:
            none_broken = "no vector"
        for label, ids, cls, empty in (("obeyed by", obeys, "addcow-obeyed-by", "no vector"),
                                       ("broken by", breaks, "addcow-broken-by", none_broken)):
            para += nodes.Text(f" {label} " if cls == "addcow-obeyed-by" else f"; {label} ")
            span = nodes.inline(classes=[cls])
            for i, vid in enumerate(ids):
                if i:
                    span += nodes.Text(", ")
                span += (_vector_xref(vid, self.env.docname) if linked
                         else nodes.literal(vid, vid, classes=["addcow-vector-ref"]))
            if not ids:
                span += nodes.Text(empty)
            para += span
        para += nodes.Text(".")
        return para


class RuleRole(SphinxRole):
    """``:rule:`HDR-MAGIC``` -> a link to the clause."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        return [_rule_xref(self.text.strip(), self.env.docname)], []


class VectorTargetRole(SphinxRole):
    """``:vector-target:`header/base``` -> the id, as the anchor ``vector-header--base``."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        vector_id = self.text.strip()
        anchor = vector_anchor(vector_id)
        node = nodes.literal(vector_id, vector_id, ids=[anchor], classes=["addcow-vector"])
        self.env.get_domain("std").note_hyperlink_target(  # type: ignore[attr-defined]
            anchor, self.env.docname, anchor, vector_id)
        return [node], []


class VectorRole(SphinxRole):
    """``:vector:`header/base``` -> a link to the vector's row on the coverage page."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        return [_vector_xref(self.text.strip(), self.env.docname)], []


def _import_struct(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@dataclasses.dataclass(frozen=True)
class _Segment:
    field: int
    start: int  # byte offset inside the struct
    end: int


_PALETTE = ("#dbeafe", "#dcfce7", "#fef3c7", "#fce7f3", "#e0e7ff", "#ccfbf1", "#ffedd5")
_RESERVED_FILL = "#e5e7eb"


def layout_svg(fields: Sequence[FieldInfo], title: str, bytes_per_row: int = 16) -> str:
    """A byte-layout diagram of ``fields``: one row per ``bytes_per_row`` bytes.

    Rows that lie wholly inside one field (the middle of a long name buffer) collapse into a
    single "..." row, so a 2560-byte v1 header stays as readable as the 128-byte v2 one.
    """
    cell, row_h, left, top = 40, 30, 64, 22
    total = fields[-1].offset + fields[-1].size if fields else 0
    rows: list[list[_Segment]] = []
    for row_start in range(0, total, bytes_per_row):
        row_end = min(row_start + bytes_per_row, total)
        segs = [_Segment(i, max(f.offset, row_start), min(f.offset + f.size, row_end))
                for i, f in enumerate(fields)
                if f.offset < row_end and f.offset + f.size > row_start]
        rows.append(segs)

    def whole(i: int) -> int | None:
        """The field that covers all of row ``i``, if one does."""
        if not 0 <= i < len(rows) or len(rows[i]) != 1:
            return None
        seg = rows[i][0]
        return seg.field if seg.end - seg.start == bytes_per_row else None

    # Each entry: a list of segments to draw, or (first, last) row numbers of a collapsed run.
    lines: list[list[_Segment] | tuple[int, int]] = []
    for i, segs in enumerate(rows):
        f = whole(i)
        interior = f is not None and whole(i - 1) == f and whole(i + 1) == f
        if interior:
            prev = lines[-1] if lines else None
            if isinstance(prev, tuple):
                lines[-1] = (prev[0], i)
            else:
                lines.append((i, i))
        else:
            lines.append(segs)

    width = left + cell * bytes_per_row + 2
    height = top + row_h * len(lines) + 2
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="addcow-layout" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{html.escape(title)}">',
        f"<title>{html.escape(title)}</title>",
        '<g font-family="monospace" font-size="11" text-anchor="middle" fill="#111827">',
    ]
    for col in range(bytes_per_row):
        out.append(f'<text x="{left + col * cell + cell / 2}" y="{top - 8}" fill="#6b7280">'
                   f"+{col:x}</text>")
    for n, line in enumerate(lines):
        y = top + n * row_h
        if isinstance(line, tuple):
            first, last = line
            label = (f"... {fields[rows[first][0].field].name} continues: "
                     f"bytes 0x{first * bytes_per_row:x}-0x{(last + 1) * bytes_per_row - 1:x} ...")
            out.append(f'<rect x="{left}" y="{y}" width="{cell * bytes_per_row}" height="{row_h}" '
                       f'fill="#f9fafb" stroke="#9ca3af" stroke-dasharray="4 3"/>')
            out.append(f'<text x="{left + cell * bytes_per_row / 2}" y="{y + row_h / 2 + 4}" '
                       f'fill="#6b7280">{html.escape(label)}</text>')
            continue
        row_start = line[0].start - line[0].start % bytes_per_row if line else 0
        out.append(f'<text x="{left - 6}" y="{y + row_h / 2 + 4}" text-anchor="end" '
                   f'fill="#6b7280">0x{row_start:04x}</text>')
        for seg in line:
            info = fields[seg.field]
            x = left + (seg.start - row_start) * cell
            w = (seg.end - seg.start) * cell
            fill = (_RESERVED_FILL if info.name.startswith("reserved")
                    else _PALETTE[seg.field % len(_PALETTE)])
            tip = f"{info.name}: offset {info.offset}, {info.size} bytes, {info.ctype}"
            name = info.name
            max_chars = max(int(w / 7) - 1, 0)
            if len(name) > max_chars:
                name = name[: max(max_chars - 1, 0)] + "~" if max_chars >= 3 else ""
            out.append(f'<g data-field="{html.escape(info.name)}"><title>{html.escape(tip)}</title>'
                       f'<rect x="{x}" y="{y}" width="{w}" height="{row_h}" fill="{fill}" '
                       f'stroke="#374151"/>')
            if name:
                out.append(f'<text x="{x + w / 2}" y="{y + row_h / 2 + 4}">'
                           f"{html.escape(name)}</text>")
            out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out)


class FieldsDirective(SphinxDirective):
    """The field table and byte-layout diagram of one schema struct."""

    required_arguments = 1
    option_spec = {"bytes-per-row": directives.positive_int}  # noqa: RUF012

    _COLUMNS = (("Offset", 8), ("Size", 6), ("Type", 10), ("Field", 18),
                ("Description", 34), ("Constraint", 22), ("Rules", 18))

    def _inline(self, text: str) -> list[nodes.Node]:
        parsed, messages = self.state.inline_text(text, self.lineno)
        return [*parsed, *messages]

    def _row(self, cells: Sequence[Sequence[nodes.Node] | str], classes: Sequence[str],
             head: bool = False) -> nodes.row:
        row = nodes.row()
        for (name, _), content, cls in zip(self._COLUMNS, cells, classes, strict=True):
            entry = nodes.entry(classes=[f"addcow-col-{name.lower()}", *([cls] if cls else [])])
            para = nodes.paragraph()
            if isinstance(content, str):
                para += nodes.Text(content)
            else:
                para.extend(content)
            entry += para
            row += entry
        return row

    def run(self) -> list[nodes.Node]:
        path = self.arguments[0]
        try:
            struct = _import_struct(path)
            fields = field_table(struct)
        except (ImportError, AttributeError, TypeError, AssertionError) as e:
            raise self.error(f"cannot read the field table of {path}: {e}") from e
        name = path.rpartition(".")[2]
        slug = name.lower().replace("_", "-")
        total = sum(f.size for f in fields)

        title = f"Byte layout of {name} ({total} bytes), generated from {path}"
        figure = nodes.figure(classes=["addcow-layout-figure"])
        figure += nodes.raw("", layout_svg(fields, title, self.options.get("bytes-per-row", 16)),
                            format="html")
        caption = f"Byte layout of {name} ({total} bytes)."
        figure += nodes.caption(caption, caption)

        table = nodes.table(classes=["addcow-fields"])
        table["ids"].append(f"fields-{slug}")
        table += nodes.title(f"{name} fields", f"{name} fields")
        group = nodes.tgroup(cols=len(self._COLUMNS))
        table += group
        for _, width in self._COLUMNS:
            group += nodes.colspec(colwidth=width)
        thead = nodes.thead()
        thead += self._row([c for c, _ in self._COLUMNS], [""] * len(self._COLUMNS), head=True)
        group += thead
        body = nodes.tbody()
        for info in fields:
            rules: list[nodes.Node] = []
            for i, rule_id in enumerate(info.rules):
                if i:
                    rules.append(nodes.Text(", "))
                rules.append(_rule_xref(rule_id, self.env.docname))
            field_name = nodes.literal(info.name, info.name)
            row = self._row(
                [str(info.offset), str(info.size), [nodes.literal(info.ctype, info.ctype)],
                 [field_name], self._inline(info.doc), self._inline(info.constraint), rules],
                [""] * len(self._COLUMNS))
            row["ids"].append(f"field-{slug}-{info.name.replace('_', '-')}")
            body += row
        group += body
        return [figure, table]


class RuleIndexDirective(SphinxDirective):
    """Every rule of ``rules.json``: ID (linked), level, severity, testability, clause page."""

    def run(self) -> list[nodes.Node]:
        columns = (("Rule", 22), ("Level", 8), ("Severity", 8), ("Applies to", 8),
                   ("Testability", 10), ("Clause", 44))
        table = nodes.table(classes=["addcow-rule-index"])
        table["ids"].append("addcow-rule-index")
        group = nodes.tgroup(cols=len(columns))
        table += group
        for _, width in columns:
            group += nodes.colspec(colwidth=width)
        thead = nodes.thead()
        head_row = nodes.row()
        for title, _ in columns:
            head_row += nodes.entry("", nodes.paragraph(title, title))
        thead += head_row
        group += thead
        body = nodes.tbody()
        for rule_id, rule in sorted(load_registry().items()):
            row = nodes.row(classes=[f"addcow-status-{rule['status']}"])
            cells: list[list[nodes.Node]] = [
                [_rule_xref(rule_id, self.env.docname)],
                [nodes.Text(rule["level"])],
                [nodes.Text(rule["severity"])],
                [nodes.Text(rule["applies_to"])],
                [nodes.Text(rule["testability"]
                            + (" (unbreakable)" if rule["unbreakable"] else ""))],
                [nodes.Text(rule["title"])],
            ]
            for cell in cells:
                entry = nodes.entry()
                para = nodes.paragraph()
                para.extend(cell)
                entry += para
                row += entry
            body += row
        group += body
        return [table]


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    seen = _seen(env)
    for rule_id in [r for r, d in seen.items() if d == docname]:
        del seen[rule_id]


def _merge(app: Sphinx, env: BuildEnvironment, docnames: set[str],
           other: BuildEnvironment) -> None:
    _seen(env).update(_seen(other))


def _check_all_rendered(app: Sphinx, env: BuildEnvironment) -> None:
    """Every registry entry must be rendered somewhere, or its clause link would dangle."""
    seen = _seen(env)
    for rule_id, rule in sorted(load_registry().items()):
        if rule_id not in seen:
            logger.warning("rule %s is in addcow_ref/format/rules.json (page %s) but no `rule` "
                           "directive renders it", rule_id, rule["page"], type="addcow")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("rule", RuleDirective)
    app.add_directive("addcow-fields", FieldsDirective)
    app.add_directive("addcow-rule-index", RuleIndexDirective)
    app.add_role("rule", RuleRole())
    app.add_role("vector", VectorRole())
    app.add_role("vector-target", VectorTargetRole())
    app.add_config_value("addcow_vectors_manifest", "", "env", [str])
    app.add_config_value("addcow_coverage_doc", "guides/vector-coverage", "env", [str])
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-check-consistency", _check_all_rendered)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 2}
