"""The checker against ``qemu-img check``, its memory, and how check and map scale with size."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .images import addcow_image, human_size, qcow2_overlay
from .measure import Row, Stats, constant, interleave, loglog_slope, run_process
from .registry import Params, ScenarioSkipped, scenario

__all__ = ["check_vs_qemu", "scaling"]

TIB = 1 << 40
GIB = 1 << 30
#: addcow-check exit statuses that mean "checked" (0 conforming, 3 warnings only).
_CHECKED = (0, 3)


def _tool(name: str) -> str:
    """The console script next to this interpreter (the editable install), else on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise ScenarioSkipped(f"{name} is not installed")
    return found


def _without_site(tool_module: str, args: Sequence[str]) -> list[str]:
    """The same program under ``python -S``: no ``.pth`` start-up hooks (this machine has one
    that imports certifi in every interpreter), the same modules from the same paths."""
    import site

    import addcow_conformance

    import addcow_ref

    paths = [*site.getsitepackages(),
             *(str(Path(str(m.__file__)).resolve().parents[1])
               for m in (addcow_ref, addcow_conformance))]
    code = (f"import sys; sys.path[1:1] = {paths!r}; from {tool_module} import main; "
            f"sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-S", "-c", code, *args]


def python_floor(repeats: int = 5) -> tuple[float, float]:
    """Median wall time of an interpreter that does nothing, with and without site hooks."""
    with_site = Stats(tuple(run_process([sys.executable, "-c", "pass"])[0]
                            for _ in range(repeats))).median
    bare = Stats(tuple(run_process([sys.executable, "-S", "-c", "pass"])[0]
                       for _ in range(repeats))).median
    return with_site, bare


def _timed(argv: Sequence[str], rss: list[int], codes: Sequence[int] = (0,)
           ) -> Callable[[], None]:
    """A callable for ``interleave`` that runs one whole process and records its peak RSS."""
    def run() -> None:
        _, kib = run_process(argv, check_codes=codes)
        rss.append(kib)
    return run


@scenario("check-vs-qemu",
          "addcow-check (whole process) vs qemu-img check on fully mapped qcow2 overlays; "
          "peak RSS of the checker against its 64 MiB budget",
          needs=("qemu-img",))
def check_vs_qemu(p: Params) -> list[Row]:
    check = _tool("addcow-check")
    # (label, size, qcow2 clusters in an external data file?, plotted?)
    cases: list[tuple[str, int, bool, bool]]
    if p.tiny:
        cases = [("64 MiB", 64 << 20, True, True), ("256 MiB", 256 << 20, True, True),
                 ("256 MiB in-file", 256 << 20, False, False)]
    else:
        cases = [("1 TiB", TIB, True, True), ("1 TiB in-file", TIB, False, False),
                 ("16 TiB", 16 * TIB, True, True), ("64 TiB", 64 * TIB, True, True)]
    rows: list[Row] = []
    rss_rows: list[Row] = []
    target_size = cases[0][1]
    floor, bare = python_floor()
    for label, size, data_file, plotted in cases:
        img = addcow_image(p.cache, size, fill="random")
        q = qcow2_overlay(p.cache, size, data_file=data_file)
        a_rss: list[int] = []
        q_rss: list[int] = []
        subject = _timed([check, "-q", str(img)], a_rss, _CHECKED)
        baseline = _timed(["qemu-img", "check", "-q", str(q)], q_rss)
        subject()  # warm the page cache for both, and prove both images pass their checker
        baseline()
        a_rss.clear()
        q_rss.clear()
        s, b = interleave(subject, baseline, p.repeats)
        judged = size == target_size
        layout = "clusters in an external raw data file" if data_file else "clusters in the file"
        rows.append(Row(
            "check-vs-qemu", label, "addcow-check", "qemu-img check", s, b,
            "<= 1.0x qemu-img check" if judged else "", 1.0 if judged else None, False,
            extra={"x": size, "x_label": "virtual size, bytes (64 KiB clusters)",
                   "plot": plotted, "addcow_rss_kib": max(a_rss), "qemu_rss_kib": max(q_rss),
                   "note": f"qcow2 overlay with every cluster mapped, {layout}; add-cow "
                           f"bitmap random, half full. Peak RSS: addcow-check "
                           f"{max(a_rss) / 1024:.1f} MiB, qemu-img check "
                           f"{max(q_rss) / 1024:.1f} MiB."}))
        if judged and data_file:
            rows[-1].extra["note"] += (
                f" Floor on this machine: an empty Python process takes {floor * 1000:.0f} ms, "
                f"{bare * 1000:.0f} ms without site hooks (python -S).")
            s2, b2 = interleave(
                _timed(_without_site("addcow_conformance.checker.cli", ["-q", str(img)]), [],
                       _CHECKED), baseline, p.repeats)
            rows.append(Row(
                "check-vs-qemu", f"{label}, python -S", "addcow-check (python -S)",
                "qemu-img check", s2, b2, "", None, False,
                extra={"note": "the same checker without the interpreter's site hooks: what "
                               "the check costs apart from this machine's start-up "
                               "configuration"}))
        if plotted:
            rss_rows.append(Row(
                "check-rss", label, "addcow-check peak RSS", "64 MiB budget",
                Stats(tuple(float(k) for k in a_rss)), constant(64 * 1024),
                "< 64 MiB, flat in size", 1.0, False, metric="KiB",
                extra={"x": size, "x_label": "virtual size, bytes",
                       "qemu_rss_kib": max(q_rss)}))
    if len(rss_rows) >= 2:
        first, last = rss_rows[0].subject_s.median, rss_rows[-1].subject_s.median
        rss_rows[-1].extra["note"] = (
            f"peak RSS grows by {(last - first) / 1024:+.1f} MiB from {rss_rows[0].variant} to "
            f"{rss_rows[-1].variant} ({last / first:.2f}x for "
            f"{rss_rows[-1].extra['x'] // rss_rows[0].extra['x']}x the bitmap)")
    return rows + rss_rows


