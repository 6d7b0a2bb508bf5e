"""NAME-* and FMT-* rules: the name area and the two format fields (spec page "Names")."""

from __future__ import annotations

from addcow_conformance.checker.checks.common import register_v2_rules

__all__: list[str] = []

register_v2_rules(
    "NAME-IMAGE-REQUIRED", "NAME-BACKING-PAIR", "NAME-BOUNDS", "NAME-OVERLAP", "NAME-NO-NUL",
    "NAME-AREA-ZERO", "FMT-PADDING", "FMT-IMAGE", "FMT-BACKING-PRESENCE", "FMT-BACKING-KNOWN",
)
