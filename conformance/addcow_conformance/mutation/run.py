"""Run the mutants: each in a forked child, through the harness, with the in-process adapter.

The parent reads the library once (:func:`~addcow_conformance.mutation.loader.take_snapshot`),
imports the harness, copies the vectors (they too may be regenerated during the run), loads and
verifies them, then forks one child per mutant, ``jobs`` at a time. A child rebuilds the
library from the snapshot with its mutant applied and runs the harness over the vectors with
the ``python:`` adapter and ``exitfirst``: the first vector that does not pass kills the
mutant. The unmutated library runs first the same way; vectors it does not pass are left out,
since they would kill every mutant. The vectors that killed the latest mutants of a module run
first for the next mutant of that module, which makes kills fast; the outcome does not depend
on the order, only which vector is named as the killer may.

The harness runs with ``--check-refusal-reason``, as CI runs the reference: a mutant that
refuses a vector for another rule than the one it breaks is killed.

Two modes. The library takes numpy paths only where numpy is already loaded (or a bitmap is
big enough to be worth its import), which no vector's adapter process does; so the baseline
runs twice, without and with numpy imported first, and a mutant whose lines only the numpy
mode reaches runs in that mode: those paths hold the same results to the same vectors. A
mutant that survives the default mode and whose lines the numpy mode also reaches runs again
with numpy loaded, and survives only if it survives both (a statement shared by both paths
may go wrong only when numpy gets its result).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from addcow_conformance.harness.impl import ForkImpl, parse_impl
from addcow_conformance.harness.manifest import Manifest, Vector, load_manifest
from addcow_conformance.harness.outcomes import UNEXPECTED
from addcow_conformance.harness.runner import Runner, RunOptions
from addcow_conformance.harness.sandbox import check_integrity
from addcow_conformance.mutation.ledger import Ledger
from addcow_conformance.mutation.loader import Snapshot, install, take_snapshot
from addcow_conformance.mutation.mutate import MutantSpec, Site, apply_mutant, enumerate_mutants
from addcow_conformance.mutation.reach import Reach, reached_by, read_reach, traced
from addcow_conformance.mutation.results import MutantResult, Outcome, RunRecord

__all__ = [
    "ADAPTER",
    "DEFAULT_MODULES",
    "RunConfig",
    "RunError",
    "choose",
    "list_mutants",
    "resolve_modules",
    "run_mutants",
]

#: The format, engine and operation modules: what the vectors are meant to pin.
DEFAULT_MODULES = (
    "addcow_ref.format.validate",
    "addcow_ref.format.bitmap",
    "addcow_ref.format.header",
    "addcow_ref.format.layout",
    "addcow_ref.engine.*",
    "addcow_ref.ops.create",
    "addcow_ref.ops.upgrade",
    "addcow_ref.ops.commit",
    "addcow_ref.ops.rebase",
    "addcow_ref.ops.metafile",
)
#: The in-process reference adapter (``--impl python:...`` of the harness).
ADAPTER = "addcow_conformance.adapters.reference:main"


class RunError(RuntimeError):
    """The run cannot start: no such module, a broken suite, a baseline that does not run."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    vectors_dir: Path
    ledger: Ledger
    modules: tuple[str, ...] = DEFAULT_MODULES
    sample: int | None = None
    seed: int = 0
    jobs: int = 2
    call_timeout: float = 5.0
    #: A child still running after this long is killed and its mutant counted as a timeout.
    mutant_timeout: float = 300.0
    adapter: str = ADAPTER
    #: Only mutants whose id matches one of these globs (all when empty).
    mutant_globs: tuple[str, ...] = ()
    #: Only vectors whose id matches one of these globs (all when empty).
    vector_globs: tuple[str, ...] = ()


def resolve_modules(snapshot: Snapshot, patterns: Sequence[str]) -> list[str]:
    """Module names matching the glob ``patterns`` (packages' ``__init__`` left out)."""
    out: list[str] = []
    for pattern in patterns:
        found = [n for n, m in snapshot.modules.items()
                 if fnmatch.fnmatchcase(n, pattern) and not m.is_package]
        if not found:
            raise RunError(f"no module of the library matches {pattern!r}")
        out += [n for n in sorted(found) if n not in out]
    return out


def list_sites(snapshot: Snapshot, modules: Sequence[str]) -> list[Site]:
    return [site for name in modules
            for site in enumerate_mutants(name, snapshot.source_of(name).source)]


