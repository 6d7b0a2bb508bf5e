"""The scaling verdict: the growth exponent is fitted on the size-dependent part of the time."""

from __future__ import annotations

import pytest

from bench.measure import Row, Stats
from bench.scn_check import _slope_row


def _series(times: list[float]) -> list[Row]:
    sizes = [1 << (30 + 2 * i) for i in range(len(times))]
    return [Row("scaling-check", str(x), "addcow check", "cat", Stats((t,)), Stats((0.01,)),
                "", None, False, extra={"x": x}) for x, t in zip(sizes, times, strict=True)]


def test_linear_growth_behind_a_startup_floor_fits_slope_one() -> None:
    rows = _series([0.3 + 1e-12 * (1 << (30 + 2 * i)) for i in range(6)])
    row = _slope_row("addcow check", rows, rows[0].subject_s.median)
    assert row.subject_s.median == pytest.approx(1.0, abs=0.05)
    assert row.met is True


def test_quadratic_growth_is_caught() -> None:
    rows = _series([0.3 + 1e-24 * (1 << (30 + 2 * i)) ** 2 for i in range(6)])
    row = _slope_row("addcow map", rows, rows[0].subject_s.median)
    assert row.subject_s.median == pytest.approx(2.0, abs=0.1)
    assert row.met is False


def test_flat_series_falls_back_to_the_raw_times() -> None:
    rows = _series([0.3] * 4)
    row = _slope_row("addcow check", rows, 0.3)
    assert row.subject_s.median == pytest.approx(0.0, abs=1e-9)
    assert "slope of raw times" in row.extra["note"]
