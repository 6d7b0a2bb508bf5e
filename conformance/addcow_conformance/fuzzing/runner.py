"""Running the targets under atheris: one target in this process, or every target in turn, each
in a child process (libFuzzer runs one target per process and exits when it is done).

The runner adds what a bare libFuzzer run lacks, unless the caller passes the flag itself:
a corpus directory seeded by the target (when no corpus directory is given), the target's
dictionary, its ``-max_len`` (libFuzzer's default is the largest seed's size, which cut inputs
short of most bitmaps), a ``-timeout`` that makes a hang a finding within seconds, and
``-print_final_stats=1``, whose totals the all-targets run sums up in one table.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from addcow_conformance.fuzzing import INSTRUMENT, TARGET_NAMES, get_target
from addcow_conformance.fuzzing.dictionary import write_dictionary

__all__ = ["RunStats", "parse_stats", "run_all", "run_target"]

#: Seconds one input may take before libFuzzer reports it as a hang.
DEFAULT_TIMEOUT = 10

_STAT = re.compile(r"^stat::(\w+):\s*(\d+)\s*$")


@dataclasses.dataclass(frozen=True)
class RunStats:
    """What one target's run reported."""

    target: str
    exit_code: int
    seconds: float
    executions: int | None
    per_second: int | None


def _has_flag(args: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def _positional(args: Sequence[str]) -> list[str]:
    return [a for a in args if not a.startswith("-")]


def run_target(name: str, libfuzzer_args: Sequence[str]) -> int:
    """Fuzz target ``name`` in this process (returns only if libFuzzer does not exit)."""
    try:
        import atheris
    except ImportError:
        print("addcow_conformance.fuzz needs atheris: pip install 'addcow[fuzz]'", file=sys.stderr)
        return 1
    with atheris.instrument_imports(include=list(INSTRUMENT[name])):
        target = get_target(name)
        target.warm_up()
    args = [sys.argv[0], *libfuzzer_args]
    scratch = Path(tempfile.mkdtemp(prefix=f"addcow-fuzz-{name}-"))
    if not _positional(libfuzzer_args):
        corpus = scratch / "corpus"
        count = target.write_seeds(corpus)
        print(f"addcow fuzz {name}: {count} seeds in {corpus}", file=sys.stderr)
        args.append(str(corpus))
    defaults = {
        "-max_len": str(target.max_len),
        "-dict": str(write_dictionary(scratch / f"{name}.dict", target.dictionary())),
        "-timeout": str(DEFAULT_TIMEOUT),
        "-print_final_stats": "1",
    }
    args[1:1] = [f"{k}={v}" for k, v in defaults.items() if not _has_flag(libfuzzer_args, k)]
    atheris.Setup(args, target.one_input)
    atheris.Fuzz()
    return 0


def parse_stats(target: str, exit_code: int, seconds: float, text: str) -> RunStats:
    """The totals in libFuzzer's ``-print_final_stats`` lines of ``text``."""
    stats = {m[1]: int(m[2]) for line in text.splitlines() if (m := _STAT.match(line))}
    return RunStats(target, exit_code, seconds, stats.get("number_of_executed_units"),
                    stats.get("average_exec_per_sec"))


def _run_child(name: str, libfuzzer_args: Sequence[str]) -> RunStats:
    cmd = [sys.executable, "-m", "addcow_conformance.fuzz", "--target", name, *libfuzzer_args]
    env = {**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")}
    start = time.monotonic()
    lines: list[str] = []
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, errors="replace",
                          env=env) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            if line.startswith("stat::"):
                lines.append(line)
    return parse_stats(name, proc.returncode, time.monotonic() - start, "".join(lines))


def _table(results: Sequence[RunStats]) -> str:
    rows = [f"{'target':<10} {'status':<8} {'seconds':>8} {'executions':>12} {'exec/s':>8}"]
    for r in results:
        status = "ok" if r.exit_code == 0 else f"exit {r.exit_code}"
        runs = "?" if r.executions is None else str(r.executions)
        rate = "?" if r.per_second is None else str(r.per_second)
        rows.append(f"{r.target:<10} {status:<8} {r.seconds:>8.1f} {runs:>12} {rate:>8}")
    return "\n".join(rows)


def run_all(libfuzzer_args: Sequence[str]) -> int:
    """Fuzz every target in turn with the same libFuzzer flags; print a summary table and
    return the first failing target's exit status (0 when all passed)."""
    if _positional(libfuzzer_args):
        print("addcow_conformance.fuzz: --target all takes no corpus directory (each target has "
              "its own input format); give one with --target NAME", file=sys.stderr)
        return 2
    results = [_run_child(name, libfuzzer_args) for name in TARGET_NAMES]
    print(_table(results))
    return next((r.exit_code for r in results if r.exit_code != 0), 0)
