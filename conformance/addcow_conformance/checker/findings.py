"""What the checker says about one image: findings, facts and the exit status they imply.

Kept free of I/O and rendering so the engine, the renderers, the fuzz target and the vector
harness share one vocabulary (STYLE.md (c): rule, severity, file, offset, field, clause link).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from addcow_ref.format.rules import get_rule, rule_url

__all__ = [
    "EXIT_CONFORMING",
    "EXIT_ERRORS",
    "EXIT_NOT_CHECKED",
    "EXIT_USAGE",
    "EXIT_WARNINGS",
    "Finding",
    "InternalError",
    "NotApplicable",
    "Report",
    "Severity",
    "worst_exit_code",
]

Severity = Literal["error", "warning", "info"]
Status = Literal["conforming", "warnings", "nonconforming", "not-checked"]

EXIT_CONFORMING = 0
EXIT_NOT_CHECKED = 1
EXIT_ERRORS = 2
EXIT_WARNINGS = 3
EXIT_USAGE = 64

#: "Worst wins" is not numeric order: could-not-check beats errors beats warnings (issue 4).
_BADNESS = {EXIT_CONFORMING: 0, EXIT_WARNINGS: 1, EXIT_ERRORS: 2, EXIT_NOT_CHECKED: 3}


def worst_exit_code(codes: list[int]) -> int:
    """The exit status of a run over several images: 1 > 2 > 3 > 0."""
    return max(codes, key=lambda c: _BADNESS.get(c, 4), default=EXIT_CONFORMING)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One broken rule at one place. ``count`` is how many occurrences this finding stands for
    (bitmap findings aggregate every affected cluster into one line)."""

    rule: str
    severity: Severity
    message: str
    file: str
    offset: int | None = None
    length: int | None = None
    field: str | None = None
    expected: str | None = None
    actual: str | None = None
    anchor: str = ""
    count: int = 1

    @classmethod
    def for_rule(cls, rule: str, message: str, file: str, **where: Any) -> Finding:
        """A finding whose severity and clause link come from the registry, never the caller."""
        return cls(rule=rule, severity=get_rule(rule).severity, message=message, file=file,
                   anchor=rule_url(rule), **where)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class NotApplicable:
    """A rule the checker did not look at for this image, and why (``--no-follow``, v1, ...)."""

    rule: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class InternalError:
    """A check that raised: the checker's own failure, never shown as a traceback."""

    rule: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Report:
    """The verdict on one image. ``error`` is set when the image could not be checked at all."""

    path: str
    findings: list[Finding] = dataclasses.field(default_factory=list)
    rules_checked: list[str] = dataclasses.field(default_factory=list)
    rules_not_applicable: list[NotApplicable] = dataclasses.field(default_factory=list)
    internal_errors: list[InternalError] = dataclasses.field(default_factory=list)
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    fail_on_warning: bool = False

    def count(self, severity: Severity) -> int:
        return sum(f.count for f in self.findings if f.severity == severity)

    @property
    def rule_ids(self) -> list[str]:
        """Distinct rule IDs of the findings, in report order."""
        return list(dict.fromkeys(f.rule for f in self.findings))

    @property
    def status(self) -> Status:
        if self.error is not None:
            return "not-checked"
        if any(f.severity == "error" for f in self.findings):
            return "nonconforming"
        if any(f.severity == "warning" for f in self.findings):
            return "warnings"
        return "conforming"

    @property
    def exit_code(self) -> int:
        if self.error is not None or self.internal_errors:
            return EXIT_NOT_CHECKED
        status = self.status
        if status == "nonconforming":
            return EXIT_ERRORS
        if status == "warnings":
            return EXIT_ERRORS if self.fail_on_warning else EXIT_WARNINGS
        return EXIT_CONFORMING

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "exit_code": self.exit_code,
            "error": self.error,
            "facts": dict(self.facts),
            "findings": [f.as_dict() for f in self.findings],
            "rules_checked": list(self.rules_checked),
            "rules_not_applicable": [n.as_dict() for n in self.rules_not_applicable],
            "internal_errors": [e.as_dict() for e in self.internal_errors],
        }
