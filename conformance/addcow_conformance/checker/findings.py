"""What the checker says about one image: findings, facts and the exit status they imply.

Kept free of I/O and rendering so the engine, the renderers, the fuzz target and the vector
harness share one vocabulary: every finding names its rule, severity, file, byte offset, header
field and the link to the spec's clause, which is what a reader needs to find and fix the fault.
The ``*Dict`` records are the JSON form (``schemas/check-report.schema.json``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, TypedDict

from addcow_ref.format.rules import get_rule, rule_url
from addcow_ref.format.validate import Violation

__all__ = [
    "EXIT_CONFORMING",
    "EXIT_ERRORS",
    "EXIT_NOT_CHECKED",
    "EXIT_USAGE",
    "EXIT_WARNINGS",
    "Facts",
    "Finding",
    "FindingDict",
    "InternalError",
    "InternalErrorDict",
    "NotApplicable",
    "NotApplicableDict",
    "Report",
    "ReportDict",
    "Severity",
    "finding_of",
    "worst_exit_code",
]

Severity = Literal["error", "warning", "info"]
Status = Literal["conforming", "warnings", "nonconforming", "not-checked"]

EXIT_CONFORMING = 0
EXIT_NOT_CHECKED = 1
EXIT_ERRORS = 2
EXIT_WARNINGS = 3
EXIT_USAGE = 64

#: "Worst wins" is not numeric order: could-not-check beats errors beats warnings, because a
#: run that skipped an image must not pass for one that only found faults in the others.
_BADNESS = {EXIT_CONFORMING: 0, EXIT_WARNINGS: 1, EXIT_ERRORS: 2, EXIT_NOT_CHECKED: 3}


def worst_exit_code(codes: list[int]) -> int:
    """The exit status of a run over several images: 1 > 2 > 3 > 0."""
    return max(codes, key=lambda c: _BADNESS.get(c, 4), default=EXIT_CONFORMING)


class FindingDict(TypedDict):
    rule: str
    severity: Severity
    message: str
    file: str
    offset: int | None
    length: int | None
    field: str | None
    expected: str | None
    actual: str | None
    anchor: str
    count: int


class NotApplicableDict(TypedDict):
    rule: str
    reason: str


class InternalErrorDict(TypedDict):
    rule: str
    message: str


class Facts(TypedDict, total=False):
    """What was read from an image (not what was judged). The names are those of the
    reference's info record (``addcow_ref.ops.info.ImageInfo``) wherever the two overlap, so a
    program reading both sees one vocabulary; ``file_size`` is the add-cow file's length."""

    version: int | None
    file_size: int
    header_length: int
    virtual_size: int | None
    cluster_bits: int
    bitmap_offset: int
    incompatible_features: int
    compatible_features: int
    autoclear_features: int
    image_format: str
    backing_format: str | None
    cluster_size: int
    image_file: str | None
    backing_file: str | None
    cluster_count: int
    bitmap_length: int
    allocated_clusters: int | None


class ReportDict(TypedDict):
    path: str
    status: Status
    exit_code: int
    error: str | None
    facts: Facts
    findings: list[FindingDict]
    rules_checked: list[str]
    rules_not_applicable: list[NotApplicableDict]
    internal_errors: list[InternalErrorDict]


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

    def as_dict(self) -> FindingDict:
        return {"rule": self.rule, "severity": self.severity, "message": self.message,
                "file": self.file, "offset": self.offset, "length": self.length,
                "field": self.field, "expected": self.expected, "actual": self.actual,
                "anchor": self.anchor, "count": self.count}


def _plain(text: str | None) -> str | None:
    """Constraint texts come from the schema in reST (``raw``); reports show plain text."""
    return None if text is None else text.replace("``", "")


def finding_of(violation: Violation, file: str) -> Finding:
    """The checker's finding for a violation the format layer (or a check) reported in
    ``file``: the one place a :class:`Violation` becomes a :class:`Finding`. Severity and
    clause link come from the rule registry, never from the check."""
    rule = violation.rule_id
    return Finding(rule=rule, severity=get_rule(rule).severity, message=violation.message,
                   file=file, offset=violation.offset, length=violation.length,
                   field=violation.field, expected=_plain(violation.expected),
                   actual=_plain(violation.actual), anchor=rule_url(rule))


@dataclasses.dataclass(frozen=True)
class NotApplicable:
    """A rule the checker did not look at for this image, and why (``--no-follow``, v1, ...)."""

    rule: str
    reason: str

    def as_dict(self) -> NotApplicableDict:
        return {"rule": self.rule, "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class InternalError:
    """A check that raised: the checker's own failure, never shown as a traceback."""

    rule: str
    message: str

    def as_dict(self) -> InternalErrorDict:
        return {"rule": self.rule, "message": self.message}


@dataclasses.dataclass
class Report:
    """The verdict on one image. ``error`` is set when the image could not be checked at all."""

    path: str
    findings: list[Finding] = dataclasses.field(default_factory=list)
    rules_checked: list[str] = dataclasses.field(default_factory=list)
    rules_not_applicable: list[NotApplicable] = dataclasses.field(default_factory=list)
    internal_errors: list[InternalError] = dataclasses.field(default_factory=list)
    facts: Facts = dataclasses.field(default_factory=lambda: Facts())
    error: str | None = None
    fail_on_warning: bool = False
    #: (st_dev, st_ino) of this add-cow file, its image file and every file of its backing
    #: chain: what an image above it must not use as its image file (IMG-IDENTITY). Not
    #: published in the JSON report.
    involved: frozenset[tuple[int, int]] = frozenset()

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

    def as_dict(self) -> ReportDict:
        return {
            "path": self.path,
            "status": self.status,
            "exit_code": self.exit_code,
            "error": self.error,
            "facts": self.facts.copy(),
            "findings": [f.as_dict() for f in self.findings],
            "rules_checked": list(self.rules_checked),
            "rules_not_applicable": [n.as_dict() for n in self.rules_not_applicable],
            "internal_errors": [e.as_dict() for e in self.internal_errors],
        }