def list_mutants(snapshot: Snapshot, modules: Sequence[str]) -> list[MutantSpec]:
    return [site.spec for site in list_sites(snapshot, modules)]


def choose(specs: Sequence[MutantSpec], sample: int | None, seed: int) -> list[MutantSpec]:
    """A deterministic sample of ``sample`` mutants (all when None): those whose hash with
    ``seed`` is smallest, so a mutant added to the code changes the sample by at most one."""
    if sample is None or sample >= len(specs):
        return list(specs)

    def rank(s: MutantSpec) -> str:
        return hashlib.sha256(f"{seed}:{s.id}".encode()).hexdigest()

    keep = {s.id for s in sorted(specs, key=rank)[:sample]}
    return [s for s in specs if s.id in keep]


@dataclasses.dataclass(frozen=True)
class _ChildReport:
    outcome: Outcome
    killed_by: str | None
    detail: str
    vectors_run: int
    #: Every vector that did not pass, with its outcome (the baseline's exclusions).
    not_passing: dict[str, str]


def _child(snapshot: Snapshot, spec: MutantSpec | None, manifest: Manifest, root: Path,
           order: Sequence[Vector], config: RunConfig, work: Path, exitfirst: bool,
           trace: tuple[list[str], Path] | None = None, numpy: bool = False) -> _ChildReport:
    """In the child: build the mutated library and run the harness over ``order`` (with numpy
    imported first in the numpy mode, so the library's numpy paths serve the calls)."""
    if numpy:
        import importlib

        try:
            importlib.import_module("numpy")
        except ImportError:
            return _ChildReport("error", None, "the numpy mode needs numpy", 0, {})
    mutated = {}
    if spec is not None:
        source = snapshot.source_of(spec.module)
        try:
            mutated[spec.module] = apply_mutant(spec, source.source, str(source.path))
        except KeyError:
            return _ChildReport("error", None, "no such site in the snapshot", 0, {})
    try:
        failed = install(snapshot, mutated)
    except (SyntaxError, ValueError) as e:
        return _ChildReport("error", None, f"does not compile: {e}", 0, {})
    if spec is None and failed:
        raise RunError("the unmutated library does not import: " + "; ".join(failed))
    impl = parse_impl(f"python:{config.adapter}")
    if trace is not None and isinstance(impl, ForkImpl):
        files, out_dir = trace
        out_dir.mkdir(parents=True, exist_ok=True)
        impl.func = traced(impl.func, files, out_dir)
    options = RunOptions(timeout=config.call_timeout, exitfirst=exitfirst, work_dir=work,
                         check_refusal_reason=True)
    result = Runner(impl, manifest, root, options).run(order)
    first = next((r for r in result.results if r.outcome in UNEXPECTED), None)
    not_passing = {v: o for v, o in sorted(result.vector_outcomes.items()) if o != "pass"}
    if first is None:
        return _ChildReport("survived", None, "", len(result.vector_outcomes), not_passing)
    # A harness error means the vector could not be judged: not a kill.
    outcome: Outcome = "killed"
    if first.outcome in ("timeout", "harness-error"):
        outcome = "timeout" if first.outcome == "timeout" else "error"
    detail = " ".join(f"{first.capability}: {first.outcome}: {first.message}".split())[:300]
    return _ChildReport(outcome, first.id, detail, len(result.vector_outcomes), not_passing)


def _fork(task: Callable[[], _ChildReport], out: Path) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1  # pragma: no cover - the child's side
    try:  # pragma: no cover
        os.setpgid(0, 0)
        report = task()
        out.write_text(json.dumps(dataclasses.asdict(report)), "utf-8")
        code = 0
    except BaseException as e:  # pragma: no cover
        out.write_text(json.dumps({"error": f"{type(e).__name__}: {e}"}), "utf-8")
    finally:  # pragma: no cover
        os._exit(code)


def _read_report(path: Path) -> _ChildReport:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return _ChildReport("error", None, "the child died without a report", 0, {})
    if "error" in doc:
        return _ChildReport("error", None, str(doc["error"])[:300], 0, {})
    return _ChildReport(**doc)


@dataclasses.dataclass
class _Running:
    pid: int
    spec: MutantSpec
    out: Path
    start: float
    numpy: bool = False


def _order(vectors: Sequence[Vector], first: Sequence[str]) -> list[Vector]:
    by_id = {v.id: v for v in vectors}
    front = [by_id[i] for i in first if i in by_id]
    return front + [v for v in vectors if v.id not in set(first)]


