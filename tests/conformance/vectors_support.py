"""Helpers for tests that run something over the committed vectors: load, copy, synthesize."""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"


@cache
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "manifest.json").read_text("utf-8"))
    return data


def vectors() -> list[dict[str, Any]]:
    return list(manifest()["vectors"])


def vector_dir(v: dict[str, Any]) -> Path:
    return VECTORS / ("v1" if v["spec"] == "1" else "v2") / str(v["id"])


def materialize(v: dict[str, Any], dest: Path) -> Path:
    """Copy the vector's directory to ``dest`` and create its ``synth: zeros`` files sparse."""
    shutil.copytree(vector_dir(v), dest)
    for f in v["files"]:
        if f.get("synth") == "zeros":
            p = dest / f["path"]
            p.parent.mkdir(parents=True, exist_ok=True)
            with p.open("wb") as fh:
                fh.truncate(f["size"])
    return dest


def merge_extents(extents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge adjacent runs with the same ``allocated`` (depth is not part of the interface)."""
    out: list[dict[str, Any]] = []
    for e in extents:
        if out and out[-1]["allocated"] == e["allocated"] \
                and out[-1]["start"] + out[-1]["length"] == e["start"]:
            out[-1]["length"] += e["length"]
        else:
            out.append(dict(e))
    return out
