"""Run one implementation over a selection of vectors and compare what it did (STYLE (d)).

Per vector: copy its files to a fresh scratch directory (``synth: zeros`` files created sparse),
make the calls its ``kind`` and ``result`` call for, compare, then re-hash the originals so an
adapter that writes outside its copy is caught. The adapter runs with its working directory set
to the scratch root, not the vector's directory, so names resolved against the CWD instead of
the add-cow file's directory (rule READ-NAME-RELATIVE) fail.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import importlib
import json
import re
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from addcow_conformance.harness.compare import (
    compare_info,
    compare_map,
    first_difference,
    normalize_int,
)
from addcow_conformance.harness.impl import CallResult, Impl, ProcessImpl
from addcow_conformance.harness.known_failures import KnownFailures
from addcow_conformance.harness.manifest import Manifest, Vector, file_sha256, verify_sums
from addcow_conformance.harness.outcomes import (
    EXIT_REFUSED,
    EXIT_UNSUPPORTED,
    FAILING,
    UNEXPECTED,
    CheckResult,
    worst,
)

__all__ = ["Capabilities", "RunOptions", "RunResult", "Runner", "probe_capabilities"]

_CALLS = frozenset({"info", "read", "map", "apply"})


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What the adapter declared; ``supports``/``features`` of None = it did not say."""

    name: str
    version: str
    supports: frozenset[str] | None
    features: frozenset[str] | None
    policies: Mapping[str, str]
    note: str | None = None

    def has(self, requirement: str) -> bool:
        call = requirement.partition(":")[0]
        if call in _CALLS:
            if self.supports is None:
                return True
            if requirement in self.supports or call in self.supports:
                return True
            return requirement == call and any(s.startswith(call + ":") for s in self.supports)
        return self.features is None or requirement in self.features

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "supports": sorted(self.supports) if self.supports is not None else None,
            "features": sorted(self.features) if self.features is not None else None,
            "policies": dict(self.policies),
            "note": self.note,
        }


@dataclasses.dataclass(frozen=True)
class RunOptions:
    timeout: float = 10.0
    jobs: int = 1
    check_refusal_reason: bool = False
    lenient_refusal: bool = False
    strict_known_failures: bool = False
    exitfirst: bool = False
    work_dir: Path | None = None
    keep_scratch: bool = False


@dataclasses.dataclass
class RunResult:
    manifest: Manifest
    vectors_dir: Path
    impl_text: str
    capabilities: Capabilities
    options: RunOptions
    results: list[CheckResult]
    vector_outcomes: dict[str, str]
    duration_s: float
    scratch_dir: Path | None

    def unexpected(self) -> list[CheckResult]:
        bad = set(UNEXPECTED)
        if self.options.strict_known_failures:
            bad.add("xpass")
        return [r for r in self.results if r.outcome in bad]

    @property
    def exit_code(self) -> int:
        return 1 if self.unexpected() else 0


