"""Checks that only select their rule's share of one pass of the reference's predicates.

Most header rules are fully decided by ``validate.header_violations`` (v2) or
``validate.check_v1`` (v1); their checks differ only in the rule ID, so they are made here
rather than written out one by one.
"""

from __future__ import annotations

from collections.abc import Callable

from addcow_conformance.checker.context import CheckContext
from addcow_conformance.checker.derive import of_rule, v1_violations, v2_violations
from addcow_conformance.checker.registry import check
from addcow_ref.format.validate import Violation

__all__ = ["register_v1_rules", "register_v2_rules"]


def _register(rule_ids: tuple[str, ...], source: Callable[[CheckContext], list[Violation]],
              decided_by: str) -> None:
    for rule_id in rule_ids:
        def run(ctx: CheckContext, rule_id: str = rule_id) -> list[Violation]:
            return of_rule(rule_id, source(ctx))

        run.__name__ = "check_" + rule_id.lower().replace("-", "_")
        run.__doc__ = f"Rule {rule_id}, as ``{decided_by}`` decides it."
        check(rule_id)(run)


def register_v2_rules(*rule_ids: str) -> None:
    """Register one check per rule that ``validate.header_violations`` fully decides."""
    _register(rule_ids, v2_violations, "addcow_ref.format.validate")


def register_v1_rules(*rule_ids: str) -> None:
    """Register one check per rule that ``validate.check_v1`` fully decides."""
    _register(rule_ids, v1_violations, "addcow_ref.format.validate.check_v1")
