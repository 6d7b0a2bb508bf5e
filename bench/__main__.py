"""``python -m bench [--tiny] [--repeats N] [--only NAME ...] [--merge] [--render]``."""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import scenarios  # noqa: F401  (registers the scenarios)
from .measure import Row
from .registry import SCENARIOS, Params, ScenarioSkipped
from .report import fmt_value, merge_results, render_rst, write_json

ROOT = Path(__file__).resolve().parent.parent


def _cache_bytecode(cache: str) -> None:
    """Let every Python child keep its compiled bytecode, in the cache and not in the tree.

    An installed wheel ships bytecode, and an editable install writes it on first use; a machine
    that sets PYTHONDONTWRITEBYTECODE (this one does) would make every measured ``addcow-check``
    or adapter call recompile the whole package, a cost no user pays.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = os.path.join(os.path.abspath(cache), "pycache")


def _render(json_path: Path) -> None:
    rst = ROOT / "docs" / "guides" / "benchmarks.rst"
    render_rst(json_path, rst, ROOT / "docs" / "_static" / "bench",
               ROOT / "bench" / "notes.rst", ROOT / "bench" / "results" / "profiles")
    print(f"wrote {rst}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke run in seconds")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=None, help="scenario names or globs")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    ap.add_argument("--render", action="store_true",
                    help="also render docs/guides/benchmarks.rst and its plots")
    ap.add_argument("--workdir", default=None, help="where scratch images go (default: a temp dir)")
    ap.add_argument("--cache", help="where big built images are kept between runs",
                    default=os.environ.get("ADDCOW_BENCH_CACHE", "/var/tmp/addcow-bench"))
    ap.add_argument("--merge", action="store_true",
                    help="replace only the rows of the scenarios run in the existing --json file")
    ap.add_argument("--render-only", action="store_true",
                    help="render the page from the existing --json file without running")
    args = ap.parse_args(argv)
    if args.render_only:
        _render(args.json)
        return 0
    if args.list:
        for s in SCENARIOS.values():
            print(f"{s.name:28} {s.description}")
        return 0
    chosen = [s for s in SCENARIOS.values()
              if args.only is None or any(fnmatch.fnmatch(s.name, p) for p in args.only)]
    if not chosen:
        print(f"no scenario matches {args.only}", file=sys.stderr)
        return 64
    t_start = time.time()
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    #: Rows each registered scenario produced (a scenario may emit rows under several names).
    ran: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="addcow-bench-", dir=args.workdir) as work:
        cache = os.path.join(work, "cache") if args.tiny else args.cache
        _cache_bytecode(cache)
        params = Params(tiny=args.tiny, repeats=args.repeats, workdir=work, cache=cache)
        for s in chosen:
            missing = [t for t in s.needs if shutil.which(t) is None]
            if missing:
                skipped[s.name] = f"needs {', '.join(missing)}"
                print(f"-- {s.name}: skipped ({skipped[s.name]})", flush=True)
                continue
            print(f"-- {s.name}: {s.description}", flush=True)
            t0 = time.perf_counter()
            try:
                produced = s.run(params)
            except ScenarioSkipped as e:
                skipped[s.name] = str(e)
                print(f"   skipped: {e}", flush=True)
                continue
            except Exception as e:
                errors[s.name] = f"{type(e).__name__}: {e}"
                traceback.print_exc()
                continue
            print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
            ran[s.name] = len(produced)
            for row in produced:
                rows.append(row)
                verdict = {True: "met", False: "MISSED", None: "info"}[row.met]
                sub = fmt_value(row.subject_s.median, row.metric)
                base = fmt_value(row.baseline_s.median, row.metric)
                print(f"   {row.variant:>12}  {row.subject} {sub}  {row.baseline} {base}"
                      f"  ratio {row.ratio:.2f}  [{row.target}: {verdict}]", flush=True)
    meta = {"date": datetime.date.today().isoformat(), "cpus": os.cpu_count(),
            "started": started, "minutes": round((time.time() - t_start) / 60, 1),
            "repeats": args.repeats, "tiny": args.tiny, "ran": ran}
    old = json.loads(args.json.read_text(encoding="utf-8")) \
        if args.merge and args.json.exists() else None
    write_json(rows, skipped, args.json, meta, errors)
    if old is not None:
        merged = merge_results(old, json.loads(args.json.read_text(encoding="utf-8")),
                               {s.name for s in chosen})
        args.json.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    if args.render:
        _render(args.json)
    if errors:
        print(f"scenarios that failed: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
