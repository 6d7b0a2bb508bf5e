"""Which vectors run which lines of the mutated modules, recorded once in the baseline run.

A mutant changes one statement; a vector whose calls never execute that statement behaves the
same with the mutant as without (the code before it is unchanged, so is the path to it), and
need not be run. A mutant no vector reaches survives without running, and is marked so: it is
either code no adapter call runs (upgrade, hydrate, create) or a behaviour no vector exercises.
In the baseline, every adapter call (a forked child of the harness) traces the lines of the
mutated modules it executes and writes them, with its working directory, to a file; the
working directory is the vector's scratch directory, whose name starts with the vector's index
in the run (``harness.sandbox.scratch_directory``).
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from addcow_conformance.harness.manifest import Vector

__all__ = ["Reach", "reached_by", "read_reach", "traced"]

#: (file, line) -> ids of the vectors whose calls executed that line.
Reach = dict[tuple[str, int], set[str]]

_Tracer = Callable[[types.FrameType, str, Any], Any]


def traced(func: Callable[[list[str]], int], files: Collection[str], out_dir: Path,
           ) -> Callable[[list[str]], int]:
    """``func`` (an adapter's entry point), recording the lines of ``files`` it executes."""
    wanted = frozenset(files)

    def call(argv: list[str]) -> int:
        seen: set[tuple[str, int]] = set()

        def local(frame: types.FrameType, event: str, arg: Any) -> _Tracer:
            if event == "line":
                seen.add((frame.f_code.co_filename, frame.f_lineno))
            return local

        def tracer(frame: types.FrameType, event: str, arg: Any) -> _Tracer | None:
            if frame.f_code.co_filename not in wanted:
                return None
            seen.add((frame.f_code.co_filename, frame.f_lineno))
            return local

        sys.settrace(tracer)
        threading.settrace(tracer)
        try:
            return func(argv)
        finally:
            sys.settrace(None)
            lines = "".join(f"{line}\t{path}\n" for path, line in sorted(seen))
            (out_dir / f"{os.getpid()}.txt").write_text(f"{os.getcwd()}\n{lines}", "utf-8")

    return call


def read_reach(out_dir: Path, order: Sequence[Vector]) -> Reach:
    """Merge the files :func:`traced` wrote during a run over ``order``."""
    reach: Reach = {}
    for path in sorted(out_dir.glob("*.txt")):
        cwd, _, body = path.read_text("utf-8").partition("\n")
        index = Path(cwd).name[:4]
        if not index.isdigit() or int(index) >= len(order):
            continue  # the capabilities probe, before any vector
        vector = order[int(index)].id
        for row in body.splitlines():
            line, _, file = row.partition("\t")
            reach.setdefault((file, int(line)), set()).add(vector)
    return reach


def reached_by(reach: Reach, file: str, span: tuple[int, int]) -> set[str]:
    """The vectors that executed any line of ``span`` in ``file``."""
    out: set[str] = set()
    for line in range(span[0], span[1] + 1):
        out |= reach.get((file, line), set())
    return out
