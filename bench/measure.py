"""Measurement primitives shared by the scenarios: interleaved repeats, child-process RSS."""

from __future__ import annotations

import dataclasses
import os
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Row", "Stats", "interleave", "run_process", "self_peak_rss"]


@dataclasses.dataclass(frozen=True)
class Stats:
    """min/median/max of repeated timings, in seconds."""

    values: tuple[float, ...]

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def as_dict(self) -> dict[str, Any]:
        return {"min": self.min, "median": self.median, "max": self.max,
                "runs": list(self.values)}


@dataclasses.dataclass
class Row:
    """One line of the results table: a subject against its baseline at one size."""

    scenario: str
    variant: str
    subject: str
    baseline: str
    subject_s: Stats
    baseline_s: Stats
    target: str
    #: ratio >= target_ratio is good when higher_is_better (throughput), else <= target_ratio.
    target_ratio: float
    higher_is_better: bool
    #: The quantity the ratio compares, e.g. "time" or "MiB/s"; times are converted when needed.
    metric: str = "time"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """subject/baseline for times (lower is better), or speed ratio for throughputs."""
        if self.higher_is_better:
            return self.baseline_s.median / self.subject_s.median  # speed = 1/time
        return self.subject_s.median / self.baseline_s.median

    @property
    def met(self) -> bool:
        if self.higher_is_better:
            return self.ratio >= self.target_ratio
        return self.ratio <= self.target_ratio

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "variant": self.variant, "subject": self.subject,
            "baseline": self.baseline, "subject_s": self.subject_s.as_dict(),
            "baseline_s": self.baseline_s.as_dict(), "ratio": self.ratio,
            "target": self.target, "met": self.met, "extra": self.extra,
        }


def interleave(subject: Callable[[], Any], baseline: Callable[[], Any],
               repeats: int) -> tuple[Stats, Stats]:
    """Time both callables ``repeats`` times, alternating, so drifts in machine load hit both."""
    s: list[float] = []
    b: list[float] = []
    for i in range(repeats):
        pair = [(subject, s), (baseline, b)]
        if i % 2:
            pair.reverse()
        for fn, out in pair:
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return Stats(tuple(s)), Stats(tuple(b))


def run_process(argv: Sequence[str], *, timeout: float = 3600.0,
                check_codes: Sequence[int] = (0,), **kw: Any) -> tuple[float, int]:
    """Run a command; return (wall seconds, peak RSS in KiB of that child alone).

    ``os.wait4`` gives the rusage of exactly this child, unlike RUSAGE_CHILDREN which keeps the
    maximum over every child ever waited for.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            raise TimeoutError(f"{argv[0]} ran longer than {timeout} s")
        time.sleep(0.002)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode not in check_codes:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err.strip()[:500]}")
    return elapsed, int(usage.ru_maxrss)


def self_peak_rss() -> int:
    """Peak RSS of this process so far, in KiB."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
