"""The example adapters of docs/guides/test-your-implementation.rst pass the committed vectors.

The guide includes ``docs/guides/adapters/adapter.sh`` and ``adapter.py`` verbatim
(``literalinclude``), so what a reader copies is what runs here: each goes through the harness,
as the guide's command line does, over every vector, and must have no unexpected outcome on a
vector the reference adapter passes. The reference's own results are the yardstick, not a fixed
count, so vectors added for a newer spec version that the reference does not pass yet do not
fail these tests. One interpreter per call makes each run take tens of seconds: marked slow.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.harness.cli import main
from addcow_conformance.harness.outcomes import UNEXPECTED

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"
ADAPTERS = ROOT / "docs" / "guides" / "adapters"
GUIDE = ROOT / "docs" / "guides" / "test-your-implementation.rst"

pytestmark = pytest.mark.skipif(
    not (VECTORS / "manifest.json").is_file(), reason="vectors/manifest.json not generated yet"
)


def _run(tmp_path: Path, impl: str, *extra: str) -> dict[str, Any]:
    out = tmp_path / "results.json"
    main(["run", "--impl", impl, "--vectors", str(VECTORS), "--jobs", "2",
          "--report-json", str(out), "--output", "json", *extra])
    doc: dict[str, Any] = json.loads(out.read_text("utf-8"))
    return doc


def _unexpected(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["id"], r["capability"]): f"{r['outcome']}: {r['message']}"
            for r in doc["results"] if r["outcome"] in UNEXPECTED}


@pytest.fixture(scope="module")
def reference_failures(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Vectors on which the reference adapter itself has an unexpected outcome."""
    doc = _run(tmp_path_factory.mktemp("ref"),
               "python:addcow_conformance.adapters.reference:main")
    return {vid for vid, _ in _unexpected(doc)}


@pytest.fixture
def path_with_addcow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shell adapter calls ``addcow``: the one installed next to this interpreter."""
    bindir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))


def _assert_passes_what_the_reference_passes(doc: dict[str, Any],
                                             reference_failures: set[str]) -> None:
    manifest_ids = {v["id"] for v in json.loads((VECTORS / "manifest.json").read_text())
                    ["vectors"]}
    assert {v["id"] for v in doc["vectors"]} == manifest_ids, "not every vector was run"
    bad = {k: v for k, v in _unexpected(doc).items() if k[0] not in reference_failures}
    assert bad == {}
    passed = sum(1 for r in doc["results"] if r["outcome"] == "pass")
    assert passed > len(manifest_ids), "too few checks passed to mean anything"


@pytest.mark.slow
@pytest.mark.usefixtures("path_with_addcow")
def test_shell_adapter_passes_every_vector_the_reference_passes(
        tmp_path: Path, reference_failures: set[str]) -> None:
    doc = _run(tmp_path, str(ADAPTERS / "adapter.sh"), "--lenient-refusal")
    _assert_passes_what_the_reference_passes(doc, reference_failures)
    # It declares info and read only: everything else is skipped, never failed.
    assert {r["capability"] for r in doc["results"] if r["outcome"] == "pass"} == {"info",
                                                                                   "read"}


@pytest.mark.slow
def test_python_adapter_passes_every_vector_the_reference_passes(
        tmp_path: Path, reference_failures: set[str]) -> None:
    impl = shlex.join([sys.executable, str(ADAPTERS / "adapter.py")])
    doc = _run(tmp_path, impl, "--check-refusal-reason")
    _assert_passes_what_the_reference_passes(doc, reference_failures)
    assert {r["capability"] for r in doc["results"] if r["outcome"] == "pass"} == {
        "info", "read", "map"}


def test_python_adapter_answers_capabilities_without_an_image(
        capfd: pytest.CaptureFixture[str]) -> None:
    import runpy

    module = runpy.run_path(str(ADAPTERS / "adapter.py"))  # not as __main__: main() not run
    assert module["main"](["capabilities"]) == 0
    caps = json.loads(capfd.readouterr().out)
    assert caps["supports"] == ["info", "read", "map"]
    assert module["main"](["apply", "x", "y"]) == 69
    assert module["main"](["read", "x"]) == 64


def test_guide_includes_both_adapters_verbatim() -> None:
    text = GUIDE.read_text("utf-8")
    for name in ("adapter.sh", "adapter.py"):
        assert f".. literalinclude:: adapters/{name}" in text
        assert os.access(ADAPTERS / name, os.X_OK), f"{name} is not executable"
