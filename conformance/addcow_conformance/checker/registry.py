"""The table of checks: one registered function per rule ID, and the order they run in.

The table is keyed by the spec's rule IDs (``addcow_ref.format.rules``), so a test can hold the
spec's list and the checker's list side by side. Check modules register into it with
:func:`check`; the engine imports those modules and runs the table. Keeping the table here, below
both, is what lets a check module be a leaf: it never imports the engine that runs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from addcow_conformance.checker.context import CheckContext
from addcow_conformance.checker.findings import Finding
from addcow_ref.format.rules import all_rules
from addcow_ref.format.validate import Violation

__all__ = ["AREA_ORDER", "CheckFunc", "CheckResult", "RegisteredCheck", "check", "in_run_order"]

CheckResult = Iterable[Violation | Finding]
CheckFunc = Callable[[CheckContext], CheckResult]


@dataclasses.dataclass(frozen=True)
class RegisteredCheck:
    rule: str
    func: CheckFunc
    #: Whether the check runs before the header is known (HDR-COMPLETE, HDR-VERSION).
    needs_header: bool


_REGISTRY: dict[str, RegisteredCheck] = {}


def check(rule_id: str, *, needs_header: bool = True) -> Callable[[CheckFunc], CheckFunc]:
    """Register ``func`` as the check of ``rule_id``; the ID must exist in the spec's registry."""
    if rule_id not in all_rules():
        raise ValueError(f"@check({rule_id!r}): no such rule in the spec")

    def register(func: CheckFunc) -> CheckFunc:
        if rule_id in _REGISTRY:
            raise ValueError(f"@check({rule_id!r}) is registered twice")
        _REGISTRY[rule_id] = RegisteredCheck(rule_id, func, needs_header)
        return func
    return register


#: Areas in the order a reader meets them in the file; checks run, and reports list findings,
#: in this order.
AREA_ORDER = ("HDR", "FEAT", "NAME", "FMT", "BMP", "IMG", "BACK", "V1")


def area_of(rule_id: str) -> str:
    return rule_id.split("-", 1)[0]


def _run_order(rule_id: str) -> int:
    area = area_of(rule_id)
    return AREA_ORDER.index(area) if area in AREA_ORDER else len(AREA_ORDER)


def in_run_order() -> dict[str, RegisteredCheck]:
    """Every registered check, in the order they run: by area (:data:`AREA_ORDER`), then in the
    order the area's module declares them. The sort is stable and each area's checks live in
    one module, so the order of the imports that register them does not matter."""
    return {k: _REGISTRY[k] for k in sorted(_REGISTRY, key=_run_order)}