def probe_capabilities(impl: Impl, work: Path, timeout: float) -> Capabilities:
    """Ask the adapter ``capabilities``; an adapter without it is assumed to support everything."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / "capabilities.out"
    r = impl.call(["capabilities"], cwd=work, stdout_path=out, timeout=timeout)
    unknown = Capabilities(impl.text, "", None, None, {})
    if r.exit_code != 0:
        return dataclasses.replace(
            unknown, note=f"'capabilities' {r.status_text}: assuming every call is supported"
        )
    try:
        data = json.loads(r.stdout_bytes(1 << 20))
        if not isinstance(data, dict):
            raise ValueError("not an object")
        supports = data.get("supports")
        features = data.get("features")
        policies = data.get("policies") or {}
        if not isinstance(policies, dict):
            raise ValueError("'policies' is not an object")
        return Capabilities(
            name=str(data.get("name", impl.text)),
            version=str(data.get("version", "")),
            supports=frozenset(map(str, supports)) if isinstance(supports, list) else None,
            features=frozenset(map(str, features)) if isinstance(features, list) else None,
            policies={str(k): v for k, v in policies.items() if v in ("accept", "refuse")},
            note=None
            if all(v in ("accept", "refuse") for v in policies.values())
            else "'capabilities': policies other than accept/refuse were ignored",
        )
    except ValueError as e:
        return dataclasses.replace(
            unknown, note=f"'capabilities' printed unusable JSON ({e}): assuming everything"
        )


def _slug(vid: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "_", vid.lower())[:80]


class _Refused(Exception):
    """Raised inside a valid-vector run when a refusal is acceptable and ends the vector."""

    def __init__(self, result: CheckResult) -> None:
        self.result = result


class _VectorRun:
    """The calls and comparisons of one vector, in its own scratch directory."""

    def __init__(self, runner: Runner, vector: Vector, scratch: Path) -> None:
        self.runner = runner
        self.impl = runner.impl
        self.caps = runner.capabilities
        self.options = runner.options
        self.v = vector
        self.scratch = scratch
        self.vdir = scratch / "v"
        self.image = self.vdir / vector.entry
        self.ops_path = scratch / "ops.json"
        self.results: list[CheckResult] = []
        self._n = 0

    # -- plumbing -------------------------------------------------------------------------

    def setup(self) -> None:
        shutil.copytree(self.v.directory, self.vdir, copy_function=shutil.copyfile)
        for f in self.v.files:
            if f.synth is None:
                continue
            if f.synth != "zeros":
                raise ValueError(f"file {f.path}: unknown synth kind {f.synth!r}")
            p = self.vdir / f.path
            p.parent.mkdir(parents=True, exist_ok=True)
            with p.open("wb") as fh:
                fh.truncate(f.size)  # sparse: no data blocks written

    def call(self, args: Sequence[str]) -> CallResult:
        self._n += 1
        out = self.scratch / f"call{self._n:02d}-{args[0]}.out"
        return self.impl.call(args, cwd=self.scratch, stdout_path=out, timeout=self.options.timeout)

    def reproduce(self, args: Sequence[str]) -> str:
        """A shell line that redoes one call on a fresh copy of the pristine vector."""
        dest = "/tmp/addcow-repro"
        steps = [f"rm -rf {dest}", f"cp -r {shlex.quote(str(self.v.directory))} {dest}"]
        for f in self.v.files:
            if f.synth == "zeros":
                steps.append(f"truncate -s {f.size} {shlex.quote(dest + '/' + f.path)}")
        applied = self.v.kind == "op" and self.ops_path.exists()
        if applied:
            steps.append(f"cp {shlex.quote(str(self.ops_path))} {dest}.ops.json")
        steps.append("cd /tmp")

        def command(words: Sequence[str]) -> str:
            mapped = []
            for a in words:
                if a == str(self.image):
                    mapped.append(f"{dest}/{self.v.entry}")
                elif a == str(self.ops_path):
                    mapped.append(f"{dest}.ops.json")
                else:
                    mapped.append(a)
            return self.impl.command_line(mapped)

        if applied and args[0] != "apply":
            # A check of the state after the operations: redo them first.
            steps.append(command(["apply", str(self.image), str(self.ops_path)]))
        steps.append(command(args))
        return " && ".join(steps)

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
            message = "refused a valid image (exit 65)"
        elif outcome == "skip":
            message = "not supported (exit 69)"
        elif outcome == "timeout":
            message = f"no answer within {self.options.timeout:g} s"
        else:
            message = f"crashed ({r.status_text})"
        self.add(
            capability,
            outcome,
            message,
            expected=expected,
            actual=actual,
            context=ctx,
            duration_ms=r.duration_ms,
            reproduce=self.reproduce(r.args) if outcome != "skip" else None,
        )
        return True

    # -- checks of valid behaviour -------------------------------------------------------

    refusal_allowed = False

    def check_info(self, expected: Mapping[str, Any], capability: str = "info") -> None:
        if not self.caps.has("info"):
            self.add(capability, "skip", "the adapter does not declare 'info'")
            return
        args = ["info", str(self.image)]
        r = self.call(args)
        if self._unsuccessful(capability, r, {"info": dict(expected)}):
            return
        actual: Any = None
        try:
            actual = json.loads(r.stdout_bytes())
            problem = "" if isinstance(actual, dict) else "stdout is not one JSON object"
        except ValueError as e:
            problem = f"stdout is not JSON ({e})"
        if problem or not isinstance(actual, dict):
            self.add(
                capability,
                "fail",
                problem,
                expected={"info": dict(expected)},
                actual={"stdout": r.stdout_bytes(2000).decode("utf-8", "replace")},
                duration_ms=r.duration_ms,
                reproduce=self.reproduce(args),
            )
            return
        mismatches, ignored = compare_info(expected, actual)
        if mismatches:
            fields = ", ".join(m["field"] for m in mismatches)
            self.add(
                capability,
                "fail",
                f"info differs in {fields}",
                expected={m["field"]: m["expected"] for m in mismatches},
                actual={m["field"]: m["actual"] for m in mismatches},
                context={"mismatches": mismatches, "not_reported": ignored},
                duration_ms=r.duration_ms,
                reproduce=self.reproduce(args),
            )
        else:
            ctx = {"not_reported": ignored} if ignored else {}
            self.add(capability, "pass", "info matches", context=ctx, duration_ms=r.duration_ms)

    def check_map(self, expected: list[Any], capability: str = "map") -> None:
        if not self.caps.has("map"):
            self.add(capability, "skip", "the adapter does not declare 'map'")
            return
        args = ["map", str(self.image)]
        r = self.call(args)
        if self._unsuccessful(capability, r, {"extents": expected}):
            return
        try:
            actual = json.loads(r.stdout_bytes())
        except ValueError as e:
            self.add(
                capability,
                "fail",
                f"stdout is not JSON ({e})",
                expected={"extents": expected},
                actual={"stdout": r.stdout_bytes(2000).decode("utf-8", "replace")},
                duration_ms=r.duration_ms,
                reproduce=self.reproduce(args),
            )
            return
        problem = compare_map(expected, actual)
        if problem is None:
            self.add(capability, "pass", "map matches", duration_ms=r.duration_ms)
            return
        self.add(
            capability,
            "fail",
            problem.message,
            expected={"extents": expected},
            actual={"extents": actual},
            context={"first_difference_offset": problem.offset},
            duration_ms=r.duration_ms,
            reproduce=self.reproduce(args),
        )

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
        args = ["read", str(self.image), str(offset), str(length)]
        expected = {"offset": offset, "length": length, "sha256": sha256, "what": label}
        r = self.call(args)
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
        self.add(
            capability,
            "fail",
            message,
            expected=expected,
            actual=actual,
            duration_ms=r.duration_ms,
            reproduce=self.reproduce(args) + " | sha256sum",
        )

    def _reference_opener(self) -> Callable[[], Any]:
        """Open the pristine vector with the reference library, for diagnosing read diffs."""

        def open_reference() -> Any:
            # Optional diagnostics only: the judgement never depends on the reference.
            import addcow_ref

            opener = getattr(addcow_ref, "open_image", None)
            if opener is None:  # pragma: no cover - until the public API re-exports it
                opener = importlib.import_module("addcow_ref.engine.image").open_image

            ref_dir = self.scratch / "reference"
            if not ref_dir.exists():
                shutil.copytree(self.v.directory, ref_dir, copy_function=shutil.copyfile)
                for f in self.v.files:
                    if f.synth == "zeros":
                        with (ref_dir / f.path).open("wb") as fh:
                            fh.truncate(f.size)
            return opener(str(ref_dir / self.v.entry))

        return open_reference

    def check_contents(self, expect: Mapping[str, Any], with_reference: bool) -> None:
        info = expect.get("info")
        extents = expect.get("extents")
        if isinstance(info, Mapping):
            self.check_info(info)
        if isinstance(extents, list):
            self.check_map(extents)
        reference = self._reference_opener() if with_reference else None
        guest = expect.get("guest_sha256")
        size = _virtual_size(expect)
        if isinstance(guest, str) and size is not None:
            self.check_read(0, size, guest, "whole guest", reference=reference)
        for probe in expect.get("probes") or []:
            off, ln = int(probe["offset"]), int(probe["length"])
            self.check_read(
                off, ln, str(probe["sha256"]), f"probe [{off}, +{ln})", reference=reference
            )

    def check_valid(self) -> None:
        expect = self.v.expect
        if self.v.kind == "op":
            self.check_apply(expect)
            return
        before = len(self.results)
        self.check_contents(expect, with_reference=True)
        if len(self.results) == before:
            # Nothing to compare: the image must at least be accepted.
            self.check_accepted()

    def check_accepted(self) -> None:
        args = ["info", str(self.image)]
        r = self.call(args)
        if not self._unsuccessful("info", r, {"accepted": True}):
            self.add("info", "pass", "accepted", duration_ms=r.duration_ms)

    def check_apply(self, expect: Mapping[str, Any]) -> None:
        ops = expect.get("ops", self.v.raw.get("ops"))
        if not isinstance(ops, list):
            self.add("apply", "harness-error", "op vector without an 'ops' list")
            return
        missing = [r for r in self.v.requires if r.startswith("apply") and not self.caps.has(r)]
        if missing or not self.caps.has("apply"):
            what = ", ".join(missing) or "apply"
            self.add("apply", "skip", f"needs {what}, which the adapter does not declare")
            return
        self.ops_path.write_text(json.dumps(ops, indent=1) + "\n", "utf-8")
        args = ["apply", str(self.image), str(self.ops_path)]
        after = expect.get("after") or {}
        r = self.call(args)
        if isinstance(expect.get("refusal"), Mapping):
            # The operation must be refused (e.g. a write to a v1 image) and change nothing.
            expected = {"refusal": {"rules": self.allowed_rules()}}
            if r.exit_code == 0:
                self.add("apply", "fail", "applied operations that must be refused",
                         expected=expected, actual={"status": r.status_text},
                         duration_ms=r.duration_ms, reproduce=self.reproduce(args))
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
            p = self.vdir / rel
            actual: dict[str, Any]
            if not p.is_file():
                actual = {"missing": True}
            else:
                actual = {"size": p.stat().st_size, "sha256": file_sha256(p)}
            exp = {k: f[k] for k in ("size", "sha256") if k in f}
            if any(actual.get(k) != v for k, v in exp.items()):
                mismatches.append(
                    {"role": f.get("role"), "path": rel, "expected": exp, "actual": actual}
                )
        if mismatches:
            self.add(
                "apply",
                "fail",
                "resulting files differ: " + ", ".join(str(m["path"]) for m in mismatches),
                expected={m["path"]: m["expected"] for m in mismatches},
                actual={m["path"]: m["actual"] for m in mismatches},
                context={"ops": ops},
                duration_ms=r.duration_ms,
                reproduce=self.reproduce(args),
            )
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

    def check_refused(self, why: str) -> None:
        """An invalid image (or an acceptable one under a 'refuse' policy) must be refused.

        The calls are made in order (info, map; apply for op vectors); the first that does not
        succeed decides. Accepting in every call is a failure; a non-clean refusal (a traceback's
        exit 1, a signal) is ``refused-unclean`` unless ``--lenient-refusal``.
        """
        expected = {"refusal": {"rules": self.allowed_rules()}, "why": why}
        if self.v.kind == "op":
            ops = self.v.expect.get("ops", self.v.raw.get("ops", []))
            self.ops_path.write_text(json.dumps(ops, indent=1) + "\n", "utf-8")
            plan = [("apply", ["apply", str(self.image), str(self.ops_path)])]
        else:
            plan = [("info", ["info", str(self.image)]), ("map", ["map", str(self.image)])]
        plan = [(cap, args) for cap, args in plan if self.caps.has(cap)]
        if not plan:
            self.add("info", "skip", "the adapter declares none of the calls this vector needs")
            return
        calls: list[dict[str, Any]] = []
        total = 0.0
        for cap, args in plan:
            r = self.call(args)
            total += r.duration_ms
            calls.append({"args": list(r.args), "status": r.status_text, "stderr": r.stderr})
            if r.exit_code in (0, EXIT_UNSUPPORTED):
                continue
            self._judge_refusal(cap, r, expected, {"calls": calls}, total)
            return
        cap0 = plan[0][0]
        if all(c["status"] == f"exit {EXIT_UNSUPPORTED}" for c in calls):
            self.add(cap0, "skip", "not supported (exit 69)", context={"calls": calls})
            return
        broken = ", ".join(self.v.violates) or "its flags"
        self.add(
            cap0,
            "fail",
            f"accepted an image that breaks {broken}",
            expected=expected,
            actual={"accepted": True},
            context={"calls": calls},
            duration_ms=total,
            reproduce=self.reproduce(plan[0][1]),
        )

    def _judge_refusal(
        self, cap: str, r: CallResult, expected: dict[str, Any], ctx: dict[str, Any], total: float
    ) -> bool:
        """Record a call that had to refuse and did not exit 0; True for a clean refusal."""
        repro = self.reproduce(r.args)
        if r.timed_out:
            self.add(cap, "timeout", f"no answer within {self.options.timeout:g} s",
                     expected=expected, context=ctx, duration_ms=total, reproduce=repro)
        elif r.signal is not None:
            self.add(cap, "crash", f"crashed ({r.status_text})", expected=expected,
                     actual={"status": r.status_text}, context=ctx, duration_ms=total,
                     reproduce=repro)
        elif r.exit_code == EXIT_UNSUPPORTED:
            self.add(cap, "skip", "not supported (exit 69)", context=ctx, duration_ms=total)
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
        self.setup()
        if self.v.result == "invalid":
            self.check_refused("invalid")
        elif self.v.result == "acceptable":
            policy = self.runner.policy_for(self.v)
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


def _virtual_size(expect: Mapping[str, Any]) -> int | None:
    info = expect.get("info")
    for source in (expect, info if isinstance(info, Mapping) else {}):
        for key in ("virtual_size", "guest_size"):
            if key in source:
                value = normalize_int(source[key])
                if isinstance(value, int):
                    return value
    return None


class Runner:
    def __init__(
        self,
        impl: Impl,
        manifest: Manifest,
        vectors_dir: Path,
        options: RunOptions,
        known_failures: KnownFailures | None = None,
        progress: Callable[[Vector, str], None] | None = None,
    ) -> None:
        self.impl = impl
        self.manifest = manifest
        self.vectors_dir = vectors_dir
        self.options = options
        self.known = known_failures or KnownFailures()
        self.progress = progress
        self.capabilities = Capabilities(impl.text, "", None, None, {})
        self._stop = threading.Event()

    def policy_for(self, vector: Vector) -> str | None:
        """'refuse' if any flag's declared policy refuses, 'accept' if all accept, else None."""
        declared = [self.capabilities.policies.get(f) for f in vector.flags]
        if "refuse" in declared:
            return "refuse"
        if declared and all(d == "accept" for d in declared):
            return "accept"
        return None

    def check_integrity(self, vectors: Iterable[Vector]) -> list[str]:
        """Verify the selected vectors against SHA256SUMS and the manifest before running."""
        files = []
        problems = []
        for v in vectors:
            for f in v.files:
                if f.synth is not None:
                    continue
                p = v.directory / f.path
                files.append(p)
                if not p.is_file():
                    problems.append(f"{v.id}: {f.path} is missing")
                elif f.sha256 is not None and file_sha256(p) != f.sha256:
                    # Checked here too, or the re-hash after the run would blame the adapter.
                    problems.append(f"{v.id}: {f.path} differs from its manifest sha256")
        problems += verify_sums(self.vectors_dir, files)
        return problems

    def _rehash(self, v: Vector) -> list[str]:
        changed = []
        for f in v.files:
            if f.synth is None and f.sha256 is not None:
                p = v.directory / f.path
                if not p.is_file() or file_sha256(p) != f.sha256:
                    changed.append(f.path)
        return changed

    def run_one(self, index: int, v: Vector, work: Path) -> list[CheckResult]:
        scratch = work / f"{index:04d}-{_slug(v.id)}"
        scratch.mkdir(parents=True)
        vr = _VectorRun(self, v, scratch)
        try:
            vr.run()
        except Exception as e:
            vr.add("info", "harness-error", f"harness error: {type(e).__name__}: {e}")
        changed = self._rehash(v)
        if changed:
            vr.add(
                "apply" if v.kind == "op" else "info",
                "harness-error",
                f"original vector files changed during the run: {', '.join(changed)} "
                "(the adapter wrote outside its scratch copy?)",
            )
        results = self._apply_known_failures(v, vr.results)
        outcome = worst([r.outcome for r in results])
        if outcome in UNEXPECTED and self.options.exitfirst:
            self._stop.set()
        if not self.options.keep_scratch and outcome in ("pass", "skip", "xfail"):
            shutil.rmtree(scratch, ignore_errors=True)
        if self.progress is not None:
            self.progress(v, outcome)
        return results

    def _apply_known_failures(self, v: Vector, results: list[CheckResult]) -> list[CheckResult]:
        entry = self.known.lookup(v.id)
        if entry is None:
            return results
        failing = any(r.outcome in FAILING for r in results)
        for r in results:
            if r.outcome in FAILING:
                r.context["known_failure"] = {"reason": entry.reason, "bug": entry.bug}
                r.outcome = "xfail"
            elif r.outcome == "pass" and not failing:
                r.context["known_failure"] = {"reason": entry.reason, "bug": entry.bug}
                r.outcome = "xpass"
                r.message += " (listed in known failures: remove the entry)"
        return results

    def run(self, vectors: Sequence[Vector]) -> RunResult:
        start = time.monotonic()
        created = self.options.work_dir is None
        if self.options.work_dir is None:
            work = Path(tempfile.mkdtemp(prefix="addcow-conformance-"))
        else:
            work = self.options.work_dir
        work.mkdir(parents=True, exist_ok=True)
        self.capabilities = probe_capabilities(
            self.impl, work / "capabilities", self.options.timeout
        )
        shutil.rmtree(work / "capabilities", ignore_errors=True)
        per_vector: dict[int, list[CheckResult]] = {}
        jobs = max(1, self.options.jobs)
        # Forking from several threads at once is unsafe: in-process adapters run one by one.
        if jobs == 1 or not isinstance(self.impl, ProcessImpl):
            for i, v in enumerate(vectors):
                if self._stop.is_set():
                    break
                per_vector[i] = self.run_one(i, v, work)
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = {}
                for i, v in enumerate(vectors):
                    futures[pool.submit(self._run_unless_stopped, i, v, work)] = i
                for fut in concurrent.futures.as_completed(futures):
                    per_vector[futures[fut]] = fut.result()
        results = [r for i in sorted(per_vector) for r in per_vector[i]]
        outcomes: dict[str, str] = {}
        for r in results:
            outcomes.setdefault(r.id, r.outcome)
            outcomes[r.id] = worst([outcomes[r.id], r.outcome])
        kept: Path | None = work
        if created and not self.options.keep_scratch:
            with contextlib.suppress(OSError):
                for leftover in work.iterdir():
                    if not any(leftover.iterdir()):
                        leftover.rmdir()
                if not any(work.iterdir()):
                    work.rmdir()
                    kept = None
        return RunResult(
            manifest=self.manifest,
            vectors_dir=self.vectors_dir,
            impl_text=self.impl.text,
            capabilities=self.capabilities,
            options=self.options,
            results=results,
            vector_outcomes=outcomes,
            duration_s=time.monotonic() - start,
            scratch_dir=kept,
        )

    def _run_unless_stopped(self, i: int, v: Vector, work: Path) -> list[CheckResult]:
        if self._stop.is_set():
            return []
        return self.run_one(i, v, work)

