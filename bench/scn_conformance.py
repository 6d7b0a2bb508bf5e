"""The conformance kit's own speed: generating the vectors, and a harness run over them with the
reference adapter, as a command per call and forked in process; growth with the vector count."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .measure import Row, Stats, constant, interleave, loglog_slope, run_process
from .registry import Params, ScenarioSkipped, scenario
from .scn_check import _tool

__all__ = ["conformance_kit"]

#: The reference adapter forked inside the harness process (no interpreter start per call).
IN_PROCESS = "python:addcow_conformance.adapters.reference:main"
#: 0 conforming, 1 unexpected failures: both are complete runs whose time counts.
_RAN = (0, 1)


def _harness(harness: str, impl: str, vectors: Path, ids: list[str], work: str,
             summary: list[str]) -> Callable[[], None]:
    def run() -> None:
        with tempfile.TemporaryDirectory(dir=work) as scratch, \
                tempfile.TemporaryFile() as out:
            argv = [harness, "run", "--impl", impl, "--vectors", str(vectors),
                    "--work-dir", scratch]
            for i in ids:
                argv += ["--run", i]
            run_process(argv, check_codes=_RAN, stdout=out)
            out.seek(0)
            text = out.read().decode(errors="replace")
        m = re.search(r"^vectors: (.*?) in [0-9.]+ s", text, re.MULTILINE)
        summary.append(m.group(1) if m else "no summary line")
    return run


@scenario("conformance-kit", "vector generation and harness runs over every vector with the "
                             "reference adapter (per-call command vs forked in process); growth "
                             "with the number of vectors")
def conformance_kit(p: Params) -> list[Row]:
    gen = _tool("addcow-vectors")
    harness = _tool("addcow-conformance")
    impl = _tool("addcow-impl")
    vectors = Path(p.workdir) / "vectors"

    def generate() -> None:
        run_process([gen, "generate", str(vectors)])

    copies = Path(tempfile.mkdtemp(prefix="vectors-copies-", dir=p.workdir))

    def copy() -> None:
        shutil.copytree(vectors, Path(tempfile.mkdtemp(dir=copies)) / "v", symlinks=True)

    # The first run of the interleave is the generator's (it must exist before it is copied).
    gs, gb = interleave(generate, copy, p.repeats)
    shutil.rmtree(copies)
    if not (vectors / "manifest.json").exists():
        raise ScenarioSkipped("addcow-vectors generate wrote no manifest.json")
    manifest = json.loads((vectors / "manifest.json").read_text())["vectors"]
    ids = sorted(v["id"] for v in manifest)
    rows = [Row("conformance-kit", f"generate {len(ids)} vectors", "addcow-vectors generate",
                "copy of its output", gs, gb, "", None, False,
                extra={"note": "whole process; the baseline copies the generated tree "
                               "(the cost of just writing those files)"})]

    # Tiny runs take one parse vector: the fewest adapter calls, so the smoke test stays short.
    chosen = sorted(v["id"] for v in manifest if v.get("kind") == "parse")[:1] if p.tiny else ids
    cmd_sum: list[str] = []
    fork_sum: list[str] = []
    # A harness run with one interpreter start per adapter call takes minutes here: two runs
    # of each are enough to see the factor (the per-vector growth below uses the fast adapter).
    reps = p.repeats if p.tiny else min(p.repeats, 2)
    cs, fs = interleave(_harness(harness, impl, vectors, chosen, p.workdir, cmd_sum),
                        _harness(harness, IN_PROCESS, vectors, chosen, p.workdir, fork_sum),
                        reps)
    rows.append(Row("conformance-kit", f"harness, {len(chosen)} vectors",
                    "--impl addcow-impl", f"--impl {IN_PROCESS}", cs, fs, "", None, False,
                    extra={"note": f"outcomes: command adapter {cmd_sum[-1]}; in-process "
                                   f"adapter {fork_sum[-1]}"}))

    sizes = [1, 2] if p.tiny else sorted({max(1, len(ids) * k // 8) for k in (1, 2, 4, 8)})
    growth: list[Row] = []
    per_vector = 0.0
    for k in sizes:
        summ: list[str] = []
        run = _harness(harness, IN_PROCESS, vectors, ids[:k], p.workdir, summ)
        st = Stats(tuple(_timed(run) for _ in range(p.repeats)))
        if not growth:
            per_vector = st.median / k
        growth.append(Row("harness-growth", f"{k} vectors", "in-process adapter",
                          "linear from the smallest run", st, constant(per_vector * k), "",
                          None, False, extra={"x": k, "x_label": "vectors run"}))
    if len(growth) >= 2:
        slope = loglog_slope([float(r.extra["x"]) for r in growth],
                             [r.subject_s.median for r in growth])
        growth[-1].extra["slope"] = slope
        growth[-1].extra["note"] = (f"slope of log(time) over log(vectors): {slope:.2f} "
                                    f"(1.0 is linear; below 1, fixed start-up costs dominate)")
    return rows + growth


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
