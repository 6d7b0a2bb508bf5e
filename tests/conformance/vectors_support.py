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


def run_reference(tmp_path: Path, globs: list[str]) -> tuple[set[str], set[str]]:
    """``(ran, failing)``: the ids of the vectors matching ``globs`` and of those the
    reference (possibly patched by the test: the forked ``python:`` adapter inherits every
    monkeypatch) fails, run as CI runs it, with ``--check-refusal-reason``."""
    from addcow_conformance.harness.cli import main
    from addcow_conformance.harness.outcomes import UNEXPECTED

    out = tmp_path / f"run-{len(list(tmp_path.iterdir()))}.json"
    args = ["run", "--impl", "python:addcow_conformance.adapters.reference:main",
            "--vectors", str(VECTORS), "--report-json", str(out), "--output", "json",
            "--check-refusal-reason"]
    for g in globs:
        args += ["--run", g]
    main(args)
    doc: dict[str, Any] = json.loads(out.read_text("utf-8"))
    ran = {v["id"] for v in doc["vectors"]}
    assert ran, globs
    return ran, {r["id"] for r in doc["results"] if r["outcome"] in UNEXPECTED}


def failing_vectors(tmp_path: Path, globs: list[str]) -> set[str]:
    """The ids of the vectors matching ``globs`` that the (possibly patched) reference fails."""
    return run_reference(tmp_path, globs)[1]


def suite_ids(version: str) -> set[str]:
    """The vector ids of suite ``version`` as ``history.json`` records it."""
    from addcow_conformance.vectors.history import load_history

    return next(set(v.vectors) for v in load_history() if v.version == version)


def changed_and_added(version: str) -> tuple[set[str], set[str]]:
    """The ids whose expectation ``version`` changed, and those it added."""
    from addcow_conformance.vectors.history import load_history

    history = load_history()
    i = next(n for n, v in enumerate(history) if v.version == version)
    old, new = history[i - 1].vectors, history[i].vectors
    return ({k for k, d in new.items() if k in old and old[k] != d},
            set(new) - set(old))
