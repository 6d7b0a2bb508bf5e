"""Render benchmark results: JSON for machines, an RST page with a table and PNG plots for docs."""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .measure import Row

__all__ = ["fmt_value", "merge_results", "render_rst", "write_json"]


def write_json(rows: Sequence[Row], skipped: dict[str, str], path: Path,
               meta: dict[str, Any], errors: dict[str, str] | None = None) -> None:
    doc = {"meta": {"python": platform.python_version(), "machine": platform.machine(), **meta},
           "rows": [r.as_dict() for r in rows], "skipped": skipped, "errors": errors or {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def merge_results(old: dict[str, Any], new: dict[str, Any], rerun: set[str]) -> dict[str, Any]:
    """``old`` results with the scenarios of ``new`` (registered names ``rerun``, and every row
    scenario they produced) replaced by their new rows, in the place the old rows held; the
    run that made them is recorded in ``meta["reruns"]``, so the page can date them."""
    replaced = rerun | {r["scenario"] for r in new["rows"]}
    rows: list[dict[str, Any]] = []
    placed = False
    for r in old["rows"]:
        if r["scenario"] not in replaced:
            rows.append(r)
        elif not placed:
            rows += new["rows"]
            placed = True
    if not placed:
        rows += new["rows"]
    meta = dict(old["meta"])
    meta["ran"] = {**{k: v for k, v in old["meta"].get("ran", {}).items() if k not in rerun},
                   **new["meta"].get("ran", {})}
    meta["reruns"] = [*[x for x in old["meta"].get("reruns", [])
                        if not set(x["scenarios"]) <= rerun],
                      {"scenarios": sorted(rerun), "started": new["meta"].get("started"),
                       "minutes": new["meta"].get("minutes"),
                       "repeats": new["meta"].get("repeats")}]
    keep = {k: v for k, v in old.get("skipped", {}).items() if k not in rerun}
    errors = {k: v for k, v in old.get("errors", {}).items() if k not in rerun}
    return {"meta": meta, "rows": rows, "skipped": {**keep, **new.get("skipped", {})},
            "errors": {**errors, **new.get("errors", {})}}


def fmt_value(x: float, metric: str = "time") -> str:
    """A median in the unit its row measures (seconds, KiB of RSS, a bare number)."""
    if metric == "KiB":
        return f"{x / 1024:.1f} MiB"
    if metric != "time":
        return f"{x:.2f}"
    if x < 1e-3:
        return f"{x * 1e6:.0f} µs"
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


_MET = {True: "yes", False: "**no**", None: "—"}


def _size_label(x: float, _pos: object = None) -> str:
    """Axis ticks in binary units (2^40 -> 1T) rather than powers of two."""
    n = int(x)
    for unit, shift in (("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return f"{v:g}{unit}"
    return f"{n:g}"


def _plots(doc: dict[str, Any], outdir: Path) -> list[tuple[str, str]]:
    """One log-log PNG per scenario with two or more sized variants: subject and baseline medians.

    Rows opt out with ``extra["plot"] = False`` (a second baseline at a size already plotted).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    out: list[tuple[str, str]] = []
    by: dict[str, list[dict[str, Any]]] = {}
    for r in doc["rows"]:
        x = r["extra"].get("x")
        if isinstance(x, (int, float)) and x > 0 and r["extra"].get("plot", True):
            by.setdefault(r["scenario"], []).append(r)
    outdir.mkdir(parents=True, exist_ok=True)
    for name, rows in sorted(by.items()):
        if len(rows) < 2:
            continue
        rows.sort(key=lambda r: r["extra"]["x"])
        metric = rows[0].get("metric", "time")
        scale = 1 / 1024 if metric == "KiB" else 1.0
        xs = [r["extra"]["x"] for r in rows]
        fig, ax = plt.subplots(figsize=(6, 3.6))
        ax.plot(xs, [r["subject_s"]["median"] * scale for r in rows], "o-",
                label=rows[0]["subject"])
        ax.plot(xs, [r["baseline_s"]["median"] * scale for r in rows], "s--",
                label=rows[0]["baseline"])
        slope = rows[-1]["extra"].get("slope")
        if isinstance(slope, float):
            # Linear growth through the largest point: a steeper curve is a quadratic corner.
            last_x, last_y = xs[-1], rows[-1]["subject_s"]["median"] * scale
            ax.plot(xs, [last_y * x / last_x for x in xs], ":", color="grey",
                    label="slope 1 (linear)")
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(_size_label))
        if metric == "KiB":  # a budget against a flat line: linear from zero reads better
            ax.set_ylim(bottom=0, top=max(r["baseline_s"]["median"] * scale for r in rows) * 1.2)
        else:
            ax.set_yscale("log")
        ax.set_xlabel(rows[0]["extra"].get("x_label", "size"))
        ax.set_ylabel({"KiB": "peak RSS, MiB", "time": "median seconds"}.get(metric, metric))
        ax.set_title(name + (f" (slope {slope:.2f})" if isinstance(slope, float) else ""))
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        png = outdir / f"{name}.png"
        fig.savefig(png, dpi=100)
        plt.close(fig)
        out.append((name, png.name))
    return out


#: Raw HTML around wide content: a box that scrolls sideways on its own, so a wide table or
#: profile never widens the page column (inline style: the page must not depend on a theme rule).
_SCROLL_OPEN = '<div style="overflow-x: auto; max-width: 100%">'
_OPTION = re.compile(r"(?<![`\w-])(--?[A-Za-z][\w-]*(?:=[^\s,;)]+)?)")


def _raw(html: str) -> list[str]:
    return [".. raw:: html", "", f"   {html}", ""]


def _options_literal(text: str) -> str:
    """``text`` with command-line options (``--flush``) as literals: in running text the
    smart-quotes pass turns ``--`` into an en dash."""
    if "``" in text:
        return text
    return _OPTION.sub(lambda m: f"``{m.group(1)}``", text)


def _name_cell(name: str, value: str) -> str:
    """A subject or baseline with its median; a name that is a command line is a literal."""
    shown = f"``{name}``" if "--" in name or name.startswith("-") else name
    return f"{shown}: {value}"


def _reruns(meta: dict[str, Any]) -> list[str]:
    out = []
    for run in meta.get("reruns", []):
        out.append(f"Re-run on {run.get('started', '?')} ({run.get('minutes', '?')} minutes, "
                   f"{run.get('repeats', '?')} repeats), the rest kept: "
                   + ", ".join(f"*{name}*" for name in run["scenarios"]) + ".")
        out.append("")
    return out


def _tables(rows: list[dict[str, Any]]) -> list[str]:
    """One five-column table per scenario, under its name: the scenario column of a single
    table and a separate verdict column made it wider than the page."""
    lines: list[str] = []
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["scenario"], []).append(r)
    for name, group in by.items():
        lines += [f".. rubric:: {name}", "", *_raw(_SCROLL_OPEN),
                  ".. list-table::", "   :header-rows: 1", "   :widths: 22 26 26 9 17", "",
                  "   * - Variant", "     - Subject (median)", "     - Baseline (median)",
                  "     - Ratio", "     - Target: met"]
        for r in group:
            metric = r.get("metric", "time")
            target = f"{r['target']}: {_MET[r['met']]}" if r["target"] else _MET[r["met"]]
            lines += [
                f"   * - {r['variant']}",
                f"     - {_name_cell(r['subject'], fmt_value(r['subject_s']['median'], metric))}",
                f"     - {_name_cell(r['baseline'], fmt_value(r['baseline_s']['median'], metric))}",
                f"     - {r['ratio']:.2f}",
                f"     - {target}",
            ]
        lines += ["", *_raw("</div>")]
    return lines


def _collapsed(title: str, body: list[str]) -> list[str]:
    """A profile as a collapsed ``<details>`` block that scrolls sideways inside itself."""
    return [*_raw(f"<details><summary><code>{title}</code></summary>{_SCROLL_OPEN}"),
            ".. code-block:: text", "", *[f"   {ln}".rstrip() for ln in body], "",
            *_raw("</div></details>")]


def render_rst(json_path: Path, rst_path: Path, image_dir: Path,
               notes_path: Path | None = None, profiles_dir: Path | None = None) -> None:
    """Write the docs page from a results JSON file (plots need matplotlib); ``notes_path`` is
    hand-written analysis (proposals) appended as is, then every profile written by
    ``python -m bench.profile`` into ``profiles_dir``."""
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    lines = [
        "Benchmarks",
        "==========",
        "",
        ".. This page is generated by ``python -m bench --render``; do not edit by hand.",
        "",
        "Each scenario runs its subject and its baseline interleaved in one session and reports",
        "medians and the ratio of medians (for times lower is better; for throughputs the ratio",
        "is subject speed over baseline speed). Machine: "
        f"{doc['meta'].get('machine')}, Python {doc['meta'].get('python')}, "
        f"{doc['meta'].get('cpus', '?')} CPUs; run on "
        f"{doc['meta'].get('started', doc['meta'].get('date', '?'))}, "
        f"{doc['meta'].get('minutes', '?')} minutes; "
        f"{doc['meta'].get('repeats', '?')} repeats (at least 7 for the in-process scenarios "
        "whose runs take under a second).",
        "",
        *(["**This is a smoke run on tiny sizes (--tiny): its numbers say nothing about "
            "performance.**", ""] if doc["meta"].get("tiny") else []),
        *_reruns(doc["meta"]),
        *_tables(doc["rows"]),
    ]
    notes = [r for r in doc["rows"] if r["extra"].get("note")]
    if notes:
        lines += ["", "Notes", "-----", ""]
        for r in notes:
            note = _options_literal(r["extra"]["note"])
            lines.append(f"- *{r['scenario']} / {r['variant']}*: {note}")
    if doc.get("skipped"):
        lines += ["", "Skipped", "-------", ""]
        lines += [f"- {k}: {v}" for k, v in sorted(doc["skipped"].items())]
    if doc.get("errors"):
        lines += ["", "Failed", "------", ""]
        lines += [f"- {k}: ``{v}``" for k, v in sorted(doc["errors"].items())]
    plots = _plots(doc, image_dir)
    if plots:
        lines += ["", "Plots", "-----", ""]
        rel = Path("..") if rst_path.parent.name == "guides" else Path(".")
        for name, png in plots:
            lines += [f".. figure:: {(rel / '_static' / 'bench' / png).as_posix()}",
                      f"   :alt: {name}", "", f"   {name}", ""]
    if notes_path is not None and notes_path.exists():
        lines += ["", *notes_path.read_text(encoding="utf-8").splitlines()]
    profiles = sorted(profiles_dir.glob("*.txt")) if profiles_dir is not None else []
    if profiles:
        lines += ["", "Profiles", "--------", "",
                  "Written by ``python -m bench.profile`` (pyinstrument call trees down to 3 % "
                  "of the time; py-spy samples of the nbdkit process for the NBD workloads).",
                  ""]
        for prof in profiles:
            lines += _collapsed(prof.stem, prof.read_text(encoding="utf-8").splitlines())
    rst_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
