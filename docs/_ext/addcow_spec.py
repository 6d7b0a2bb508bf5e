"""Sphinx extension that renders the add-cow spec from its two sources of truth.

* ``.. rule:: ID`` renders a normative clause with a stable anchor ``rule-<id lowercase>``
  derived from the ID (never from a section number), and fails the build when the directive
  disagrees with ``addcow_ref/format/rules.json``: the registry the checker and the vectors
  import must be the text the reader sees. The ID is the box's most prominent text (readers
  arrive from a checker message that names it); level and severity are separate badges.
* ``.. addcow-fields::`` (field table and byte-layout SVG) lives in ``addcow_layout``, and
  ``.. addcow-rule-index::`` in ``addcow_ruleindex``; :func:`setup` loads both.
* ``:rule:`HDR-MAGIC``` links to a rule's anchor; an unknown ID is a build warning.
* Each rule box ends with "Tested by": the vectors of ``vectors/manifest.json`` that obey the
  rule (valid vectors exercising it) and those that break it, read at build time and linked to
  their rows on the coverage page, so the clause and its evidence are seen together.
* ``:vector-target:`area/slug``` marks a vector's row on the coverage page (anchor
  ``vector-area--slug``); ``:vector:`area/slug``` links to it, and an unknown id is a build
  warning.
"""

from __future__ import annotations

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
from addcow_ref.format.rulesource import anchor_for

logger = logging.getLogger(__name__)

_LEVELS = ("MUST", "SHOULD", "MAY")
_READER_DUTIES = ("refuse", "ignore", "either")
#: How the box words each ``:reader:`` duty (what a reader does with a file breaking the rule).
_READER_WORDS = {"refuse": "a reader refuses a breaking file",
                 "ignore": "a reader ignores the breach",
                 "either": "a reader may refuse or ignore a breach"}
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


def _ref_in(cls: str, target: str, text: str, docname: str) -> nodes.inline:
    """A std-domain link to ``target`` wrapped in a span of class ``cls``.

    The std domain renders an explicit reference as a new ``<span class="std std-ref">``,
    dropping the classes of the node it was given; the wrapper keeps the class that the style
    sheet needs (IDs must not wrap at a hyphen) and that tests select by.
    """
    ref = addnodes.pending_xref(
        "", refdomain="std", reftype="ref", reftarget=target,
        refexplicit=True, refwarn=True, refdoc=docname,
    )
    ref += nodes.literal(text, text)
    return nodes.inline("", "", ref, classes=[cls])


def _vector_xref(vector_id: str, docname: str) -> nodes.inline:
    return _ref_in("addcow-vector-ref", vector_anchor(vector_id), vector_id, docname)


def _normalize(lines: Sequence[str]) -> str:
    """The rule text as ``rulesource`` stores it: whitespace runs folded to one space."""
    return " ".join(" ".join(line.strip() for line in lines).split())


def rule_xref(rule_id: str, docname: str) -> nodes.inline:
    """A link to a rule's anchor through the std domain, so a missing rule warns at build time."""
    return _ref_in("addcow-rule-ref", anchor_for(rule_id), rule_id, docname)


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
        "reader": _exact_choice(_READER_DUTIES),
        "split-from": directives.unchanged,
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
            (":reader:", opts.get("reader"), entry.get("reader")),
            (":split-from:", (opts.get("split-from") or "").strip() or None,
             entry.get("split_from")),
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
        # Level and severity are different facts (what the spec demands; how the checker
        # reports a breach), so they get different badges, each with its own label.
        badges = nodes.inline(classes=["addcow-badges"])
        badges += nodes.inline(level, level, classes=["addcow-badge",
                                                      f"addcow-badge-level-{level.lower()}"])
        sev = nodes.inline(classes=["addcow-badge", "addcow-badge-severity",
                                    f"addcow-badge-severity-{severity}"])
        sev += nodes.inline("severity", "severity", classes=["addcow-badge-label"])
        sev += nodes.Text(" " + severity)
        badges += sev
        head += nodes.Text(" ")
        head += badges
        meta = (f"applies to: {self.options['applies-to']}; "
                f"testability: {self.options['testability']}")
        if "field" in self.options:
            meta += f"; field: {self.options['field']}"
        if "reader" in self.options:
            meta += f"; {_READER_WORDS[self.options['reader']]}"
        if "split-from" in self.options:
            meta += f"; split from {self.options['split-from'].strip()}"
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
        return [rule_xref(self.text.strip(), self.env.docname)], []


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
    app.add_role("rule", RuleRole())
    app.add_role("vector", VectorRole())
    app.add_role("vector-target", VectorTargetRole())
    app.add_config_value("addcow_vectors_manifest", "", "env", [str])
    app.add_config_value("addcow_coverage_doc", "guides/vector-coverage", "env", [str])
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-check-consistency", _check_all_rendered)
    # The field tables and the rule index live in their own modules (each page kind has its
    # own presentation code); loading them here keeps ``extensions = ['addcow_spec']`` whole.
    app.setup_extension("addcow_layout")
    app.setup_extension("addcow_ruleindex")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 2}
