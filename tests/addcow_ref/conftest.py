"""Reports how many crash points the crash-consistency tests exercised (issue 3 asks for the
number), whether or not output capture is on, and gives them a fast scratch directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A scratch directory on tmpfs when there is one: hundreds of crash replays fsync a lot."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        d = Path(tempfile.mkdtemp(prefix="addcow-crash-", dir="/dev/shm"))
        try:
            yield d
        finally:
            shutil.rmtree(d, ignore_errors=True)
    else:
        yield tmp_path
