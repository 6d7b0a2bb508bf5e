"""The outcome vocabulary of the harness and the records it produces.

A clean refusal (exit 65) is not a crash, a crash is not a failure to conform, and "not
supported" (exit 69) is not a failure at all: JSONTestSuite and dEQP separate these for a reason,
and toml-test's "any non-zero is a rejection" lets a crashing parser pass every invalid test.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from addcow_conformance.protocol import CALLS, EXIT_REFUSED, EXIT_UNSUPPORTED

__all__ = [
    "CAPABILITIES",
    "EXIT_REFUSED",
    "EXIT_UNSUPPORTED",
    "FAILING",
    "OUTCOMES",
    "UNEXPECTED",
    "CheckResult",
    "Outcome",
    "worst",
]

Outcome = Literal[
    "pass", "fail", "skip", "xfail", "xpass", "refused-unclean", "crash", "timeout", "harness-error"
]

OUTCOMES: tuple[Outcome, ...] = (
    "pass",
    "fail",
    "skip",
    "xfail",
    "xpass",
    "refused-unclean",
    "crash",
    "timeout",
    "harness-error",
)

#: Calls of the adapter interface, in the order the harness makes them for one vector.
CAPABILITIES = CALLS

#: Outcomes a known-failures entry turns into ``xfail``.
FAILING: frozenset[str] = frozenset({"fail", "refused-unclean", "crash", "timeout"})
#: Outcomes that make the run fail (exit 1). ``xpass`` joins them under --strict-known-failures.
UNEXPECTED: frozenset[str] = FAILING | {"harness-error"}

_SEVERITY = {
    "skip": 0,
    "pass": 1,
    "xfail": 2,
    "xpass": 3,
    "fail": 4,
    "refused-unclean": 5,
    "timeout": 6,
    "crash": 7,
    "harness-error": 8,
}


def worst(outcomes: list[str]) -> str:
    """The outcome that stands for a whole vector: the most alarming of its checks."""
    if not outcomes:
        return "skip"
    return max(outcomes, key=lambda o: _SEVERITY[o])


@dataclasses.dataclass
class CheckResult:
    """One comparison the harness made: one capability of one vector."""

    id: str
    capability: str
    outcome: str
    message: str
    expected: Any = None
    actual: Any = None
    rules: tuple[str, ...] = ()
    context: dict[str, Any] = dataclasses.field(default_factory=dict)
    duration_ms: float = 0.0
    reproduce: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "capability": self.capability,
            "outcome": self.outcome,
            "message": self.message,
            "rules": list(self.rules),
            "expected": self.expected,
            "actual": self.actual,
            "context": self.context,
            "duration_ms": round(self.duration_ms, 3),
            "reproduce": self.reproduce,
        }
