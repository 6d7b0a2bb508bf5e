"""``addcow-conformance matrix``: implementations x vectors (and x rules) as one HTML page.

Results files from different implementations are only comparable when they ran the same suite,
so the page states each file's suite version and manifest digest and flags any mismatch with
the manifest it was rendered against. The pruned view collapses vectors on which every
implementation has the same outcome (JSONTestSuite's ``parsing_pruned.html``): the rows left are
the ones where implementations disagree, which is where the interesting bugs are. Each
implementation also gets an anomaly list (x509-limbo's per-implementation pages): everything
that is not a plain pass or a declared skip.

The page is plain, self-contained HTML: no script, no external style, every value escaped.
Vectors link to their manifest entry, shown on the same page; rules link to their clause.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from addcow_conformance.harness.manifest import Manifest
from addcow_conformance.harness.outcomes import OUTCOMES
from addcow_ref.format.rules import all_rules, rule_url

__all__ = [
    "NOT_RUN",
    "Implementation",
    "MatrixError",
    "load_results",
    "render_matrix",
    "vector_anchor",
]

#: The cell of a vector an implementation's results file does not mention.
NOT_RUN = "not-run"

#: Outcomes that are not an anomaly: the implementation did what was expected, or said it
#: does not support what the vector needs.
_ORDINARY = frozenset({"pass", "skip"})


class MatrixError(Exception):
    """A results file cannot be read as harness results."""


@dataclasses.dataclass(frozen=True)
class Implementation:
    """One column: what one results file says about one implementation."""

    label: str
    source: str
    doc: Mapping[str, Any]

    @property
    def outcomes(self) -> dict[str, str]:
        return {v["id"]: v["outcome"] for v in self.doc["vectors"]}

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.label.lower())


def load_results(paths: Sequence[Path]) -> list[Implementation]:
    """Read results files; columns are labelled by implementation name and version, with the
    file name added where two files would otherwise share a label."""
    import jsonschema

    from addcow_conformance.harness.report import results_schema

    validator = jsonschema.Draft202012Validator(results_schema())
    docs: list[tuple[Path, dict[str, Any]]] = []
    for p in paths:
        try:
            doc = json.loads(p.read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise MatrixError(f"{p}: not a harness results document ({e})") from None
        error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
        if error is not None:
            where = "/".join(str(x) for x in error.absolute_path) or "top level"
            raise MatrixError(f"{p}: not a harness results document (at {where}: "
                              f"{error.message})")
        docs.append((p, doc))
    base = [f"{d['implementation']['name']} {d['implementation'].get('version', '')}".strip()
            or p.stem for p, d in docs]
    counts = Counter(base)
    out = []
    for (p, doc), label in zip(docs, base, strict=True):
        out.append(Implementation(label if counts[label] == 1 else f"{label} ({p.name})",
                                  str(p), doc))
    if len({i.label for i in out}) != len(out):
        raise MatrixError("two results files have the same name and implementation")
    return out


def vector_anchor(vector_id: str) -> str:
    """The in-page anchor of a vector's manifest entry (``/`` cannot occur twice, ``--`` never
    occurs in an id segment, so distinct ids get distinct anchors)."""
    return "vector-" + vector_id.replace("/", "--")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _rule_link(rule: str) -> str:
    if rule in all_rules():
        return f'<a class="rule" href="{_e(rule_url(rule))}">{_e(rule)}</a>'
    return f'<span class="rule unknown" title="not in this spec\'s registry">{_e(rule)}</span>'


def _vector_link(vector_id: str) -> str:
    return f'<a class="vector" href="#{_e(vector_anchor(vector_id))}">{_e(vector_id)}</a>'


def _cell(outcome: str, impl: Implementation, extra: str = "") -> str:
    return (f'<td class="outcome outcome-{_e(outcome)}" data-impl="{_e(impl.label)}"'
            f'{extra}>{_e(outcome)}</td>')


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #111827; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #d1d5db; padding: 2px 6px; text-align: left; vertical-align: top; }
thead th { background: #f3f4f6; }
td.outcome { text-align: center; font-family: monospace; }
.outcome-pass, .outcome-xpass { background: #bbf7d0; }
.outcome-skip, .outcome-not-run { background: #e5e7eb; }
.outcome-xfail { background: #fde68a; }
.outcome-fail { background: #fca5a5; }
.outcome-refused-unclean, .outcome-crash, .outcome-timeout, .outcome-harness-error {
  background: #f87171; font-weight: bold; }
tr.collapsed th { font-weight: normal; font-style: italic; }
.warning { color: #b91c1c; }
pre { background: #f9fafb; padding: 0.5em; overflow-x: auto; font-size: 85%; }
"""


