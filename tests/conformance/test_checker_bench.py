"""The checker-vs-qemu benchmark still runs end to end (tiny sizes; no timing is asserted:
speed targets live in bench/, not in tests)."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            reason = f"{tool} not found (Debian: apt-get install qemu-utils)"
            if os.environ.get("ADDCOW_REQUIRE_TOOLS") == "1":
                pytest.fail(f"{reason} (ADDCOW_REQUIRE_TOOLS=1)", pytrace=False)
            pytest.skip(reason)


def test_benchmark_runs_on_a_small_pair(tmp_path: Path) -> None:
    _need("qemu-img", "qemu-io")
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))  # bench/ is not an installed package
    bench = importlib.import_module("bench.check_vs_qemu")
    size = 64 << 20
    result = bench.run_benchmark(tmp_path, size=size, repeats=1)
    assert result["bitmap_bytes"] == (size >> 16) // 8
    for key in ("addcow_check", "addcow_check_without_site_hooks", "qemu_img_check"):
        assert result[key]["statuses"] == [0], key
        assert result[key]["peak_rss_mib"] > 0
        assert result[key]["median_s"] > 0
    assert result["targets"]["rss_under_64_mib"]
