"""Run one implementation over a selection of vectors: scheduling, known failures, the result.

Each vector gets its own sandbox (``sandbox.py``) and is judged there (``judge.py``); this module
decides the order and parallelism, stops early under ``--exitfirst``, turns listed known
failures into ``xfail``/``xpass``, blames the adapter when an original vector file changed, and
cleans the scratch directories of vectors that passed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from addcow_conformance.harness.capabilities import Capabilities, probe_capabilities
from addcow_conformance.harness.impl import Impl, ProcessImpl
from addcow_conformance.harness.judge import VectorJudge
from addcow_conformance.harness.known_failures import KnownFailures
from addcow_conformance.harness.manifest import Manifest, Vector
from addcow_conformance.harness.outcomes import FAILING, UNEXPECTED, CheckResult, worst
from addcow_conformance.harness.sandbox import (
    Sandbox,
    changed_originals,
    check_integrity,
    scratch_directory,
)
from addcow_conformance.protocol import CMD_APPLY, CMD_INFO, Policy

__all__ = ["Capabilities", "RunOptions", "RunResult", "Runner", "probe_capabilities"]


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

    def policy_for(self, vector: Vector) -> Policy | None:
        """'refuse' if any flag's declared policy refuses, 'accept' if all accept, else None."""
        return self.capabilities.policy_for(vector.flags)

    def check_integrity(self, vectors: Iterable[Vector]) -> list[str]:
        """Verify the selected vectors against SHA256SUMS and the manifest before running."""
        return check_integrity(self.vectors_dir, vectors)

    def run_one(self, index: int, v: Vector, work: Path) -> list[CheckResult]:
        scratch = scratch_directory(work, index, v.id)
        sandbox = Sandbox(self.impl, v, scratch, self.options.timeout)
        judge = VectorJudge(sandbox, self.capabilities, self.options, self.policy_for(v))
        try:
            judge.run()
        except Exception as e:
            judge.add(CMD_INFO, "harness-error", f"harness error: {type(e).__name__}: {e}")
        changed = changed_originals(v)
        if changed:
            judge.add(
                CMD_APPLY if v.kind == "op" else CMD_INFO,
                "harness-error",
                f"original vector files changed during the run: {', '.join(changed)} "
                "(the adapter wrote outside its scratch copy?)",
            )
        results = self._apply_known_failures(v, judge.results)
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

