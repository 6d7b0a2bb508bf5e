"""Reports of a harness run: human text, JSON results (schema'd) and JUnit XML.

The human report answers "which clause did I get wrong and how do I see it": every unexpected
outcome gets its rule IDs with clause links, expected vs actual, and a reproduction command; the
summary counts outcomes per capability. JSON follows
``conformance/addcow_conformance/schemas/harness-results.schema.json`` and carries the suite
identity (suite
version, manifest digest) so results of different runs are comparable.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from importlib import resources
from typing import Any

from addcow_conformance.harness.outcomes import CAPABILITIES, OUTCOMES, CheckResult
from addcow_conformance.harness.runner import RunResult
from addcow_ref.format.rules import all_rules, rule_url

__all__ = ["RESULTS_VERSION", "results_schema", "to_human", "to_json", "to_junit"]

RESULTS_VERSION = "1.0.0"

_SHOWN = ("fail", "refused-unclean", "crash", "timeout", "harness-error", "xpass")
_TAG = {
    "fail": "FAIL",
    "refused-unclean": "UNCLEAN",
    "crash": "CRASH",
    "timeout": "TIMEOUT",
    "harness-error": "ERROR",
    "xpass": "XPASS",
}


def results_schema() -> dict[str, Any]:
    text = (
        resources.files("addcow_conformance")
        .joinpath("schemas/harness-results.schema.json")
        .read_text("utf-8")
    )
    result: dict[str, Any] = json.loads(text)
    return result


def _clause(rule: str) -> str:
    return rule_url(rule) if rule in all_rules() else "(rule not in this spec's registry)"


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _capability_counts(results: list[CheckResult]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {}
    for r in results:
        counts.setdefault(r.capability, Counter())[r.outcome] += 1
    return counts


def _counts_text(c: Counter[str]) -> str:
    words = {"pass": "passed", "fail": "failed", "skip": "skipped"}
    return ", ".join(f"{c[o]} {words.get(o, o)}" for o in OUTCOMES if c[o])


def to_human(run: RunResult, *, verbose: bool = False) -> str:
    lines = []
    caps = run.capabilities
    who = f"{caps.name} {caps.version}".strip()
    lines.append(
        f"addcow-conformance: {who} over {run.vectors_dir} "
        f"(suite {run.manifest.suite_version}, {len(run.vector_outcomes)} vectors run)"
    )
    if caps.note:
        lines.append(f"note: {caps.note}")
    shown = _SHOWN + (("xfail", "skip") if verbose else ())
    for r in run.results:
        if r.outcome not in shown:
            continue
        lines.append("")
        tag = _TAG.get(r.outcome, r.outcome.upper())
        lines.append(f"{tag}  {r.id}  [{r.capability}]  {r.message}")
        for rule in r.rules:
            lines.append(f"      rule {rule}: {_clause(rule)}")
        if r.expected is not None:
            lines.append(f"      expected: {_short(r.expected)}")
        if r.actual is not None:
            lines.append(f"      actual:   {_short(r.actual)}")
        stderr = r.context.get("stderr") or ""
        if r.outcome in ("crash", "refused-unclean") and not stderr:
            calls = r.context.get("calls") or []
            stderr = calls[-1].get("stderr", "") if calls else ""
        if stderr.strip():
            tail = stderr.strip().splitlines()[-3:]
            lines.append("      stderr:   " + "\n                ".join(tail))
        kf = r.context.get("known_failure")
        if kf:
            bug = f" ({kf['bug']})" if kf.get("bug") else ""
            lines.append(f"      known failure: {kf['reason']}{bug}")
        if r.reproduce:
            lines.append(f"      reproduce: {r.reproduce}")
    lines.append("")
    counts = _capability_counts(run.results)
    order = [c for c in CAPABILITIES if c in counts] + sorted(set(counts) - set(CAPABILITIES))
    for cap in order:
        lines.append(f"{cap + ':':7} {_counts_text(counts[cap])}")
    other = sorted({r.id for r in run.results if "other_reason" in r.context})
    if other:
        lines.append(
            f"note: {len(other)} refusals cited a rule other than the one the vector breaks "
            f"({', '.join(other[:3])}{', …' if len(other) > 3 else ''}); "
            "--check-refusal-reason makes them failures"
        )
    vec = Counter(run.vector_outcomes.values())
    verdict = "NOT CONFORMING" if run.exit_code else "CONFORMING"
    if run.exit_code == 0 and any(run.vector_outcomes[v] == "skip" for v in run.vector_outcomes):
        verdict += " (on the vectors it supports)"
    lines.append(f"vectors: {_counts_text(vec)} in {run.duration_s:.1f} s. {verdict}.")
    if run.scratch_dir is not None:
        lines.append(f"scratch copies of the failing vectors kept in {run.scratch_dir}")
    return "\n".join(lines) + "\n"


def _by_rule(run: RunResult) -> dict[str, dict[str, int]]:
    rules: dict[str, dict[str, int]] = {}
    vectors = {v.id: v for v in run.manifest.vectors}
    for vid, outcome in sorted(run.vector_outcomes.items()):
        for rule in vectors[vid].rules:
            slot = rules.setdefault(rule, {"pass": 0, "fail": 0, "skip": 0})
            if outcome in ("pass", "xpass"):
                slot["pass"] += 1
            elif outcome == "skip":
                slot["skip"] += 1
            else:
                slot["fail"] += 1
    return dict(sorted(rules.items()))


def to_json(run: RunResult) -> dict[str, Any]:
    per_cap = _capability_counts(run.results)
    vec = Counter(run.vector_outcomes.values())
    return {
        "results_version": RESULTS_VERSION,
        "suite_version": run.manifest.suite_version,
        "manifest_sha256": run.manifest.sha256,
        "implementation": {
            "command": run.impl_text,
            "name": run.capabilities.name,
            "version": run.capabilities.version,
            "capabilities": run.capabilities.as_dict(),
        },
        "options": {
            "timeout": run.options.timeout,
            "check_refusal_reason": run.options.check_refusal_reason,
            "lenient_refusal": run.options.lenient_refusal,
            "strict_known_failures": run.options.strict_known_failures,
        },
        "results": [r.as_dict() for r in run.results],
        "vectors": [{"id": k, "outcome": v} for k, v in run.vector_outcomes.items()],
        "by_rule": _by_rule(run),
        "summary": {
            "vectors": {o: vec[o] for o in OUTCOMES},
            "checks": {o: sum(c[o] for c in per_cap.values()) for o in OUTCOMES},
            "by_capability": {
                cap: {o: c[o] for o in OUTCOMES} for cap, c in sorted(per_cap.items())
            },
            "duration_s": round(run.duration_s, 3),
            "exit_code": run.exit_code,
        },
    }


def to_junit(run: RunResult) -> bytes:
    """JUnit XML: one testsuite per capability, one testcase per check."""
    root = ET.Element("testsuites", name="addcow-conformance", time=f"{run.duration_s:.3f}")
    by_cap: dict[str, list[CheckResult]] = {}
    for r in run.results:
        by_cap.setdefault(r.capability, []).append(r)
    unexpected = {id(r) for r in run.unexpected()}
    for cap, items in sorted(by_cap.items()):
        suite = ET.SubElement(
            root,
            "testsuite",
            name=cap,
            tests=str(len(items)),
            failures=str(
                sum(r.outcome in ("fail", "xpass") and id(r) in unexpected for r in items)
            ),
            errors=str(sum(r.outcome in ("crash", "timeout", "refused-unclean", "harness-error")
                           for r in items)),
            skipped=str(sum(r.outcome in ("skip", "xfail") for r in items)),
        )
        for r in items:
            case = ET.SubElement(
                suite, "testcase", classname=cap, name=r.id, time=f"{r.duration_ms / 1000:.3f}"
            )
            detail = "\n".join(
                [f"rule {rule}: {_clause(rule)}" for rule in r.rules]
                + [f"expected: {_short(r.expected, 2000)}", f"actual: {_short(r.actual, 2000)}"]
                + ([f"reproduce: {r.reproduce}"] if r.reproduce else [])
            )
            if r.outcome in ("skip", "xfail"):
                ET.SubElement(case, "skipped", message=f"{r.outcome}: {r.message}")
            elif id(r) in unexpected and r.outcome in ("fail", "xpass"):
                ET.SubElement(case, "failure", message=r.message, type=r.outcome).text = detail
            elif id(r) in unexpected:
                ET.SubElement(case, "error", message=r.message, type=r.outcome).text = detail
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out