def _vector_ids(impls: Sequence[Implementation]) -> list[str]:
    ids: set[str] = set()
    for impl in impls:
        ids.update(impl.outcomes)
    return sorted(ids)


def _rows(ids: Sequence[str], impls: Sequence[Implementation]) -> dict[str, tuple[str, ...]]:
    tables = [impl.outcomes for impl in impls]
    return {vid: tuple(t.get(vid, NOT_RUN) for t in tables) for vid in ids}


def _vector_table(ids: Sequence[str], impls: Sequence[Implementation],
                  manifest: Manifest | None, pruned: bool) -> list[str]:
    by_id = {v.id: v for v in manifest.vectors} if manifest is not None else {}
    rows = _rows(ids, impls)
    out = ['<table id="matrix-vectors" class="matrix">', "<thead><tr><th>Vector</th>"
           "<th>Kind</th><th>Result</th><th>Rules</th>"]
    out += [f'<th class="impl" data-impl="{_e(i.label)}">{_e(i.label)}</th>' for i in impls]
    out.append("</tr></thead><tbody>")
    same: dict[str, list[str]] = {}
    for vid in ids:
        outcomes = rows[vid]
        if pruned and len(set(outcomes)) == 1:
            same.setdefault(outcomes[0], []).append(vid)
            continue
        v = by_id.get(vid)
        kind, result = (v.kind, v.result) if v is not None else ("?", "?")
        rules = " ".join(_rule_link(r) for r in v.rules) if v is not None else ""
        out.append(f'<tr data-vector="{_e(vid)}"><th>{_vector_link(vid)}</th>'
                   f"<td>{_e(kind)}</td><td>{_e(result)}</td><td>{rules}</td>"
                   + "".join(_cell(o, i) for o, i in zip(outcomes, impls, strict=True))
                   + "</tr>")
    for outcome in sorted(same, key=lambda o: (o not in OUTCOMES, o)):
        members = same[outcome]
        links = ", ".join(_vector_link(vid) for vid in members)
        out.append(
            f'<tr class="collapsed" data-outcome="{_e(outcome)}" data-count="{len(members)}">'
            f'<th colspan="4">{len(members)} vector{"s" if len(members) != 1 else ""} with '
            f"outcome {_e(outcome)} in every implementation"
            f"<details><summary>which</summary>{links}</details></th>"
            + "".join(_cell(outcome, i) for i in impls) + "</tr>")
    out.append("</tbody></table>")
    return out


def _rule_outcome(slot: Mapping[str, int] | None) -> str:
    if not slot:
        return NOT_RUN
    if slot.get("fail", 0):
        return "fail"
    if slot.get("pass", 0):
        return "pass"
    return "skip"


def _rule_table(impls: Sequence[Implementation]) -> list[str]:
    rules = sorted({r for i in impls for r in i.doc.get("by_rule", {})})
    out = ['<table id="matrix-rules" class="matrix">', "<thead><tr><th>Rule</th>"]
    out += [f'<th class="impl" data-impl="{_e(i.label)}">{_e(i.label)}</th>' for i in impls]
    out.append("</tr></thead><tbody>")
    for rule in rules:
        cells = []
        for impl in impls:
            slot = impl.doc.get("by_rule", {}).get(rule)
            outcome = _rule_outcome(slot)
            text = (f"{slot.get('pass', 0)} pass / {slot.get('fail', 0)} fail / "
                    f"{slot.get('skip', 0)} skip" if slot else NOT_RUN)
            cells.append(f'<td class="outcome outcome-{_e(outcome)}" data-impl="{_e(impl.label)}"'
                         f' data-outcome="{_e(outcome)}">{_e(text)}</td>')
        out.append(f'<tr data-rule="{_e(rule)}"><th>{_rule_link(rule)}</th>{"".join(cells)}</tr>')
    out.append("</tbody></table>")
    return out


