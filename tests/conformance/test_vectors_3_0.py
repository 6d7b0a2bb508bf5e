"""Suite 3.0.0: expectations tightened where the spec leaves no choice, and the vectors added
for the survivors of the mutation run of suite 2.1.0 (issue 16).

Each bug planted here (by monkeypatching the reference, which the forked ``python:`` adapter
inherits) is one that suite 2.1.0 let through, and that a vector of 3.0.0 now fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.harness.cli import main
from addcow_conformance.harness.outcomes import UNEXPECTED
from addcow_conformance.vectors.history import load_history

from addcow_ref.engine.hydrate import HydrateMixin

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"

pytestmark = pytest.mark.skipif(
    not (VECTORS / "manifest.json").is_file(), reason="vectors/manifest.json not generated yet"
)


def _failing(tmp_path: Path, globs: list[str]) -> set[str]:
    """Ids of the vectors matching ``globs`` that the (possibly patched) reference fails."""
    out = tmp_path / f"run-{len(list(tmp_path.iterdir()))}.json"
    args = ["run", "--impl", "python:addcow_conformance.adapters.reference:main",
            "--vectors", str(VECTORS), "--report-json", str(out), "--output", "json"]
    for g in globs:
        args += ["--run", g]
    main(args)
    doc: dict[str, Any] = json.loads(out.read_text("utf-8"))
    assert {v["id"] for v in doc["vectors"]}, globs
    return {r["id"] for r in doc["results"] if r["outcome"] in UNEXPECTED}


def _changed_in(version: str) -> set[str]:
    """Ids whose expectation ``version`` changed from the version before it."""
    history = load_history()
    i = next(n for n, v in enumerate(history) if v.version == version)
    old, new = history[i - 1].vectors, history[i].vectors
    return {k for k, d in new.items() if k in old and old[k] != d}


def test_hydration_that_leaves_a_longer_image_file(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Hydration that skips step 3 of HYDRATE-ORDER (the truncation of a longer image file).
    Suite 2.1.0 compared only the image file's first virtual_size bytes after a hydration, so
    this bug passed it (the mutation run's ``_cut_image_file`` survivors); 3.0.0 pins the
    length, and the one hydrate vector whose image file is longer fails."""
    assert "ops/hydrate-image-file-longer" in _changed_in("3.0.0")
    assert _failing(tmp_path, ["ops/hydrate*"]) == set()
    monkeypatch.setattr(HydrateMixin, "_cut_image_file", lambda self: None)
    assert _failing(tmp_path, ["ops/hydrate*"]) == {"ops/hydrate-image-file-longer"}
