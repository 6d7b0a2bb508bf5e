"""The rule index page and the rule links of the vector coverage page.

``.. addcow-rule-index::`` renders every rule of ``rules.json`` grouped by spec page, in the
order of the spec's table of contents, one table per page: the rule ID (linked), level and
severity, what it applies to, how it is tested, the section of the page that holds it, and the
whole clause with its inline markup rendered (the registry keeps reStructuredText, so a cut or
unparsed title would show raw ````backing_format````).

The section of a rule is only known once every page is read, so the table holds a placeholder
that ``doctree-resolved`` replaces with a link to the section.

On the coverage page, rule IDs inside the vectors' descriptions become links to their clauses:
the page is generated from the manifest as plain text, and the registry says which words are
rule IDs.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from addcow_spec import load_registry, rule_xref
from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

#: Level and severity share a cell, as do "applies to" and testability (one above the other):
#: seven columns did not fit furo's content column at 1280 px.
_COLUMNS = (("Rule", 22), ("Level", 8), ("Applies to / testability", 12), ("Section", 16),
            ("Clause", 42))


class rule_section(nodes.Inline, nodes.Element):
    """Placeholder for the section that holds the rule at ``anchor`` on ``page`` (lower case, as
    docutils names its node classes)."""


def spec_order(srcdir: Path) -> list[str]:
    """Docnames of the spec pages in the order of ``spec/index.rst``'s toctree."""
    index = srcdir / "spec" / "index.rst"
    if not index.is_file():
        return []
    order, inside = [], False
    for line in index.read_text(encoding="utf-8").splitlines():
        if line.startswith(".. toctree::"):
            inside = True
        elif inside and line.startswith("   ") and not line.strip().startswith(":"):
            order.append(f"spec/{line.strip()}")
        elif inside and line.strip() and not line.startswith(" "):
            inside = False
    return order


def page_title(srcdir: Path, page: str) -> str:
    """The first heading of a page's source, as its section in the index is named."""
    lines = (srcdir / f"{page}.rst").read_text(encoding="utf-8").splitlines()
    for first, second in itertools.pairwise(lines):
        if first.strip() and second.strip() and set(second.strip()) <= set("=-~#*^"):
            return first.strip()
    return page


_DOC_ROLE = re.compile(r":doc:`(?P<label>[^`<]*?<)?(?P<target>[^`>/][^`>]*)(?P<close>>?)`")


def absolute_docs(text: str, page: str) -> str:
    """Relative ``:doc:`` targets of a clause, made absolute: the clause was written on ``page``
    (``:doc:`legacy``` on ``spec/header``) but is parsed again on the index page."""
    folder = page.rpartition("/")[0]

    def fix(m: re.Match[str]) -> str:
        return f":doc:`{m['label'] or ''}/{folder}/{m['target']}{m['close']}`"

    return _DOC_ROLE.sub(fix, text) if folder else text


