"""Renderers of check reports: one line per finding plus a ``qemu-img check``-style summary for
humans, and one JSON document (``conformance/addcow_conformance/schemas/check-report.schema.json``)
for programs.

Human output caps repeated findings of one rule (``--max-per-rule``); JSON never drops anything.
Every finding line ends with its clause link and the command that explains the rule offline
(``addcow-check --explain ID``), since a link may not open where the checker runs. Links are
built here, from the rule ID, under the docs root the run asked for (``--docs-url``,
``$ADDCOW_DOCS_URL`` or the published site at the registry's spec version); the JSON report
also carries the root-relative ``clause`` path, which holds under any root.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import addcow_ref
from addcow_conformance.checker.findings import (
    Facts,
    Finding,
    FindingDict,
    InternalErrorDict,
    NotApplicableDict,
    Report,
    ReportDict,
    worst_exit_code,
)
from addcow_ref.format.rules import (
    docs_base_url,
    get_rule,
    registry_bytes,
    rule_url,
    spec_version,
)

__all__ = ["REPORT_VERSION", "TOOL_NAME", "CheckDocument", "human_lines", "json_document",
           "rules_digest", "spec_version"]

#: 2: every finding gained ``clause`` (the rule's path under the docs root) and ``anchor``
#: follows ``--docs-url``; a version 1 reader that ignores unknown properties reads it unchanged.
REPORT_VERSION = 2
TOOL_NAME = "addcow-check"


class ToolInfo(TypedDict):
    name: str
    version: str


class Summary(TypedDict):
    errors: int
    warnings: int
    infos: int
    images: int
    not_checked: int


class CheckDocument(TypedDict):
    """The JSON report of one run over one or more images."""

    report_version: int
    tool: ToolInfo
    spec_version: str
    docs_url: str
    rules_digest: str
    images: list[LinkedReportDict]
    summary: Summary
    exit_code: int


def rules_digest() -> str:
    """SHA-256 of the rule registry the verdicts were reached with: two reports are comparable
    only if their digests are equal."""
    import hashlib  # only JSON reports carry the digest: not on the human output's path

    return "sha256:" + hashlib.sha256(registry_bytes()).hexdigest()


class LinkedFindingDict(FindingDict):
    """A finding as the report prints it: ``anchor`` under the run's docs root, plus ``clause``,
    the same link relative to that root (``spec/header.html#rule-hdr-magic``)."""

    clause: str


class LinkedReportDict(TypedDict):
    """:class:`ReportDict` with its findings linked (TypedDicts cannot narrow an inherited key)."""

    path: str
    status: str
    exit_code: int
    error: str | None
    facts: Facts
    findings: list[LinkedFindingDict]
    rules_checked: list[str]
    rules_not_applicable: list[NotApplicableDict]
    internal_errors: list[InternalErrorDict]


def _linked(report: Report, docs_url: str) -> LinkedReportDict:
    doc: ReportDict = report.as_dict()
    findings: list[LinkedFindingDict] = [
        {**f, "anchor": rule_url(f["rule"], docs_url), "clause": get_rule(f["rule"]).url_path}
        for f in doc["findings"]]
    return {"path": doc["path"], "status": doc["status"], "exit_code": doc["exit_code"],
            "error": doc["error"], "facts": doc["facts"], "findings": findings,
            "rules_checked": doc["rules_checked"],
            "rules_not_applicable": doc["rules_not_applicable"],
            "internal_errors": doc["internal_errors"]}


def json_document(reports: Sequence[Report], docs_url: str | None = None) -> CheckDocument:
    """The JSON report; ``docs_url`` as for :func:`addcow_ref.format.rules.docs_base_url`."""
    root = docs_base_url(docs_url)
    return {
        "report_version": REPORT_VERSION,
        "tool": {"name": TOOL_NAME, "version": addcow_ref.__version__},
        "spec_version": spec_version(),
        "docs_url": root,
        "rules_digest": rules_digest(),
        "images": [_linked(r, root) for r in reports],
        "summary": {
            "errors": sum(r.count("error") for r in reports),
            "warnings": sum(r.count("warning") for r in reports),
            "infos": sum(r.count("info") for r in reports),
            "images": len(reports),
            "not_checked": sum(1 for r in reports if r.status == "not-checked"),
        },
        "exit_code": worst_exit_code([r.exit_code for r in reports]),
    }


def _finding_line(f: Finding, docs_url: str) -> str:
    where = f.file if f.offset is None else f"{f.file}:0x{f.offset:04x}"
    line = f"{where} {f.severity:<7} {f.rule:<22} {f.message}"
    if f.count > 1 and "{count}" not in f.message:
        line += f" (x{f.count:,})"
    if f.field:
        line += f"  [{f.field}]"
    line += f"  {rule_url(f.rule, docs_url)}  (addcow-check --explain {f.rule})"
    return line


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _summary(report: Report, follow: bool) -> str:
    errors, warnings = report.count("error"), report.count("warning")
    na = len(report.rules_not_applicable)
    why = "" if follow else " (--no-follow)"
    if report.internal_errors:
        verdict = "CHECK INCOMPLETE (internal error)"
    elif errors:
        verdict = "NOT CONFORMING"
    elif warnings:
        verdict = "CONFORMING WITH WARNINGS"
    else:
        verdict = "CONFORMING"
    return (f"{report.path}: {_plural(errors, 'error')}, {_plural(warnings, 'warning')}; "
            f"{_plural(len(report.rules_checked), 'rule')} checked, {na} not applicable{why}. "
            f"{verdict}.")


def human_lines(report: Report, *, max_per_rule: int = 10, follow: bool = True,
                docs_url: str | None = None) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) for one image. ``max_per_rule`` 0 means no cap;
    ``docs_url`` as for :func:`addcow_ref.format.rules.docs_base_url`."""
    root = docs_base_url(docs_url)
    if report.error is not None:
        return [], [f"{report.path}: {report.error}"]
    out: list[str] = []
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for f in report.findings:
        n = shown.get(f.rule, 0)
        if max_per_rule and n >= max_per_rule:
            hidden[f.rule] = hidden.get(f.rule, 0) + f.count
            continue
        shown[f.rule] = n + 1
        out.append(_finding_line(f, root))
    for rule, n in hidden.items():
        out.append(f"{report.path}: ... and {n:,} more {rule} finding(s)")
    err = [f"{report.path}: internal error in the check of {e.rule or 'the engine'}: {e.message}"
           for e in report.internal_errors]
    out.append(_summary(report, follow))
    return out, err
