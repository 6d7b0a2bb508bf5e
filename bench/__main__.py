"""``python -m bench [--tiny] [--repeats N] [--only NAME ...] [--render]``."""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import os
import shutil
import sys
import tempfile
from pathlib import Path

from . import scenarios  # noqa: F401  (registers the scenarios)
from .measure import Row
from .registry import SCENARIOS, Params
from .report import render_rst, write_json

ROOT = Path(__file__).resolve().parent.parent


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
    args = ap.parse_args(argv)
    if args.list:
        for s in SCENARIOS.values():
            print(f"{s.name:28} {s.description}")
        return 0
    chosen = [s for s in SCENARIOS.values()
              if args.only is None or any(fnmatch.fnmatch(s.name, p) for p in args.only)]
    if not chosen:
        print(f"no scenario matches {args.only}", file=sys.stderr)
        return 64
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="addcow-bench-", dir=args.workdir) as work:
        params = Params(tiny=args.tiny, repeats=args.repeats, workdir=work)
        for s in chosen:
            missing = [t for t in s.needs if shutil.which(t) is None]
            if missing:
                skipped[s.name] = f"needs {', '.join(missing)}"
                print(f"-- {s.name}: skipped ({skipped[s.name]})", flush=True)
                continue
            print(f"-- {s.name}: {s.description}", flush=True)
            for row in s.run(params):
                rows.append(row)
                print(f"   {row.variant:>12}  {row.subject} {row.subject_s.median:.4f}s  "
                      f"{row.baseline} {row.baseline_s.median:.4f}s  ratio {row.ratio:.2f}  "
                      f"[{row.target}: {'met' if row.met else 'MISSED'}]", flush=True)
    meta = {"date": datetime.date.today().isoformat(), "cpus": os.cpu_count(),
            "repeats": args.repeats, "tiny": args.tiny}
    write_json(rows, skipped, args.json, meta)
    print(f"wrote {args.json}")
    if args.render:
        rst = ROOT / "docs" / "guides" / "benchmarks.rst"
        render_rst(args.json, rst, ROOT / "docs" / "_static" / "bench")
        print(f"wrote {rst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
