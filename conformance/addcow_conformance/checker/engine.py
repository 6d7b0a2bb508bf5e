"""The rule engine: runs every registered check, in a fixed order, on every image.

The checks register themselves in ``registry`` when ``checks`` is imported; the engine imports
them and runs the table, and hands each image's context a way back into :func:`check_path` for
add-cow backing files, so no check imports the engine. A check that raises does not crash the
run: it becomes an internal error of that image (exit 1), never a traceback.
"""

from __future__ import annotations

import os

from addcow_conformance.checker import checks
from addcow_conformance.checker.context import (
    CannotCheckError,
    CheckContext,
    CheckOptions,
    FileIdentity,
    NotApplicableError,
    open_regular_file,
)
from addcow_conformance.checker.derive import involved_files
from addcow_conformance.checker.facts import collect_facts
from addcow_conformance.checker.findings import (
    Finding,
    InternalError,
    NotApplicable,
    Report,
    finding_of,
)
from addcow_conformance.checker.registry import RegisteredCheck, check, in_run_order
from addcow_ref.format.rules import all_rules
from addcow_ref.format.validate import Violation

__all__ = ["RegisteredCheck", "check", "check_path", "registry", "rules_not_for_checker"]

#: Every check module; importing them filled the registry.
CHECK_MODULES = checks.MODULES


def registry() -> dict[str, RegisteredCheck]:
    """Every registered check, in the order they run: by area, then as declared."""
    return in_run_order()


def rules_not_for_checker() -> dict[str, str]:
    """Rules no check of a file can decide, with the reason shown in every report."""
    out: dict[str, str] = {}
    registered = registry()
    for rule in all_rules().values():
        if rule.id in registered:
            continue
        if rule.testability == "untestable":
            out[rule.id] = f"untestable: {rule.reason or 'needs fault injection'}"
        elif rule.testability in ("reader", "writer"):
            out[rule.id] = (f"{rule.testability} rule: decided by what an implementation does, "
                            "not by the file's bytes")
        else:
            out[rule.id] = "no check is registered for this rule"
    return out


def _to_finding(ctx: CheckContext, rule_id: str, item: Violation | Finding) -> Finding:
    found = item if isinstance(item, Finding) else finding_of(item, ctx.path)
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
    options = options or CheckOptions()
    shown = os.fspath(path)
    report = Report(path=shown, fail_on_warning=options.fail_on_warning)
    try:
        fd, st = open_regular_file(shown, confine=options.confine)
    except CannotCheckError as e:
        report.error = f"cannot check {shown}: {e}"
        return report
    ctx: CheckContext | None = None
    try:
        ctx = CheckContext(shown, fd, st, options, chain=chain, depth=depth,
                           check_backing=check_path)
        run_checks(ctx, report)
        report.facts = collect_facts(ctx)
        report.involved = involved_files(ctx)
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
