"""The measurement helpers: ratios and verdicts of rows, the log-log slope, child-process RSS."""

from __future__ import annotations

import math
import os
import sys

import pytest

from bench.measure import (
    GNU_TIME,
    Row,
    Stats,
    constant,
    interleave_timed,
    loglog_slope,
    run_process,
)


def _row(subject: float, baseline: float, target: float | None, higher: bool) -> Row:
    return Row("s", "v", "a", "b", Stats((subject,)), Stats((baseline,)), "t", target, higher)


def test_ratio_is_subject_over_baseline_for_times() -> None:
    row = _row(3.0, 2.0, 1.0, False)
    assert row.ratio == pytest.approx(1.5)
    assert row.met is False
    assert _row(1.0, 2.0, 1.0, False).met is True


def test_ratio_is_speed_ratio_for_throughputs() -> None:
    row = _row(4.0, 2.0, 0.8, True)  # subject takes twice as long: half the speed
    assert row.ratio == pytest.approx(0.5)
    assert row.met is False
    assert _row(2.0, 2.0, 0.8, True).met is True


def test_rows_without_a_target_are_neither_met_nor_missed() -> None:
    row = _row(1.0, 1.0, None, False)
    assert row.met is None
    assert row.as_dict()["met"] is None


def test_constant_is_a_one_value_baseline() -> None:
    st = constant(64 * 1024)
    assert (st.min, st.median, st.max) == (65536.0, 65536.0, 65536.0)


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0])
def test_loglog_slope_recovers_the_exponent(power: float) -> None:
    xs = [2.0 ** k for k in range(1, 8)]
    assert loglog_slope(xs, [3.0 * x ** power for x in xs]) == pytest.approx(power)


def test_loglog_slope_needs_two_points() -> None:
    with pytest.raises(ValueError, match="two points"):
        loglog_slope([1.0], [1.0])


def test_interleave_timed_alternates_and_keeps_self_timings() -> None:
    calls: list[str] = []

    def subject() -> float:
        calls.append("s")
        return 1.0

    def baseline() -> float:
        calls.append("b")
        return 2.0

    s, b = interleave_timed(subject, baseline, 3)
    assert calls == ["s", "b", "b", "s", "s", "b"]
    assert s.values == (1.0, 1.0, 1.0)
    assert b.values == (2.0, 2.0, 2.0)


def test_run_process_reports_the_childs_own_peak_rss() -> None:
    big = [sys.executable, "-c", "b = b'x' * (80 << 20)"]  # every page written
    small = [sys.executable, "-c", "pass"]
    _, big_kib = run_process(big)
    _, small_kib = run_process(small)
    assert big_kib > 80 * 1024 > small_kib  # not the maximum over every child so far


def test_run_process_rss_does_not_inherit_the_parents_peak() -> None:
    if not os.access(GNU_TIME, os.X_OK):
        pytest.skip("GNU time is not installed: the RSS is an upper bound")
    ballast = b"y" * (200 << 20)  # this process's peak RSS is now above 200 MiB
    _, kib = run_process([sys.executable, "-S", "-c", "pass"])
    assert kib < 100 * 1024, kib
    del ballast


def test_run_process_raises_with_the_childs_stderr() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        run_process([sys.executable, "-c", "import sys; sys.exit('boom')"])


def test_run_process_accepts_listed_exit_codes() -> None:
    seconds, _ = run_process([sys.executable, "-c", "raise SystemExit(3)"], check_codes=(0, 3))
    assert seconds > 0
    assert math.isfinite(seconds)
