"""Judging one vector: the calls its ``kind`` and ``result`` call for, and what each outcome means.

A valid vector is held to every capability the adapter declares (info, map, whole-guest and probe
reads, or apply and the files after it); an invalid one must be refused, cleanly (exit 65), by
every call of its refusal plan (info, map and a read where the bitmap bit is 0, or the apply of
an op vector); an acceptable one follows the adapter's declared policy,
or may go either way when it declared none. Each judgement is one :class:`CheckResult`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from addcow_conformance.harness.capabilities import Capabilities
from addcow_conformance.harness.compare import (
    after_file_mismatch,
    compare_info,
    compare_map,
    first_difference,
    virtual_size_of,
)
from addcow_conformance.harness.impl import CallResult
from addcow_conformance.harness.outcomes import CheckResult
from addcow_conformance.harness.refusal_reads import refusal_reads
from addcow_conformance.harness.sandbox import Sandbox
from addcow_conformance.protocol import (
    CMD_APPLY,
    CMD_INFO,
    CMD_MAP,
    CMD_READ,
    EXIT_REFUSED,
    EXIT_UNSUPPORTED,
    Policy,
)
from addcow_conformance.records import AfterBlock, ExpectBlock

__all__ = ["JudgeOptions", "VectorJudge"]


def _call_text(args: Sequence[str]) -> str:
    """A call as a report names it: the subcommand, and a read's range (``read [0, +1)``)."""
    if args and args[0] == CMD_READ and len(args) == 4:
        return f"read [{args[2]}, +{args[3]})"
    return args[0] if args else "?"


class JudgeOptions(Protocol):
    """The run options that change a verdict."""

    @property
    def timeout(self) -> float: ...
    @property
    def check_refusal_reason(self) -> bool: ...
    @property
    def lenient_refusal(self) -> bool: ...


class _Refused(Exception):
    """Raised inside a valid-vector run when a refusal is acceptable and ends the vector."""

    def __init__(self, result: CheckResult) -> None:
        self.result = result


