"""Reports how many crash points the crash-consistency tests exercised (issue 3 asks for the
number), whether or not output capture is on."""

from __future__ import annotations

import pytest

from .faultfs import CRASH_POINTS


def pytest_configure(config: pytest.Config) -> None:
    config.stash[CRASH_POINTS] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            exitstatus: int, config: pytest.Config) -> None:
    points = config.stash.get(CRASH_POINTS, [])
    if points:
        terminalreporter.write_line(
            f"addcow_ref crash consistency: {sum(points)} crash points exercised "
            f"in {len(points)} workloads")