def _slope_row(name: str, rows: list[Row], floor: float) -> Row:
    """Fit the growth exponent of the size-dependent part of the time (median minus the
    smallest size's median, which is process start-up and fixed costs) over the sizes where
    that part is well above noise."""
    # Points whose size-dependent part is lost in the noise of process start-up would flatten
    # the fit: keep those at least 10 % (and 20 ms) above the fixed cost.
    pts = [(float(r.extra["x"]), r.subject_s.median - floor) for r in rows[1:]
           if r.subject_s.median - floor > max(0.02, 0.1 * floor)]
    if len(pts) < 2:
        pts = [(float(r.extra["x"]), r.subject_s.median) for r in rows]
    slope = loglog_slope([x for x, _ in pts], [y for _, y in pts])
    raw = loglog_slope([float(r.extra["x"]) for r in rows], [r.subject_s.median for r in rows])
    rows[-1].extra["slope"] = slope
    return Row("scaling-slope", name, f"{name} growth exponent", "linear (1.0)",
               constant(slope), constant(1.0), "slope <= 1.3 (~1; quadratic would be 2)", 1.3,
               False, metric="slope",
               extra={"note": f"least-squares slope of log(time - fixed cost) over log(size) on "
                              f"{len(pts)} sizes from {human_size(int(pts[0][0]))}; "
                              f"fixed cost (smallest size) {floor * 1000:.0f} ms; "
                              f"slope of raw times over all sizes {raw:.2f}"})


@scenario("scaling",
          "addcow-check and addcow map time from 1 GiB to 64 TiB (log-log, fitted slope) vs "
          "reading the add-cow file with cat; at the largest size, the check vs reading the "
          "bitmap + numpy popcount and the JSON map vs writing its precomputed entries")
def scaling(p: Params) -> list[Row]:
    check = _tool("addcow-check")
    addcow = _tool("addcow")
    cat = shutil.which("cat") or "/bin/cat"
    sizes = ([16 << 20, 256 << 20, GIB] if p.tiny
             else [GIB, 16 * GIB, 256 * GIB, TIB, 4 * TIB, 16 * TIB, 64 * TIB])
    out: dict[str, list[Row]] = {"check": [], "map": []}
    for size in sizes:
        img = addcow_image(p.cache, size, fill="runs")
        read = _timed([cat, str(img)], [])
        for name, argv, codes in (("check", [check, "-q", str(img)], _CHECKED),
                                  ("map", [addcow, "map", "--output", "json", str(img)], (0,))):
            rss: list[int] = []
            subject = _timed(argv, rss, codes)
            subject()
            s, b = interleave(subject, read, p.repeats)
            out[name].append(Row(
                f"scaling-{name}", human_size(size), f"addcow {name}", "cat (read the file)",
                s, b, "", None, False,
                extra={"x": size, "x_label": "virtual size, bytes (64 KiB clusters)",
                       "extents": max(1, size >> 28), "peak_rss_kib": max(rss),
                       "note": f"bitmap {human_size(size >> 19)} in runs of 4096 clusters "
                               f"({max(1, size >> 28)} extents); peak RSS "
                               f"{max(rss) / 1024:.0f} MiB"}))
    rows = out["check"] + out["map"]
    for name, series in out.items():
        rows.append(_slope_row(f"addcow {name}", series, series[0].subject_s.median))
    return rows + _limit_rows(p, check, addcow_image(p.cache, sizes[-1], fill="runs"),
                              sizes[-1])