class RuleIndexDirective(SphinxDirective):
    """Every rule of ``rules.json``, one table per spec page."""

    @staticmethod
    def _reader_duty(rule: dict[str, Any]) -> list[nodes.Node]:
        """The reader duty of a file rule (``reader: refuse``), as rules.rst promises."""
        duty = rule.get("reader")
        if not duty:
            return []
        return [nodes.Text(" "),
                nodes.inline(f"reader: {duty}", f"reader: {duty}",
                             classes=["addcow-line", "addcow-reader-duty"])]

    def _table(self, page: str, rules: list[tuple[str, dict[str, Any]]]) -> nodes.table:
        table = nodes.table(classes=["addcow-rule-index"])
        table["ids"].append("addcow-rule-index-" + page.replace("/", "-"))
        group = nodes.tgroup(cols=len(_COLUMNS))
        table += group
        for _, width in _COLUMNS:
            group += nodes.colspec(colwidth=width)
        thead = nodes.thead()
        head_row = nodes.row()
        for title, _ in _COLUMNS:
            head_row += nodes.entry("", nodes.paragraph(title, title))
        thead += head_row
        group += thead
        body = nodes.tbody()
        for rule_id, rule in rules:
            clause, messages = self.state.inline_text(absolute_docs(rule["text"], page),
                                                      self.lineno)
            testability = rule["testability"] + (", unbreakable" if rule["unbreakable"] else "")
            if rule.get("reader"):  # the reader duty of a file rule (spec/conventions.rst)
                testability += f"; reader: {rule['reader']}"
            cells: list[list[nodes.Node]] = [
                [rule_xref(rule_id, self.env.docname)],
                [nodes.inline(rule["level"], rule["level"],
                              classes=["addcow-line", f"addcow-level-{rule['level'].lower()}"]),
                 nodes.Text(" "),
                 nodes.inline(rule["severity"], rule["severity"], classes=["addcow-line"])],
                [nodes.inline(rule["applies_to"], rule["applies_to"], classes=["addcow-line"]),
                 nodes.Text(" "),
                 nodes.inline(testability, testability, classes=["addcow-line"]),
                 *self._reader_duty(rule)],
                [rule_section(page=rule["page"], anchor=rule["anchor"])],
                [*clause, *messages],
            ]
            row = nodes.row(classes=[f"addcow-status-{rule['status']}"])
            for (name, _), cell in zip(_COLUMNS, cells, strict=True):
                entry = nodes.entry(classes=[f"addcow-col-{name.split()[0].lower()}"])
                para = nodes.paragraph()
                para.extend(cell)
                entry += para
                row += entry
            body += row
        group += body
        return table

    def run(self) -> list[nodes.Node]:
        srcdir = Path(self.env.srcdir)
        by_page: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for rule_id, rule in sorted(load_registry().items()):
            by_page.setdefault(rule["page"], []).append((rule_id, rule))
        order = spec_order(srcdir)
        pages = sorted(by_page, key=lambda p: (order.index(p) if p in order else len(order), p))
        out: list[nodes.Node] = []
        for page in pages:
            self.env.note_dependency(str(srcdir / f"{page}.rst"))
            title = page_title(srcdir, page)
            section = nodes.section(ids=["rules-" + page.replace("/", "-")])
            section += nodes.title(title, title)
            count = len(by_page[page])
            para = nodes.paragraph()
            para += nodes.Text(f"{count} rule{'s' if count != 1 else ''} on the page ")
            ref = addnodes.pending_xref("", refdomain="std", reftype="doc",
                                        reftarget="/" + page, refexplicit=True, refwarn=True,
                                        refdoc=self.env.docname)
            ref += nodes.inline(title, title)
            para += ref
            para += nodes.Text(".")
            section += para
            section += self._table(page, by_page[page])
            out.append(section)
        return out


def _resolve_sections(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Replace each :class:`rule_section` with a link to the section that holds the rule."""
    trees: dict[str, nodes.document] = {}
    for node in list(doctree.findall(rule_section)):
        page, anchor = node["page"], node["anchor"]
        if page not in trees:
            trees[page] = app.env.get_doctree(page)
        target = next((n for n in trees[page].findall(nodes.Element) if anchor in n["ids"]), None)
        section = target
        while section is not None and not isinstance(section, nodes.section):
            section = section.parent
        if section is None or not section["ids"]:
            node.replace_self(nodes.Text("—"))
            continue
        title = section[0].astext()
        uri = app.builder.get_relative_uri(docname, page) + "#" + section["ids"][0]
        node.replace_self(nodes.reference("", title, internal=True, refuri=uri))


_SKIP = (nodes.literal, nodes.reference, nodes.literal_block, nodes.title)


def _link_rule_ids(app: Sphinx, doctree: nodes.document) -> None:
    """On the coverage page, turn each rule ID in running text into a link to its clause."""
    docname = app.env.docname
    if docname != app.config.addcow_coverage_doc:
        return
    ids = sorted(load_registry(), key=len, reverse=True)
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, ids)) + r")(?![\w-])")
    for text in list(doctree.findall(nodes.Text)):
        parent = text.parent
        if parent is None or any(isinstance(a, _SKIP) for a in _ancestors(text)):
            continue
        parts = pattern.split(str(text))
        if len(parts) == 1:
            continue
        new: list[nodes.Node] = []
        for i, part in enumerate(parts):
            if i % 2:
                new.append(rule_xref(part, docname))
            elif part:
                new.append(nodes.Text(part))
        parent.replace(text, new)


def _ancestors(node: nodes.Node) -> list[nodes.Node]:
    out = []
    while node.parent is not None:
        node = node.parent
        out.append(node)
    return out


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_node(rule_section)
    app.add_directive("addcow-rule-index", RuleIndexDirective)
    app.connect("doctree-resolved", _resolve_sections)
    app.connect("doctree-read", _link_rule_ids)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