def _git_commit(root: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "diff", "--quiet", "HEAD", "--",
                                "addcow_ref"], capture_output=True, check=False).returncode
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+modified" if dirty else "")


def run_mutants(config: RunConfig, progress: Callable[[MutantResult], None] | None = None,
                ) -> RunRecord:
    """Run the configured sample of mutants; the record of every one with its outcome."""
    start = time.monotonic()
    snapshot = take_snapshot()
    modules = resolve_modules(snapshot, config.modules)
    sites = list_sites(snapshot, modules)
    spans = {site.spec.id: site.span for site in sites}
    specs = [site.spec for site in sites]
    if config.mutant_globs:
        specs = [s for s in specs if any(fnmatch.fnmatchcase(s.id, g)
                                         for g in config.mutant_globs)]
    chosen = choose(specs, config.sample, config.seed)
    work = Path(tempfile.mkdtemp(prefix="addcow-mutation-"))
    try:
        # A copy, like the library's snapshot: the vectors may be regenerated during the run.
        root = work / "vectors"
        shutil.copytree(config.vectors_dir, root)
        manifest = load_manifest(root)
        selected = [v for v in manifest.vectors if not config.vector_globs
                    or any(fnmatch.fnmatchcase(v.id, g) for g in config.vector_globs)]
        if not selected:
            raise RunError(f"no vector matches {', '.join(config.vector_globs)}")
        problems = check_integrity(root, selected)
        if problems:
            raise RunError("the vector suite is not intact: " + "; ".join(problems[:5]))
        t0 = time.monotonic()
        files = [str(snapshot.source_of(m).path) for m in modules]
        base = _run_one(snapshot, manifest, root, selected, config, work, (files, work / "reach"))
        base_np = _run_one(snapshot, manifest, root, selected, config, work,
                           (files, work / "reach-numpy"), numpy=True)
        baseline_s = time.monotonic() - t0
        for b in (base, base_np):
            if b.outcome == "error":
                raise RunError(f"the unmutated reference cannot be run: {b.detail}")
        not_passing = {**base.not_passing, **base_np.not_passing}
        vectors = [v for v in selected if v.id not in not_passing]
        reach = read_reach(work / "reach", selected)
        reach_np = read_reach(work / "reach-numpy", selected)
        t1 = time.monotonic()
        results = _schedule(snapshot, chosen, spans, (reach, reach_np), manifest, root,
                            vectors, config, work, progress)
        minutes = (time.monotonic() - t1) / 60
    finally:
        shutil.rmtree(work, ignore_errors=True)
    duration = time.monotonic() - start
    executed = sum(r.outcome != "error" for r in results)
    return RunRecord(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        commit=_git_commit(Path(__file__).resolve().parents[3]),
        python=sys.version.split()[0], cpus=os.cpu_count() or 1, jobs=config.jobs,
        sample=config.sample, seed=config.seed, call_timeout=config.call_timeout,
        modules=modules, candidates=len(specs), duration_s=round(duration, 1),
        mutants_per_minute=round(executed / minutes, 1) if minutes else 0.0,
        suite_version=manifest.suite_version, vectors=len(vectors),
        excluded_vectors=not_passing, baseline_s=round(baseline_s, 2), results=results,
    )


def _run_one(snapshot: Snapshot, manifest: Manifest, root: Path, order: Sequence[Vector],
             config: RunConfig, work: Path, trace: tuple[list[str], Path],
             numpy: bool = False) -> _ChildReport:
    """The baseline: one child, every vector, no early stop, lines traced."""
    name = "baseline-numpy" if numpy else "baseline"
    out = work / f"{name}.json"
    child_work = work / name
    pid = _fork(lambda: _child(snapshot, None, manifest, root, order, config, child_work,
                               exitfirst=False, trace=trace, numpy=numpy), out)
    os.waitpid(pid, 0)
    return _read_report(out)


