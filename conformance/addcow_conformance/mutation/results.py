"""The record of a mutation run: every mutant with its outcome, and the scores per module.

Outcomes: ``killed`` (a vector failed), ``timeout`` (a call hung: detected too, counted with
the kills), ``survived`` (every vector passed) and ``error`` (the mutant could not be built, or
the harness could not run it: left out of the scores). Two scores per module: the raw one,
detected over all mutants, and the one over killable mutants, which leaves out the survivors
the ledger explains (equivalent code, code no adapter call reaches, and so on): the share of
what a vector could catch that the vectors do catch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from addcow_conformance.mutation.ledger import Ledger
from addcow_conformance.mutation.mutate import MutantSpec

__all__ = [
    "RESULTS_VERSION",
    "ModuleSummary",
    "MutantResult",
    "Outcome",
    "ResultsError",
    "RunRecord",
    "apply_ledger",
    "load_results",
    "summarise",
    "write_results",
]

RESULTS_VERSION = 1

Outcome = Literal["killed", "timeout", "survived", "error"]
DETECTED = ("killed", "timeout")


class ResultsError(ValueError):
    """A results file that cannot be read back."""


@dataclasses.dataclass
class MutantResult:
    spec: MutantSpec
    outcome: Outcome
    #: The vector that failed (killed, timeout), else None.
    killed_by: str | None = None
    #: The failing check, ``capability: outcome: message`` (shortened), or the error.
    detail: str = ""
    vectors_run: int = 0
    duration_s: float = 0.0
    #: The ledger's reason for a survivor; None for a survivor the ledger does not list (new).
    ledger: str | None = None
    #: Vectors whose calls execute the mutated statement (in the baseline); 0: none does, and
    #: the mutant survived without running.
    reached_by: int = 0

    @property
    def is_new_survivor(self) -> bool:
        return self.outcome == "survived" and self.ledger is None


@dataclasses.dataclass(frozen=True)
class ModuleSummary:
    module: str
    mutants: int
    killed: int
    timeout: int
    survived: int
    error: int
    ledgered: dict[str, int]
    new: int

    @property
    def scored(self) -> int:
        return self.mutants - self.error

    @property
    def killable(self) -> int:
        return self.scored - sum(self.ledgered.values())

    @property
    def raw_score(self) -> float | None:
        return (self.killed + self.timeout) / self.scored if self.scored else None

    @property
    def killable_score(self) -> float | None:
        return (self.killed + self.timeout) / self.killable if self.killable else None


@dataclasses.dataclass
class RunRecord:
    date: str
    commit: str
    python: str
    cpus: int
    jobs: int
    sample: int | None
    seed: int
    call_timeout: float
    modules: list[str]
    #: Mutants the modules have in all (the sample is drawn from these).
    candidates: int
    duration_s: float
    mutants_per_minute: float
    suite_version: str
    #: Vectors run for each mutant, and those left out because the unmutated reference does
    #: not pass them, with its outcome (a vector that already fails would kill every mutant;
    #: one it skips is skipped for every mutant too).
    vectors: int
    excluded_vectors: dict[str, str]
    baseline_s: float
    results: list[MutantResult]

    def summaries(self) -> list[ModuleSummary]:
        return summarise(self.results)


def apply_ledger(results: Iterable[MutantResult], ledger: Ledger) -> None:
    """Label every survivor with the ledger's reason (None: new), so that a ledger reviewed
    after the run counts without running again."""
    for r in results:
        entry = ledger.lookup(r.spec) if r.outcome == "survived" else None
        r.ledger = entry.reason if entry is not None else None


def summarise(results: Iterable[MutantResult]) -> list[ModuleSummary]:
    """One summary per module, in module order, then the total (module ``"total"``)."""
    by_module: dict[str, list[MutantResult]] = {}
    for r in results:
        by_module.setdefault(r.spec.module, []).append(r)

    def one(name: str, rs: list[MutantResult]) -> ModuleSummary:
        ledgered: dict[str, int] = {}
        for r in rs:
            if r.outcome == "survived" and r.ledger is not None:
                ledgered[r.ledger] = ledgered.get(r.ledger, 0) + 1
        return ModuleSummary(
            module=name, mutants=len(rs),
            killed=sum(r.outcome == "killed" for r in rs),
            timeout=sum(r.outcome == "timeout" for r in rs),
            survived=sum(r.outcome == "survived" for r in rs),
            error=sum(r.outcome == "error" for r in rs),
            ledgered=dict(sorted(ledgered.items())),
            new=sum(r.is_new_survivor for r in rs),
        )

    out = [one(name, by_module[name]) for name in sorted(by_module)]
    out.append(one("total", [r for name in sorted(by_module) for r in by_module[name]]))
    return out


def _result_doc(r: MutantResult) -> dict[str, Any]:
    doc = {"id": r.spec.id, **dataclasses.asdict(r.spec)}
    doc.update(outcome=r.outcome, killed_by=r.killed_by, detail=r.detail,
               vectors_run=r.vectors_run, duration_s=round(r.duration_s, 3), ledger=r.ledger,
               reached_by=r.reached_by)
    return doc


def write_results(record: RunRecord, path: Path) -> None:
    doc = {k: v for k, v in dataclasses.asdict(record).items() if k != "results"}
    doc["results_version"] = RESULTS_VERSION
    doc["summary"] = [
        {**dataclasses.asdict(s), "raw_score": s.raw_score, "killable_score": s.killable_score}
        for s in record.summaries()
    ]
    doc["results"] = [_result_doc(r) for r in record.results]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", "utf-8")


_SPEC_FIELDS = [f.name for f in dataclasses.fields(MutantSpec)]


def _result(path: Path, i: int, doc: dict[str, Any]) -> MutantResult:
    try:
        spec = MutantSpec(**{k: doc[k] for k in _SPEC_FIELDS})
        return MutantResult(spec=spec, outcome=doc["outcome"], killed_by=doc["killed_by"],
                            detail=doc["detail"], vectors_run=doc["vectors_run"],
                            duration_s=doc["duration_s"], ledger=doc["ledger"],
                            reached_by=doc["reached_by"])
    except (KeyError, TypeError) as e:
        raise ResultsError(f"{path}: results[{i}]: missing or bad field {e}") from None


def load_results(path: Path) -> RunRecord:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise ResultsError(f"{path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("results_version") != RESULTS_VERSION:
        raise ResultsError(f"{path}: not a mutation results file of version {RESULTS_VERSION}")
    fields = [f.name for f in dataclasses.fields(RunRecord) if f.name != "results"]
    try:
        head = {k: doc[k] for k in fields}
    except KeyError as e:
        raise ResultsError(f"{path}: missing field {e}") from None
    results = [_result(path, i, r) for i, r in enumerate(doc.get("results", []))]
    return RunRecord(**head, results=results)
