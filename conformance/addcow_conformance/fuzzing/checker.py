"""Fuzz target ``checker``: ``addcow-check`` on any byte string as an add-cow file.

The property is the checker's contract: a report comes back, every check ran or said why it did
not apply, and no check raised (an internal error is a finding here, as is an exit status other
than conforming, not conforming or warnings-only).
"""

from __future__ import annotations

from pathlib import Path

from addcow_conformance.fuzzing.common import (
    ENTRY_NAME,
    Target,
    neighbour_names,
    rewrite,
    scratch,
)
from addcow_conformance.fuzzing.dictionary import header_tokens
from addcow_conformance.fuzzing.seeds import addcow_seeds, write_seeds

__all__ = ["MAX_LEN", "TARGET", "check_bytes", "one_input"]

#: Header, name area and bitmap at the usual ``bitmap_offset`` of 4096, with room for a
#: 12 KiB bitmap (98,304 clusters) or a name area past the first 4 KiB.
MAX_LEN = 16384


def check_bytes(data: bytes, name: str = ENTRY_NAME) -> object:
    """Check ``data`` as an add-cow file next to the scratch directory's raw image and backing
    files; return the report (typed ``object`` so this module needs no import of the checker
    at load time, which lets the runner import the checker under instrumentation)."""
    from addcow_conformance.checker import check_file

    path = scratch("checker") / name
    rewrite(path, data)
    return check_file(path)


def one_input(data: bytes) -> None:
    from addcow_conformance.checker import Report

    report = check_bytes(data)
    assert isinstance(report, Report)
    if report.internal_errors or report.error is not None:
        raise AssertionError(f"checker failed on a {len(data)}-byte input: "
                             f"{report.error or report.internal_errors}")
    if report.exit_code not in (0, 2, 3):
        raise AssertionError(f"unexpected exit status {report.exit_code}")


def _warm_up() -> None:
    from addcow_conformance.checker.engine import registry

    registry()  # imports every check module


def _write_seeds(directory: Path) -> int:
    return write_seeds(directory, addcow_seeds())


TARGET = Target(
    name="checker",
    one_input=one_input,
    max_len=MAX_LEN,
    warm_up=_warm_up,
    write_seeds=_write_seeds,
    dictionary=lambda: header_tokens(neighbour_names()),
)
