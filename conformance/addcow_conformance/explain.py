"""``addcow-check --explain RULE-ID``: everything the kit knows about one rule, offline.

A finding names a rule and links to its clause, but the link needs a network (or a local build)
and the clause alone does not say where the bytes are or how to repair them. This page is
assembled from what the installed package carries, so it answers on any machine: the rule's
text, level and reader duty (``addcow_ref/format/rules.json``), the header fields and byte
ranges that hold it (the field tables of :mod:`addcow_ref.format.layout`), a repair (one
sentence per file-testable rule in ``fixes.toml``; rules that bind readers or writers get one
derived from who they bind) and the vectors that obey and break it (the default suite's
manifest, :mod:`addcow_conformance.packaged`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import textwrap
import tomllib
from functools import cache
from importlib import resources

from addcow_conformance.harness.manifest import ManifestError, Vector, load_manifest
from addcow_conformance.packaged import SuiteNotFound, default_vectors_dir
from addcow_ref.format.layout import FieldInfo, field_table
from addcow_ref.format.rules import Rule, all_rules, get_rule, rule_url
from addcow_ref.format.schema import HEADER_V1, HEADER_V2

__all__ = ["FieldSpan", "UnknownRule", "explain", "field_spans", "fix_of", "fix_sentences",
           "plain", "resolve_rule_id"]

_WIDTH = 79
_LABEL = 13  # "Reader duty: " and the other labels, padded to one column

#: What a reader does with a file that breaks the rule, in the words of the spec's rule boxes.
_READER_WORDS = {"refuse": "a reader refuses a file that breaks it",
                 "ignore": "a reader ignores the breach and reads the file",
                 "either": "a reader may refuse the file or ignore the breach"}

#: The repair for rules no file can break, by whom they bind.
_NOT_A_FILE_FIX = {
    "reader": "No file breaks this rule: it binds readers. Fix the implementation so it does "
              "what the clause says; the harness (addcow-conformance run) shows where it does "
              "not, on the vectors below.",
    "writer": "No file breaks this rule by itself: it binds writers. Fix the writer so it does "
              "what the clause says; the harness (addcow-conformance run) checks the files "
              "it writes on the vectors below.",
    "untestable": "Neither a file nor a run can show this rule broken (it concerns ordering "
                  "or durability at a crash); it is met by following the clause in the code "
                  "and checked by review.",
}


class UnknownRule(LookupError):
    """``--explain`` was given an ID the registry does not have; the message is one line."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclasses.dataclass(frozen=True)
class FieldSpan:
    """One header field a rule concerns, in one header version."""

    header: str
    field: FieldInfo

    def describe(self) -> str:
        f = self.field
        last = f.end - 1
        return (f"{f.name} ({self.header} header), bytes {f.offset}-{last} "
                f"(0x{f.offset:04x}-0x{last:04x}, {f.size} bytes, {f.ctype}); "
                f"allowed: {plain(f.constraint)}")


_ROLE = re.compile(r":(?:rule|doc|ref|term):`(?:[^`<]*<)?([^`>]+)>?`")


def plain(text: str) -> str:
    """Spec text as a terminal shows it: reST roles and literals reduced to their words."""
    text = _ROLE.sub(r"\1", text)
    text = re.sub(r"\\ :sup:`([^`]+)`", r"^\1", text)
    return text.replace("``", "")


def resolve_rule_id(text: str) -> Rule:
    """The rule ``text`` names (case-insensitive), or :class:`UnknownRule` with close matches."""
    rules = all_rules()
    wanted = text.strip().upper()
    if wanted in rules:
        return get_rule(wanted)
    close = difflib.get_close_matches(wanted, list(rules), n=3, cutoff=0.6)
    hint = (f"did you mean {', '.join(close)}?" if close
            else "rule IDs look like HDR-MAGIC; the rule index of the spec lists them all")
    raise UnknownRule(f"unknown rule ID {text!r}; {hint}")


def field_spans(rule: Rule) -> list[FieldSpan]:
    """Every header field whose table row cites ``rule``, version 2 first; failing that, the
    field the registry names for it."""
    tables = (("version 2", field_table(HEADER_V2)), ("version 1", field_table(HEADER_V1)))
    spans = [FieldSpan(h, f) for h, table in tables for f in table if rule.id in f.rules]
    if not spans and rule.field is not None:
        spans = [FieldSpan(h, f) for h, table in tables for f in table if f.name == rule.field]
    return spans


@cache
def fix_sentences() -> dict[str, str]:
    """``fixes.toml``: the repair of each file-testable rule, by rule ID."""
    data = tomllib.loads(resources.files(__package__).joinpath("fixes.toml").read_text("utf-8"))
    return {str(k): str(v) for k, v in data.items()}


def fix_of(rule: Rule) -> str:
    """How to repair a file that breaks ``rule``, or what an implementation must do instead."""
    if rule.testability == "file":
        return fix_sentences()[rule.id]
    return _NOT_A_FILE_FIX[rule.testability]


def _vectors() -> tuple[str, tuple[Vector, ...]]:
    """(where the suite is, its vectors); an empty tuple when this install has none."""
    try:
        root = default_vectors_dir()
        return str(root), load_manifest(root).vectors
    except (SuiteNotFound, ManifestError) as e:
        return f"no vectors ({e})", ()


def _plural(n: int) -> str:
    return f"{n} vector" if n == 1 else f"{n} vectors"


def _block(label: str, text: str) -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent=f"{label:<{_LABEL}}",
                         subsequent_indent=" " * _LABEL, break_on_hyphens=False,
                         break_long_words=False) or [label]


def explain(rule_id: str, docs_url: str | None = None) -> str:
    """The ``--explain`` page of ``rule_id``; ``docs_url`` as for
    :func:`addcow_ref.format.rules.docs_base_url`. Raises :class:`UnknownRule`."""
    rule = resolve_rule_id(rule_id)
    status = "" if rule.status == "active" else f", {rule.status}"
    lines = [f"{rule.id}: {rule.level}, severity {rule.severity} (spec {rule.spec_since}"
             f"{status})", ""]
    lines += textwrap.wrap(plain(rule.text), _WIDTH, break_on_hyphens=False)
    lines.append("")
    lines += _block("Applies to:", f"{rule.applies_to}s; testable from "
                    + ("a file alone (addcow-check finds it)" if rule.testability == "file"
                       else f"{rule.testability} behaviour" if rule.testability != "untestable"
                       else "neither a file nor a run"))
    if rule.reader is not None:
        lines += _block("Reader duty:", f"{rule.reader}: {_READER_WORDS[rule.reader]}")
    spans = field_spans(rule)
    for i, span in enumerate(spans):
        lines += _block("Field:" if i == 0 else "", span.describe())
    if not spans:
        lines += _block("Field:", "no single header field (the file as a whole, the bitmap, "
                        "the names or the image's behaviour)")
    lines += _block("Fix:", plain(fix_of(rule)))
    where, vectors = _vectors()
    broken = [v.id for v in vectors if rule.id in v.violates]
    obeyed = [v.id for v in vectors if rule.id in v.exercises and rule.id not in v.violates]
    lines += _block("Broken by:", f"{_plural(len(broken))}: {', '.join(broken)}" if broken
                    else "no vector")
    lines += _block("Obeyed by:", f"{_plural(len(obeyed))}: {', '.join(obeyed)}" if obeyed
                    else "no vector")
    lines += _block("Vectors in:", where)
    lines += _block("Clause:", rule_url(rule.id, docs_url))
    return "\n".join(lines) + "\n"
