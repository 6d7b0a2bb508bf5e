"""The rule engine: one registered check per rule ID, run in a fixed order on every image.

The registry is keyed by the spec's rule IDs (``addcow_ref.format.rules``), so a test can hold the
spec's list and the checker's list side by side. A check that raises does not crash the run: it
becomes an internal error of that image (exit 1), never a traceback.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable

from addcow_conformance.checker.context import (
    CannotCheckError,
    CheckContext,
    CheckOptions,
    FileIdentity,
    NotApplicableError,
    open_regular_file,
)
from addcow_conformance.checker.findings import Finding, InternalError, NotApplicable, Report
from addcow_ref.format.rules import all_rules
from addcow_ref.format.validate import Violation

__all__ = ["RegisteredCheck", "check", "check_path", "registry", "rules_not_for_checker"]

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


#: Areas in the order a reader meets them in the file; reports list findings in this order.
AREA_ORDER = ("HDR", "FEAT", "NAME", "FMT", "BMP", "IMG", "BACK", "V1")


def _run_order(rule_id: str) -> int:
    area = rule_id.split("-", 1)[0]
    return AREA_ORDER.index(area) if area in AREA_ORDER else len(AREA_ORDER)


def registry() -> dict[str, RegisteredCheck]:
    """Every registered check, in the order they run: by area, then as registered."""
    from addcow_conformance.checker import checks  # noqa: F401  (importing registers the checks)

    return {k: _REGISTRY[k] for k in sorted(_REGISTRY, key=_run_order)}


def rules_not_for_checker() -> dict[str, str]:
    """Rules no check of a file can decide, with the reason shown in every report."""
    out: dict[str, str] = {}
    checks = registry()
    for rule in all_rules().values():
        if rule.id in checks:
            continue
        if rule.testability == "untestable":
            out[rule.id] = f"untestable: {rule.reason or 'needs fault injection'}"
        elif rule.testability in ("reader", "writer"):
            out[rule.id] = (f"{rule.testability} rule: decided by what an implementation does, "
                            "not by the file's bytes")
        else:
            out[rule.id] = "no check is registered for this rule"
    return out


def _plain(text: str | None) -> str | None:
    """Constraint texts come from the schema in reST (``raw``); reports show plain text."""
    return None if text is None else text.replace("``", "")


def _to_finding(ctx: CheckContext, rule_id: str, item: Violation | Finding) -> Finding:
    if isinstance(item, Finding):
        found = item
    else:
        found = Finding.for_rule(item.rule_id, item.message, ctx.path, offset=item.offset,
                                 length=item.length, field=item.field,
                                 expected=_plain(item.expected), actual=_plain(item.actual))
    if found.rule != rule_id:
        raise RuntimeError(f"the check of {rule_id} reported a finding of {found.rule}")
    return found


def run_checks(ctx: CheckContext, report: Report) -> None:
    for rule_id, registered in registry().items():
        if registered.needs_header and ctx.header is None:
            report.rules_not_applicable.append(NotApplicable(rule_id, ctx.no_header_reason))
            continue
        try:
            found = [_to_finding(ctx, rule_id, item) for item in registered.func(ctx)]
        except NotApplicableError as e:
            report.rules_not_applicable.append(NotApplicable(rule_id, str(e)))
            continue
        except RecursionError:
            report.internal_errors.append(InternalError(rule_id, "recursion limit reached"))
            continue
        except Exception as e:
            report.internal_errors.append(InternalError(rule_id, f"{type(e).__name__}: {e}"))
            continue
        report.rules_checked.append(rule_id)
        report.findings.extend(found)
    for rule_id, reason in rules_not_for_checker().items():
        report.rules_not_applicable.append(NotApplicable(rule_id, reason))


def check_path(path: str | os.PathLike[str], options: CheckOptions | None = None, *,
               chain: tuple[FileIdentity, ...] = (), depth: int = 0) -> Report:
    """Check one add-cow file. ``chain`` and ``depth`` describe the add-cow files above it when
    it is checked as somebody's backing file."""
    from addcow_conformance.checker.facts import collect_facts

    options = options or CheckOptions()
    shown = os.fspath(path)
    report = Report(path=shown, fail_on_warning=options.fail_on_warning)
    try:
        fd, st = open_regular_file(shown)
    except CannotCheckError as e:
        report.error = f"cannot check {shown}: {e}"
        return report
    ctx: CheckContext | None = None
    try:
        ctx = CheckContext(shown, fd, st, options, chain=chain, depth=depth)
        run_checks(ctx, report)
        report.facts = collect_facts(ctx)
    except OSError as e:
        report.error = f"cannot check {shown}: {e.strerror or e}"
    except Exception as e:
        report.internal_errors.append(InternalError("", f"{type(e).__name__}: {e}"))
    finally:
        if ctx is not None:
            ctx.close()
        else:
            os.close(fd)
    return report