def _anomalies(impl: Implementation) -> list[str]:
    out = [f'<section id="anomalies-{_e(impl.slug)}" class="anomalies" '
           f'data-impl="{_e(impl.label)}">', f"<h3>{_e(impl.label)}</h3>"]
    items = [r for r in impl.doc["results"] if r.get("outcome") not in _ORDINARY]
    if not items:
        out.append("<p>No anomalies: every check passed or was skipped as unsupported.</p>")
    else:
        out.append("<ul>")
        for r in items:
            rules = " ".join(_rule_link(x) for x in r.get("rules", []))
            out.append(
                f'<li data-vector="{_e(r.get("id", ""))}" data-outcome="{_e(r.get("outcome"))}">'
                f'<span class="outcome outcome-{_e(r.get("outcome"))}">{_e(r.get("outcome"))}'
                f"</span> {_vector_link(str(r.get('id', '')))} [{_e(r.get('capability', '?'))}]"
                f" {_e(r.get('message', ''))} {rules}</li>")
        out.append("</ul>")
    out.append("</section>")
    return out


def _entries(ids: Sequence[str], manifest: Manifest | None) -> list[str]:
    by_id = {v.id: v for v in manifest.vectors} if manifest is not None else {}
    out = ['<section id="manifest-entries"><h2>Manifest entries</h2>']
    for vid in ids:
        v = by_id.get(vid)
        out.append(f'<div class="entry" id="{_e(vector_anchor(vid))}"><h3>{_e(vid)}</h3>')
        if v is None:
            out.append('<p class="warning">not in the manifest this page was rendered with</p>')
        else:
            rules = " ".join(_rule_link(r) for r in v.rules)
            out.append(f"<p>{_e(v.description)} ({_e(v.kind)}, {_e(v.result)}) {rules}</p>")
            text = json.dumps(v.raw, indent=2, ensure_ascii=False)
            out.append(f"<details><summary>manifest entry</summary><pre>{_e(text)}</pre>"
                       "</details>")
        out.append("</div>")
    out.append("</section>")
    return out


def render_matrix(impls: Sequence[Implementation], manifest: Manifest | None, *,
                  pruned: bool = False) -> str:
    """The whole page; ``manifest`` supplies kinds, results, rules and the linked entries."""
    if not impls:
        raise MatrixError("no results files")
    ids = _vector_ids(impls)
    title = "add-cow conformance matrix" + (" (pruned)" if pruned else "")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
           f"<h1>{_e(title)}</h1>"]
    rows = _rows(ids, impls)
    identical = sum(1 for o in rows.values() if len(set(o)) == 1)
    summary = (f"{len(impls)} implementations, {len(ids)} vectors; {identical} vectors have the "
               "same outcome in every implementation")
    summary += (", collapsed below." if pruned else ".")
    out.append(f'<p id="summary">{_e(summary)}</p>')
    out.append('<table id="implementations"><thead><tr><th>Implementation</th><th>Command</th>'
               "<th>Suite</th><th>Results file</th><th>Vectors</th><th>Anomalies</th>"
               "</tr></thead><tbody>")
    for impl in impls:
        d = impl.doc
        counts = Counter(impl.outcomes.values())
        text = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o])
        suite = f"{d.get('suite_version', '?')} ({str(d.get('manifest_sha256', '?'))[:12]})"
        if manifest is not None and d.get("manifest_sha256") != manifest.sha256:
            suite += " — differs from the manifest this page was rendered with"
        n_anom = sum(1 for r in d["results"] if r.get("outcome") not in _ORDINARY)
        out.append(
            f'<tr data-impl="{_e(impl.label)}"><th>{_e(impl.label)}</th>'
            f"<td><code>{_e(d['implementation'].get('command', ''))}</code></td>"
            f"<td>{_e(suite)}</td><td>{_e(impl.source)}</td><td>{_e(text)}</td>"
            f'<td><a href="#anomalies-{_e(impl.slug)}">{n_anom}</a></td></tr>')
    out.append("</tbody></table>")
    out.append('<h2 id="vectors">Vectors &#215; implementations</h2>')
    out += _vector_table(ids, impls, manifest, pruned)
    out.append('<h2 id="rules">Rules &#215; implementations</h2>')
    out.append("<p>Per rule: vectors about the rule that passed / failed / were skipped.</p>")
    out += _rule_table(impls)
    out.append('<h2 id="anomalies">Anomalies per implementation</h2>')
    out.append("<p>Every check whose outcome is neither pass nor an unsupported skip.</p>")
    for impl in impls:
        out += _anomalies(impl)
    out += _entries(ids, manifest)
    out.append("</body></html>")
    return "\n".join(out) + "\n"