class VectorJudge:
    """The calls and comparisons of one vector, made in its sandbox; ``results`` collects one
    :class:`CheckResult` per capability judged."""

    def __init__(self, sandbox: Sandbox, caps: Capabilities, options: JudgeOptions,
                 policy: Policy | None) -> None:
        self.sb = sandbox
        self.caps = caps
        self.options = options
        self.policy = policy
        self.v = sandbox.v
        self.image = sandbox.image
        self.results: list[CheckResult] = []

    def add(self, capability: str, outcome: str, message: str, **kw: Any) -> CheckResult:
        r = CheckResult(self.v.id, capability, outcome, message, rules=self.v.rules, **kw)
        self.results.append(r)
        return r

    def _status_outcome(self, r: CallResult) -> str | None:
        """Outcome for a call that should have succeeded, or None when it exited 0."""
        if r.timed_out:
            return "timeout"
        if r.signal is not None:
            return "crash"
        if r.exit_code == 0:
            return None
        if r.exit_code == EXIT_UNSUPPORTED:
            return "skip"
        if r.exit_code == EXIT_REFUSED:
            return "fail"
        return "crash"

    def _refusal_json(self, r: CallResult) -> Any:
        try:
            return json.loads(r.stdout_bytes(1 << 16))
        except ValueError:
            return None

    def _unsuccessful(self, capability: str, r: CallResult, expected: Any) -> bool:
        """Record a non-zero call on a valid vector; True when it ended the check."""
        outcome = self._status_outcome(r)
        if outcome is None:
            return False
        ctx: dict[str, Any] = {"stderr": r.stderr, "args": list(r.args)}
        actual: Any = {"status": r.status_text}
        lenient = (
            self.options.lenient_refusal
            and outcome == "crash"
            and r.signal is None
            and self.refusal_allowed
        )
        if r.exit_code == EXIT_REFUSED or lenient:
            actual["refusal"] = self._refusal_json(r)
            if self.refusal_allowed:
                if lenient:
                    ctx["unclean"] = True
                how = "not cleanly (--lenient-refusal)" if lenient else "cleanly"
                res = CheckResult(
                    self.v.id,
                    capability,
                    "pass",
                    f"refused {how}; the vector is acceptable and no policy was declared",
                    expected=expected,
                    actual=actual,
                    rules=self.v.rules,
                    context={**ctx, "verdict": "refused"},
                    duration_ms=r.duration_ms,
                )
                raise _Refused(res)
            message = f"refused a valid image (exit {EXIT_REFUSED})"
        elif outcome == "skip":
            message = f"not supported (exit {EXIT_UNSUPPORTED})"
        elif outcome == "timeout":
            message = f"no answer within {self.options.timeout:g} s"
        else:
            message = f"crashed ({r.status_text})"
        self.add(capability, outcome, message, expected=expected, actual=actual, context=ctx,
                 duration_ms=r.duration_ms,
                 reproduce=self.sb.reproduce(r.args) if outcome != "skip" else None)
        return True

    # -- checks of valid behaviour -------------------------------------------------------

    refusal_allowed = False

    def check_info(self, expected: Mapping[str, Any], capability: str = "info") -> None:
        if not self.caps.has("info"):
            self.add(capability, "skip", "the adapter does not declare 'info'")
            return
        args = [CMD_INFO, str(self.image)]
        r = self.sb.call(args)
        if self._unsuccessful(capability, r, {"info": dict(expected)}):
            return
        actual: Any = None
        try:
            actual = json.loads(r.stdout_bytes())
            problem = "" if isinstance(actual, dict) else "stdout is not one JSON object"
        except ValueError as e:
            problem = f"stdout is not JSON ({e})"
        if problem or not isinstance(actual, dict):
            self.add(capability, "fail", problem, expected={"info": dict(expected)},
                     actual={"stdout": r.stdout_bytes(2000).decode("utf-8", "replace")},
                     duration_ms=r.duration_ms, reproduce=self.sb.reproduce(args))
            return
        mismatches, ignored = compare_info(expected, actual)
        if mismatches:
            fields = ", ".join(m["field"] for m in mismatches)
            self.add(capability, "fail", f"info differs in {fields}",
                     expected={m["field"]: m["expected"] for m in mismatches},
                     actual={m["field"]: m["actual"] for m in mismatches},
                     context={"mismatches": mismatches, "not_reported": ignored},
                     duration_ms=r.duration_ms, reproduce=self.sb.reproduce(args))
        else:
            ctx = {"not_reported": ignored} if ignored else {}
            self.add(capability, "pass", "info matches", context=ctx, duration_ms=r.duration_ms)

    def check_map(self, expected: list[Any], capability: str = "map") -> None:
        if not self.caps.has("map"):
            self.add(capability, "skip", "the adapter does not declare 'map'")
            return
        args = [CMD_MAP, str(self.image)]
        r = self.sb.call(args)
        if self._unsuccessful(capability, r, {"extents": expected}):
            return
        try:
            actual = json.loads(r.stdout_bytes())
        except ValueError as e:
            self.add(capability, "fail", f"stdout is not JSON ({e})",
                     expected={"extents": expected},
                     actual={"stdout": r.stdout_bytes(2000).decode("utf-8", "replace")},
                     duration_ms=r.duration_ms, reproduce=self.sb.reproduce(args))
            return
        problem = compare_map(expected, actual)
        if problem is None:
            self.add(capability, "pass", "map matches", duration_ms=r.duration_ms)
            return
        self.add(capability, "fail", problem.message, expected={"extents": expected},
                 actual={"extents": actual}, context={"first_difference_offset": problem.offset},
                 duration_ms=r.duration_ms, reproduce=self.sb.reproduce(args))

    def check_read(
        self,
        offset: int,
        length: int,
        sha256: str,
        label: str,
        capability: str = "read",
        reference: Callable[[], Any] | None = None,
    ) -> None:
        if not self.caps.has("read"):
            self.add(capability, "skip", "the adapter does not declare 'read'")
            return
        args = [CMD_READ, str(self.image), str(offset), str(length)]
        expected = {"offset": offset, "length": length, "sha256": sha256, "what": label}
        r = self.sb.call(args)
        if self._unsuccessful(capability, r, expected):
            return
        size, digest = r.stdout_size, r.stdout_sha256
        if size == length and digest == sha256:
            self.add(
                capability, "pass", f"{label}: {length} bytes match", duration_ms=r.duration_ms
            )
            return
        actual: dict[str, Any] = {"length": size, "sha256": digest}
        if size != length:
            message = f"{label}: printed {size} bytes, expected exactly {length}"
        else:
            message = f"{label}: bytes differ"
        if reference is not None:
            with contextlib.suppress(Exception):
                # Only the first stdout_kept bytes were stored; a difference later is unlocated.
                stored = min(length, r.stdout_kept)
                diff = first_difference(reference(), r.stdout_path, offset, stored)
                if diff is not None:
                    actual["first_difference"] = diff
                    message += (
                        f"; first differing byte at guest offset 0x{diff['offset']:x}"
                        f" (expected 0x{diff['expected']:02x}, got "
                        + ("EOF" if diff["actual"] is None else f"0x{diff['actual']:02x}")
                        + ", per the reference implementation)"
                    )
        self.add(capability, "fail", message, expected=expected, actual=actual,
                 duration_ms=r.duration_ms, reproduce=self.sb.reproduce(args) + " | sha256sum")

    def check_contents(self, expect: ExpectBlock | AfterBlock, with_reference: bool) -> None:
        info = expect.get("info")
        extents = expect.get("extents")
        if isinstance(info, Mapping):
            self.check_info(info)
        if isinstance(extents, list):
            self.check_map(extents)
        reference = self.sb.reference_opener() if with_reference else None
        guest = expect.get("guest_sha256")
        size = virtual_size_of(expect)
        if isinstance(guest, str) and size is not None:
            self.check_read(0, size, guest, "whole guest", reference=reference)
        # A read vector's probes, or an ``after`` block's where the whole guest is left open.
        for probe in expect.get("probes") or []:
            off, ln = int(probe["offset"]), int(probe["length"])
            self.check_read(
                off, ln, str(probe["sha256"]), f"probe [{off}, +{ln})", reference=reference
            )

    def check_refused_reads(self) -> None:
        """Reads past the end of the disk must be refused (exit 65), never clipped."""
        for rng in self.v.expect.get("refused_reads") or [] if self.caps.has("read") else []:
            args = [CMD_READ, str(self.image), str(rng["offset"]), str(rng["length"])]
            r = self.sb.call(args)
            expected = {"refusal": {"rules": ["READ-RANGE"]}, "read": dict(rng)}
            if r.exit_code != 0:
                self._judge_refusal("read", r, expected, {"stderr": r.stderr}, r.duration_ms)
                continue
            self.add("read", "fail", f"read [{rng['offset']}, +{rng['length']}) past the end "
                     f"answered {r.stdout_size} bytes: it must be refused, never clipped",
                     expected=expected, actual={"status": r.status_text}, duration_ms=r.duration_ms,
                     reproduce=self.sb.reproduce(args))

    def check_valid(self) -> None:
        expect = self.v.expect
        if self.v.kind == "op":
            self.check_apply(expect)
            return
        before = len(self.results)
        self.check_contents(expect, with_reference=True)
        self.check_refused_reads()
        if len(self.results) == before:
            # Nothing to compare: the image must at least be accepted.
            self.check_accepted()

    def check_accepted(self) -> None:
        args = [CMD_INFO, str(self.image)]
        r = self.sb.call(args)
        if not self._unsuccessful("info", r, {"accepted": True}):
            self.add("info", "pass", "accepted", duration_ms=r.duration_ms)

    def check_apply(self, expect: ExpectBlock) -> None:
        ops = expect.get("ops", self.v.raw.get("ops"))
        if not isinstance(ops, list):
            self.add("apply", "harness-error", "op vector without an 'ops' list")
            return
        missing = [r for r in self.v.requires if r.startswith("apply") and not self.caps.has(r)]
        if missing or not self.caps.has("apply"):
            what = ", ".join(missing) or "apply"
            self.add("apply", "skip", f"needs {what}, which the adapter does not declare")
            return
        self.sb.write_ops(ops)
        args = [CMD_APPLY, str(self.image), str(self.sb.ops_path)]
        after = expect.get("after") or {}
        r = self.sb.call(args)
        if isinstance(expect.get("refusal"), Mapping):
            # The operation must be refused (e.g. a write to a v1 image) and change nothing.
            expected = {"refusal": {"rules": self.allowed_rules()}}
            if r.exit_code == 0:
                self.add("apply", "fail", "applied operations that must be refused",
                         expected=expected, actual={"status": r.status_text},
                         duration_ms=r.duration_ms, reproduce=self.sb.reproduce(args))
                return
            if not self._judge_refusal("apply", r, expected, {"stderr": r.stderr},
                                       r.duration_ms):
                return
        elif self._unsuccessful("apply", r, {"after": after.get("files")}):
            return
        mismatches = []
        paths = {f.role: f.path for f in self.v.files}
        for f in after.get("files") or []:
            rel = f.get("path") or paths.get(f.get("role", ""))
            if rel is None:
                self.add("apply", "harness-error", f"after.files: no path for role {f!r}")
                return
            problem = after_file_mismatch(self.sb.vdir / rel, f)
            if problem is not None:
                expected, actual = problem
                mismatches.append(
                    {"role": f.get("role"), "path": rel, "expected": expected, "actual": actual}
                )
        if mismatches:
            self.add("apply", "fail",
                     "resulting files differ: " + ", ".join(str(m["path"]) for m in mismatches),
                     expected={m["path"]: m["expected"] for m in mismatches},
                     actual={m["path"]: m["actual"] for m in mismatches}, context={"ops": ops},
                     duration_ms=r.duration_ms, reproduce=self.sb.reproduce(args))
        elif r.exit_code == 0:
            self.add(
                "apply", "pass", f"{len(ops)} ops applied; files match", duration_ms=r.duration_ms
            )
        self.check_contents(after, with_reference=False)

    # -- refusals ----------------------------------------------------------------------------

    def allowed_rules(self) -> list[str]:
        """Rules a refusal may cite: what the vector breaks, and the one it says to cite."""
        rules = list(self.v.violates)
        refusal = self.v.expect.get("refusal")
        cite = refusal.get("rule") if isinstance(refusal, Mapping) else None
        if isinstance(cite, str) and cite not in rules:
            rules.append(cite)
        return rules

    def refusal_plan(self) -> list[tuple[str, list[str]]]:
        """The calls that must each refuse the image: ``apply`` for op vectors; otherwise
        ``info``, ``map`` and reads of where the bitmap bit is 0 (``refusal_reads``), since an
        implementation that checks the image only in ``info`` and ``map``, and answers a read
        from the bitmap and the backing file, accepts the image as surely as one that opens it."""
        if self.v.kind == "op":
            ops = self.v.expect.get("ops", self.v.raw.get("ops", []))
            self.sb.write_ops(ops)
            return [(CMD_APPLY, [CMD_APPLY, str(self.image), str(self.sb.ops_path)])]
        plan = [(CMD_INFO, [CMD_INFO, str(self.image)]), (CMD_MAP, [CMD_MAP, str(self.image)])]
        for rng in refusal_reads(self.image):
            plan.append((CMD_READ, [CMD_READ, str(self.image), str(rng["offset"]),
                                    str(rng["length"])]))
        return plan

    def check_refused(self, why: str) -> None:
        """An invalid image (or an acceptable one under a 'refuse' policy) must be refused.

        Every call of the plan (:meth:`refusal_plan`) the adapter declares is made, and each must
        refuse (READ-DUTY: the reader refuses the image, whatever it is asked). A call that
        succeeds is a failure, with the calls that refused named, so an implementation that
        refuses only in some calls (only when a read reaches the backing file, say) is told
        which. When every call refuses, a refusal that is not clean (a traceback's exit 1, a
        signal, a timeout) decides, else the first, whose rule ``--check-refusal-reason``
        checks; a call that is not supported (exit 69) is left out, and all of them makes a skip.
        """
        expected = {"refusal": {"rules": self.allowed_rules()}, "why": why}
        plan = [(cap, args) for cap, args in self.refusal_plan() if self.caps.has(cap)]
        if not plan:
            self.add("info", "skip", "the adapter declares none of the calls this vector needs")
            return
        calls: list[dict[str, Any]] = []
        made: list[tuple[str, CallResult]] = []
        total = 0.0
        for cap, args in plan:
            r = self.sb.call(args)
            total += r.duration_ms
            calls.append({"args": list(r.args), "status": r.status_text, "stderr": r.stderr})
            made.append((cap, r))
        accepted = [(cap, r) for cap, r in made if r.exit_code == 0]
        refusing = [(cap, r) for cap, r in made if r.exit_code not in (0, EXIT_UNSUPPORTED)]
        broken = ", ".join(self.v.violates) or "its flags"
        if accepted:
            cap0, first = accepted[0]
            message = f"accepted an image that breaks {broken}"
            if refusing:
                message += (" (" + ", ".join(_call_text(r.args) for _, r in accepted)
                            + " succeeded; refused only by "
                            + ", ".join(_call_text(r.args) for _, r in refusing)
                            + ": every call must refuse it)")
            self.add(cap0, "fail", message, expected=expected,
                     actual={"accepted": True, "accepted_by": [list(r.args) for _, r in accepted]},
                     context={"calls": calls}, duration_ms=total,
                     reproduce=self.sb.reproduce(first.args))
            return
        if not refusing:
            self.add(plan[0][0], "skip", f"not supported (exit {EXIT_UNSUPPORTED})",
                     context={"calls": calls})
            return
        cap, r = next(((c, x) for c, x in refusing if x.exit_code != EXIT_REFUSED), refusing[0])
        self._judge_refusal(cap, r, expected, {"calls": calls}, total)

    def _judge_refusal(
        self, cap: str, r: CallResult, expected: dict[str, Any], ctx: dict[str, Any], total: float
    ) -> bool:
        """Record a call that had to refuse and did not exit 0; True for a clean refusal."""
        repro = self.sb.reproduce(r.args)
        if r.timed_out:
            self.add(cap, "timeout", f"no answer within {self.options.timeout:g} s",
                     expected=expected, context=ctx, duration_ms=total, reproduce=repro)
        elif r.signal is not None:
            self.add(cap, "crash", f"crashed ({r.status_text})", expected=expected,
                     actual={"status": r.status_text}, context=ctx, duration_ms=total,
                     reproduce=repro)
        elif r.exit_code == EXIT_UNSUPPORTED:
            self.add(cap, "skip", f"not supported (exit {EXIT_UNSUPPORTED})", context=ctx,
                     duration_ms=total)
        elif r.exit_code == EXIT_REFUSED:
            return self._clean_refusal(cap, r, expected, ctx, total, repro)
        else:
            actual = {"status": r.status_text}
            if self.options.lenient_refusal:
                ctx["unclean"] = True
                self.add(cap, "pass", f"refused, but not cleanly ({r.status_text}; "
                         "counted as a refusal by --lenient-refusal)", expected=expected,
                         actual=actual, context=ctx, duration_ms=total)
                return True
            self.add(cap, "refused-unclean", f"refused with {r.status_text} instead of "
                     f"exit {EXIT_REFUSED} (a crash looks the same)", expected=expected,
                     actual=actual, context=ctx, duration_ms=total, reproduce=repro)
        return False

    def _clean_refusal(
        self,
        cap: str,
        r: CallResult,
        expected: dict[str, Any],
        ctx: dict[str, Any],
        total: float,
        repro: str,
    ) -> bool:
        refusal = self._refusal_json(r)
        rule = refusal.get("rule") if isinstance(refusal, dict) else None
        actual = {"status": r.status_text, "refusal": refusal}
        allowed = self.allowed_rules()
        if rule is not None and allowed and rule not in allowed:
            if self.options.check_refusal_reason:
                self.add(cap, "fail", f"refused for the wrong reason: {rule}, expected "
                         f"{' or '.join(allowed)}", expected=expected, actual=actual,
                         context=ctx, duration_ms=total, reproduce=repro)
                return False
            ctx["other_reason"] = rule
        elif rule is None and self.options.check_refusal_reason and allowed:
            self.add(cap, "fail", "refused without naming a rule (--check-refusal-reason)",
                     expected=expected, actual=actual, context=ctx, duration_ms=total,
                     reproduce=repro)
            return False
        why = f" ({rule})" if rule else ""
        self.add(cap, "pass", f"refused cleanly{why}", expected=expected, actual=actual,
                 context={**ctx, "verdict": "refused"}, duration_ms=total)
        return True

    # -- driver -------------------------------------------------------------------------------

    def unmet(self) -> list[str]:
        """Requirements that skip the whole vector: features, and for op vectors ``apply:*``.

        A missing ``info``, ``map`` or ``read`` only skips that check: an adapter without
        ``map`` is still held to its reads.
        """
        return [
            req
            for req in self.v.requires
            if not self.caps.has(req) and req.partition(":")[0] not in ("info", "map", "read")
        ]

    def run(self) -> None:
        missing = self.unmet()
        if missing:
            cap = "apply" if self.v.kind == "op" else "info"
            self.add(cap, "skip", f"needs {', '.join(missing)}, which the adapter does not declare")
            return
        self.sb.setup()
        if self.v.result == "invalid":
            self.check_refused("invalid")
        elif self.v.result == "acceptable":
            # A reader MUST open a file whose only faults are rules with reader duty "ignore":
            # no declared policy makes a refusal of it conform.
            policy = "accept" if self.v.expect.get("reader_duty") == "ignore" else self.policy
            if policy == "refuse":
                self.check_refused("acceptable; the adapter's policy is 'refuse'")
            else:
                self.refusal_allowed = policy is None
                try:
                    self.check_valid()
                except _Refused as e:
                    self.results.append(e.result)
                else:
                    for res in self.results:
                        res.context.setdefault("verdict", "accepted")
        else:
            self.check_valid()
