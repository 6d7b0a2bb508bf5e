"""Renderers of check reports: one line per finding plus a ``qemu-img check``-style summary for
humans, and one JSON document (``conformance/addcow_conformance/schemas/check-report.schema.json``)
for programs.

Human output caps repeated findings of one rule (``--max-per-rule``); JSON never drops anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

import addcow_ref
from addcow_conformance.checker.findings import Finding, Report, worst_exit_code
from addcow_ref.format.rules import all_rules

__all__ = ["REPORT_VERSION", "TOOL_NAME", "human_lines", "json_document", "rules_digest"]

REPORT_VERSION = 1
TOOL_NAME = "addcow-check"


def rules_digest() -> str:
    """SHA-256 of the rule registry the verdicts were reached with: two reports are comparable
    only if their digests are equal."""
    data = resources.files("addcow_ref.format").joinpath("rules.json").read_bytes()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def spec_version() -> str:
    versions = {r.spec_since for r in all_rules().values()}
    return max(versions, key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit()))


def json_document(reports: Sequence[Report]) -> dict[str, Any]:
    return {
        "report_version": REPORT_VERSION,
        "tool": {"name": TOOL_NAME, "version": addcow_ref.__version__},
        "spec_version": spec_version(),
        "rules_digest": rules_digest(),
        "images": [r.as_dict() for r in reports],
        "summary": {
            "errors": sum(r.count("error") for r in reports),
            "warnings": sum(r.count("warning") for r in reports),
            "infos": sum(r.count("info") for r in reports),
            "images": len(reports),
            "not_checked": sum(1 for r in reports if r.status == "not-checked"),
        },
        "exit_code": worst_exit_code([r.exit_code for r in reports]),
    }


def _finding_line(f: Finding) -> str:
    where = f.file if f.offset is None else f"{f.file}:0x{f.offset:04x}"
    line = f"{where} {f.severity:<7} {f.rule:<22} {f.message}"
    if f.count > 1 and "{count}" not in f.message:
        line += f" (x{f.count:,})"
    if f.field:
        line += f"  [{f.field}]"
    if f.anchor:
        line += f"  {f.anchor}"
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


def human_lines(report: Report, *, max_per_rule: int = 10,
                follow: bool = True) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) for one image. ``max_per_rule`` 0 means no cap."""
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
        out.append(_finding_line(f))
    for rule, n in hidden.items():
        out.append(f"{report.path}: ... and {n:,} more {rule} finding(s)")
    err = [f"{report.path}: internal error in the check of {e.rule or 'the engine'}: {e.message}"
           for e in report.internal_errors]
    out.append(_summary(report, follow))
    return out, err
