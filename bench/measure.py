"""Measurement primitives shared by the scenarios: interleaved repeats, child-process RSS."""

from __future__ import annotations

import dataclasses
import math
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Row", "Stats", "constant", "interleave", "interleave_timed", "loglog_slope",
           "run_process", "self_peak_rss"]


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
    #: ratio >= target_ratio is good when higher_is_better (throughput), else <= target_ratio;
    #: None for rows that only inform (no target is set for them).
    target_ratio: float | None
    higher_is_better: bool
    #: What the Stats hold: "time" (seconds) or "KiB" (peak RSS); a limit such as "64 MiB of
    #: RSS" is a baseline made with ``constant()``, so ratio <= 1 means within the limit.
    metric: str = "time"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """subject/baseline for times (lower is better), or speed ratio for throughputs."""
        if self.higher_is_better:
            return self.baseline_s.median / self.subject_s.median  # speed = 1/time
        return self.subject_s.median / self.baseline_s.median

    @property
    def met(self) -> bool | None:
        if self.target_ratio is None:
            return None
        if self.higher_is_better:
            return self.ratio >= self.target_ratio
        return self.ratio <= self.target_ratio

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "variant": self.variant, "subject": self.subject,
            "baseline": self.baseline, "subject_s": self.subject_s.as_dict(),
            "baseline_s": self.baseline_s.as_dict(), "ratio": self.ratio,
            "target": self.target, "met": self.met, "metric": self.metric,
            "extra": self.extra,
        }


def constant(value: float) -> Stats:
    """A fixed limit used as a baseline (a memory budget, a size), so it reads like a peer."""
    return Stats((float(value),))


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log(y) against log(x): 1.0 is linear growth, 2.0 quadratic."""
    if len(xs) < 2:
        raise ValueError("a slope needs at least two points")
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / den


def interleave(subject: Callable[[], Any], baseline: Callable[[], Any],
               repeats: int) -> tuple[Stats, Stats]:
    """Time both callables ``repeats`` times, alternating, so drifts in machine load hit both."""
    return interleave_timed(_timed(subject), _timed(baseline), repeats)


def _timed(fn: Callable[[], Any]) -> Callable[[], float]:
    def run() -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    return run


def interleave_timed(subject: Callable[[], float], baseline: Callable[[], float],
                     repeats: int) -> tuple[Stats, Stats]:
    """Like ``interleave`` for callables that time themselves (returning seconds), so that a
    per-run setup such as creating a fresh overlay stays out of the measurement."""
    s: list[float] = []
    b: list[float] = []
    for i in range(repeats):
        pair = [(subject, s), (baseline, b)]
        if i % 2:
            pair.reverse()
        for fn, out in pair:
            out.append(fn())
    return Stats(tuple(s)), Stats(tuple(b))


#: GNU time, which forks the measured program from its own small process (see run_process).
GNU_TIME = "/usr/bin/time"


def run_process(argv: Sequence[str], *, timeout: float = 3600.0,
                check_codes: Sequence[int] = (0,), **kw: Any) -> tuple[float, int]:
    """Run a command; return (wall seconds, peak RSS in KiB of that program alone).

    The RSS comes from GNU time when it is installed. ``os.wait4``'s ``ru_maxrss`` of a direct
    child is not the child's own: Linux carries the high-water mark of the address space the
    child was forked (or vforked) from across ``exec``, so every child of a benchmark process
    that once held a 256 MiB bitmap would report at least 256 MiB. GNU time forks the program
    from its own tiny process, so the figure it prints is the program's. Without GNU time the
    ``wait4`` figure is an upper bound.
    """
    # stderr goes to a file, not a pipe: a chatty child would fill a pipe nobody reads while
    # we poll wait4, and hang.
    with tempfile.TemporaryFile() as errf, \
            tempfile.NamedTemporaryFile("r", suffix=".rss") as rssf:
        wrapped = list(argv)
        if os.access(GNU_TIME, os.X_OK):
            wrapped = [GNU_TIME, "-q", "-f", "%M", "-o", rssf.name, *wrapped]
        t0 = time.perf_counter()
        out = kw.pop("stdout", subprocess.DEVNULL)
        proc = subprocess.Popen(wrapped, stdout=out, stderr=errf, **kw)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                proc.wait()
                raise TimeoutError(f"{argv[0]} ran longer than {timeout} s")
            time.sleep(0.001)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read().decode(errors="replace")
        rss = int(usage.ru_maxrss)
        last = rssf.read().strip().splitlines()[-1:] if wrapped[0] == GNU_TIME else []
        if last and last[0].isdigit():
            rss = int(last[0])
    if proc.returncode not in check_codes:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err.strip()[:500]}")
    return elapsed, rss


def self_peak_rss() -> int:
    """Peak RSS of this process so far, in KiB."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