def _schedule(snapshot: Snapshot, chosen: Sequence[MutantSpec], spans: dict[str, tuple[int, int]],
              reach: tuple[Reach, Reach], manifest: Manifest, root: Path, vectors: Sequence[Vector],
              config: RunConfig, work: Path, progress: Callable[[MutantResult], None] | None,
              ) -> list[MutantResult]:
    """Run the mutants ``jobs`` at a time; on the way out (Ctrl-C included) no child is left
    running: each has its own process group, so a terminal's SIGINT does not reach it."""
    running: dict[int, tuple[int, _Running]] = {}
    try:
        return _schedule_loop(snapshot, chosen, spans, reach, manifest, root, vectors, config,
                              work, progress, running)
    finally:
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _schedule_loop(snapshot: Snapshot, chosen: Sequence[MutantSpec],
                   spans: dict[str, tuple[int, int]], reach: tuple[Reach, Reach],
                   manifest: Manifest,
                   root: Path, vectors: Sequence[Vector], config: RunConfig, work: Path,
                   progress: Callable[[MutantResult], None] | None,
                   running: dict[int, tuple[int, _Running]]) -> list[MutantResult]:
    # (index, mutant, mode): None picks the mode by reach; True is a second run in the numpy
    # mode of a mutant that survived the default one.
    pending: list[tuple[int, MutantSpec, bool | None]] = [
        (k, spec, None) for k, spec in enumerate(chosen)]
    done: dict[int, MutantResult] = {}
    killers: dict[str, list[str]] = {}
    reaching: dict[int, int] = {}
    unreached: set[int] = set()
    first_run_s: dict[int, float] = {}
    numpy_reach: dict[int, int] = {}
    while pending or running:
        while pending and len(running) < max(1, config.jobs):
            k, spec, mode = pending.pop(0)
            file = str(snapshot.source_of(spec.module).path)
            in_numpy = reached_by(reach[1], file, spans[spec.id])
            numpy_reach[k] = len(in_numpy)
            if mode:
                relevant, numpy = in_numpy, True
            else:
                relevant = reached_by(reach[0], file, spans[spec.id])
                numpy = not relevant
                if numpy:  # only the numpy mode runs this statement, if any mode does
                    relevant = in_numpy
            candidates = [v for v in vectors if v.id in relevant]
            reaching[k] = max(len(candidates), reaching.get(k, 0))
            if not candidates:
                # No vector runs this statement once the library is imported; the trace starts
                # after the import, so a statement that runs at import time (a table built
                # when a module loads) looks unreached. One vector tells: such a mutant breaks
                # every call, any other survives it.
                candidates = list(vectors[:1])
                unreached.add(k)
            order = _order(candidates, killers.get(spec.module, []))
            out = work / f"m{k}.json"
            child_work = work / f"m{k}"

            def task(spec: MutantSpec = spec, order: list[Vector] = order,
                     child_work: Path = child_work, numpy: bool = numpy) -> _ChildReport:
                return _child(snapshot, spec, manifest, root, order, config, child_work,
                              exitfirst=True, numpy=numpy)

            pid = _fork(task, out)
            running[pid] = (k, _Running(pid, spec, out, time.monotonic(), numpy))
        if not running:
            continue
        pid, _status = os.waitpid(-1, os.WNOHANG)
        if pid and pid not in running:
            continue
        if not pid:
            now = time.monotonic()
            for _k, r in list(running.values()):
                if now - r.start > config.mutant_timeout:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(r.pid, signal.SIGKILL)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(r.pid, signal.SIGKILL)
            time.sleep(0.01)
            continue
        k, r = running.pop(pid)
        elapsed = time.monotonic() - r.start
        report = _read_report(r.out)
        if elapsed > config.mutant_timeout and report.outcome == "error":
            report = _ChildReport("timeout", None, "the whole run of this mutant timed out",
                                  0, {})
        shutil.rmtree(work / f"m{k}", ignore_errors=True)
        if report.outcome == "survived" and not r.numpy and numpy_reach[k] and k not in unreached:
            # The default mode's library took its plain paths: a statement the numpy mode
            # also runs may only go wrong there (a numpy call given a bad argument), so the
            # survivor gets a second run with numpy loaded before it counts.
            first_run_s[k] = elapsed
            pending.insert(0, (k, r.spec, True))
            continue
        elapsed += first_run_s.pop(k, 0.0)
        entry = config.ledger.lookup(r.spec) if report.outcome == "survived" else None
        detail = report.detail
        if k in unreached and report.outcome == "survived":
            detail = "no vector runs this statement"
        result = MutantResult(
            spec=r.spec, outcome=report.outcome, killed_by=report.killed_by,
            detail=detail, vectors_run=report.vectors_run, duration_s=elapsed,
            ledger=entry.reason if entry else None, reached_by=reaching[k],
        )
        if report.killed_by is not None:
            recent = killers.setdefault(r.spec.module, [])
            if report.killed_by in recent:
                recent.remove(report.killed_by)
            recent.insert(0, report.killed_by)
            del recent[8:]
        done[k] = result
        if progress is not None:
            progress(result)
    return [done[k] for k in sorted(done)]