#: The least program that does the checker's work on a big bitmap: read it from the page cache
#: in the checker's 1 MiB chunks into one buffer and count its bits with numpy (argv: path,
#: bitmap offset, bitmap length). Run by the same interpreter, site hooks and all.
_READ_POPCOUNT = """
import os, sys
import numpy as np
path, offset, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_RDONLY)
buf = memoryview(bytearray(1 << 20))
ones, pos, end = 0, offset, offset + length
while pos < end:
    n = os.preadv(fd, [buf[:min(len(buf), end - pos)]], pos)
    if n <= 0:
        break
    ones += int(np.bitwise_count(np.frombuffer(buf, dtype=np.uint64, count=n >> 3)).sum())
    ones += int.from_bytes(buf[n & ~7:n], "little").bit_count()
    pos += n
print(ones)
"""


def _limit_rows(p: Params, check: str, img: Path, size: int) -> list[Row]:
    """The largest image's check and map against the least work that gives the same answer.

    ``addcow-check`` (whole process) against a process that reads the bitmap and counts its
    bits with numpy; ``addcow map --output=json`` (in this process, so neither side pays an
    interpreter's start-up) against writing the same JSON text from the list of its entries,
    loaded beforehand (json.dumps, the C encoder). The map's text must equal the baseline's
    byte for byte, or the row is not measured.
    """
    import contextlib
    import io
    import json

    from addcow_ref.cli.main import main as addcow_main
    from addcow_ref.format.constants import DEFAULT_BITMAP_OFFSET
    from addcow_ref.format.header import bitmap_length_for

    nbytes = bitmap_length_for(size, 16)
    rss: list[int] = []
    subject = _timed([check, "-q", str(img)], rss, _CHECKED)
    baseline = _timed([sys.executable, "-c", _READ_POPCOUNT, str(img),
                       str(DEFAULT_BITMAP_OFFSET), str(nbytes)], [])
    subject()
    baseline()
    rss.clear()
    s, b = interleave(subject, baseline, p.repeats)
    rows = [Row(
        "scaling-limit", f"{human_size(size)} check", "addcow-check", "read + numpy popcount",
        s, b, "<= 2.0x read+popcount", 2.0, False,
        extra={"peak_rss_kib": max(rss),
               "note": f"whole processes, same interpreter; the baseline reads the "
                       f"{human_size(nbytes)} bitmap in 1 MiB chunks into one buffer and "
                       f"counts its bits with numpy (import included). addcow-check peak "
                       f"RSS {max(rss) / 1024:.0f} MiB"})]

    def run_map(out: io.TextIOBase) -> None:
        with contextlib.redirect_stdout(out):
            status = addcow_main(["map", "--output", "json", str(img)])
        if status != 0:
            raise RuntimeError(f"addcow map exited {status}")

    captured = io.StringIO()
    run_map(captured)
    text = captured.getvalue()
    entries = json.loads(text)

    def write_list(out: io.TextIOBase) -> None:
        out.write(json.dumps(entries).replace("}, {", "},\n{") + "\n")

    probe = io.StringIO()
    write_list(probe)
    if probe.getvalue() != text:
        raise RuntimeError("addcow map's JSON differs from json.dumps of its own entries")
    with open(os.devnull, "w") as sink:
        s, b = interleave(lambda: run_map(sink), lambda: write_list(sink), p.repeats)
    rows.append(Row(
        "scaling-limit", f"{human_size(size)} map --output=json", "addcow map (in-process)",
        "json.dumps of the precomputed list", s, b, "<= 2.0x writing the list", 2.0, False,
        extra={"note": f"{len(entries):,} entries ({len(text) / (1 << 20):.0f} MiB of JSON) "
                       f"to /dev/null; the subject opens the image, maps it, splits it by the "
                       f"layers' holes and encodes; the baseline only encodes"}))
    return rows
