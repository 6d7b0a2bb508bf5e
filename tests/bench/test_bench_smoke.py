"""Every benchmark scenario still runs, on tiny sizes (the measurements are not judged here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..conftest import ROOT


def test_every_scenario_runs_on_tiny_sizes(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--repeats", "1", "--json", str(out),
         "--workdir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    listed = subprocess.run([sys.executable, "-m", "bench", "--list"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    measured = {k for k, n in doc["meta"]["ran"].items() if n > 0} | set(doc["skipped"])
    assert names == measured, f"scenarios that produced nothing: {names - measured}"
    assert not doc["errors"], doc["errors"]
    for row in doc["rows"]:
        if row["metric"] in ("time", "KiB"):  # a fitted slope may be anything on tiny sizes
            assert row["subject_s"]["median"] > 0, row
            assert row["baseline_s"]["median"] > 0, row
        assert row["met"] in (True, False, None), row
