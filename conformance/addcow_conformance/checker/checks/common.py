"""Passes of the reference's predicates shared by several checks (computed once per image).

``validate.check_names`` reads the name area that is in the file in 1 MiB chunks, and skips the
holes of a sparse file (``scan.next_data``), as the bitmap scan does: memory stays flat, and a
multi-terabyte name area that is mostly hole costs a few ``lseek`` calls.
"""

from __future__ import annotations

import functools

from addcow_conformance.checker.context import CheckContext
from addcow_conformance.checker.scan import next_data
from addcow_ref.format.constants import HEADER_LENGTH_V2
from addcow_ref.format.validate import Violation, check_fields, check_names, header_violations

__all__ = [
    "NAME_AREA_RULES",
    "field_violations",
    "of_rule",
    "register_v2_rules",
    "v2_violations",
]

#: The rules ``validate.check_names`` decides.
NAME_AREA_RULES = frozenset(
    {"NAME-BACKING-PAIR", "NAME-BOUNDS", "NAME-OVERLAP", "NAME-NO-NUL", "NAME-AREA-ZERO"})


def field_violations(ctx: CheckContext) -> list[Violation]:
    """Single-field ``checks`` of the schema, for whichever header the file has."""
    header = ctx.header
    if header is None:
        return []
    return ctx.memo("fields", lambda: check_fields(header))


def _v2(ctx: CheckContext) -> list[Violation]:
    header = ctx.v2()
    skip_holes = functools.partial(next_data, ctx.fd, end=ctx.file_size)
    out = header_violations(header, ctx.read_at, ctx.file_size, skip_holes)
    if int(header.header_length) < HEADER_LENGTH_V2:
        # The fixed header is never part of the name area, whatever header_length claims:
        # scanning it for stray bytes would report every header field again (HDR-LENGTH-MIN
        # already says what is wrong).
        fixed = header.replace(header_length=HEADER_LENGTH_V2)
        out = [v for v in out if v.rule_id not in NAME_AREA_RULES]
        out += check_names(fixed, ctx.read_at, ctx.file_size, skip_holes)
    return out


def v2_violations(ctx: CheckContext) -> list[Violation]:
    """Every header-level violation of a v2 file (``validate.header_violations``)."""
    ctx.v2()
    return ctx.memo("v2", lambda: _v2(ctx))


def of_rule(rule_id: str, violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.rule_id == rule_id]


def register_v2_rules(*rule_ids: str) -> None:
    """Register one check per rule that ``validate.header_violations`` fully decides."""
    from addcow_conformance.checker.engine import check

    for rule_id in rule_ids:
        def run(ctx: CheckContext, rule_id: str = rule_id) -> list[Violation]:
            return of_rule(rule_id, v2_violations(ctx))

        run.__name__ = "check_" + rule_id.lower().replace("-", "_")
        run.__doc__ = f"Rule {rule_id}, as ``addcow_ref.format.validate`` decides it."
        check(rule_id)(run)
