"""Start-up of the quick commands: ``addcow-check`` and ``addcow info`` on a 1 MiB image against
an interpreter that does nothing (``python -c pass``), whole processes, interleaved.

On a small image these commands are almost all start-up: what they import. Checking thousands of
images from a shell loop, or the harness's command adapters, pays that per call, so the target
is a multiple of the bare interpreter's own start-up on the same machine (issue 15, section 2).
The ``python -S`` rows take the site hooks (``.pth`` files) out of both sides: what the tool
costs apart from this machine's start-up configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .measure import Row, interleave_timed
from .registry import Params, scenario
from .scn_check import _tool, _without_site

__all__ = ["startup"]

#: The target of every judged row: the whole process, against ``python -c pass``.
TARGET = "<= 3.0x python -c pass"
TARGET_RATIO = 3.0
#: Fewer samples than this leave the median of a ~10 ms process to the machine's noise.
MIN_REPEATS = 11


def _timed(argv: Sequence[str]) -> Callable[[], float]:
    """One whole process, output discarded, timed from spawn to exit; a failure raises, so a
    command that stopped working cannot pass for a fast one."""
    def run() -> float:
        t0 = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              check=False)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: "
                               f"{proc.stderr.decode(errors='replace').strip()[:300]}")
        return elapsed
    return run


def _small_image(workdir: str) -> Path:
    import addcow_ref

    path = Path(workdir) / "startup-small.add-cow"
    if not path.exists():
        addcow_ref.create(str(path), size=1 << 20, image_file="startup-small.raw")
    return path


@scenario("startup",
          "addcow-check and addcow info on a 1 MiB image (whole process) vs python -c pass")
def startup(p: Params) -> list[Row]:
    img = str(_small_image(p.workdir))
    check, addcow = _tool("addcow-check"), _tool("addcow")
    repeats = p.repeats if p.tiny else max(p.cheap_repeats, MIN_REPEATS)
    python = [sys.executable, "-c", "pass"]
    bare = [sys.executable, "-S", "-c", "pass"]
    cases: list[tuple[str, str, list[str], str, list[str], bool]] = [
        ("addcow-check small", "addcow-check", [check, img], "python -c pass", python, True),
        ("addcow info small", "addcow info", [addcow, "info", img], "python -c pass", python,
         True),
        ("addcow-check small, python -S", "addcow-check (python -S)",
         _without_site("addcow_conformance.checker.cli", [img]), "python -S -c pass", bare,
         False),
        ("addcow info small, python -S", "addcow info (python -S)",
         _without_site("addcow_ref.cli.main", ["info", img]), "python -S -c pass", bare, False),
    ]
    rows: list[Row] = []
    for variant, subject, argv, baseline, base_argv, judged in cases:
        s_run, b_run = _timed(argv), _timed(base_argv)
        s_run()  # warm the page cache and the bytecode cache of both, and prove both run
        b_run()
        s, b = interleave_timed(s_run, b_run, repeats)
        load = os.getloadavg()[0]
        rows.append(Row(
            "startup", variant, subject, baseline, s, b, TARGET if judged else "",
            TARGET_RATIO if judged else None, False,
            extra={"note": f"medians of {repeats} alternating runs: {s.median * 1000:.1f} ms "
                           f"against {b.median * 1000:.1f} ms; 1-minute load average "
                           f"{load:.2f} on {os.cpu_count()} CPUs"}))
    return rows
