"""The harness over the committed ``vectors/``: the reference passes, every mutant is caught.

The full reference run goes through the CLI in-process with the forked ``python:`` adapter (a
few seconds); the literal CI command ``addcow-conformance run --impl addcow-impl`` runs as a
subprocess over the op vectors, where the console scripts, argv handling and real process
boundaries matter most, to keep the suite within its time budget on two cores.

A mutant is *killed* when it gets an unexpected outcome on a vector the reference does not fail:
a reference bug must not count as a kill.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.harness.cli import main
from addcow_conformance.harness.impl import parse_impl
from addcow_conformance.harness.manifest import load_manifest
from addcow_conformance.harness.outcomes import UNEXPECTED
from addcow_conformance.harness.report import results_schema
from addcow_conformance.harness.runner import Runner, RunOptions, RunResult
from addcow_conformance.mutants import MUTANTS

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"

#: Every kind and result, v1, an operation that must be refused, a resize: a cross-section.
SAMPLE = [
    "--run", "read/*", "--run", "header/magic*", "--run", "legacy/with-backing",
    "--run", "legacy/write-refused", "--run", "ops/write-straddle-clusters",
    "--run", "ops/resize-grow-aligned",
]

pytestmark = pytest.mark.skipif(
    not (VECTORS / "manifest.json").is_file(), reason="vectors/manifest.json not generated yet"
)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("ref") / "results.json"
    status = main([
        "run", "--impl", "python:addcow_conformance.adapters.reference:main",
        "--vectors", str(VECTORS),
        "--check-refusal-reason", "--report-json", str(out), "--output", "json",
    ])
    doc: dict[str, Any] = json.loads(out.read_text("utf-8"))
    doc["status"] = status
    return doc


def test_reference_adapter_passes_every_committed_vector(reference_run: dict[str, Any]) -> None:
    bad = [
        f"{r['id']} [{r['capability']}] {r['outcome']}: {r['message']}"
        for r in reference_run["results"]
        if r["outcome"] in UNEXPECTED
    ]
    assert bad == []
    assert reference_run["status"] == 0
    manifest = load_manifest(VECTORS)
    assert {v["id"] for v in reference_run["vectors"]} == {v.id for v in manifest.vectors}
    # Skips are only for features the reference does not claim, never a silent gap.
    for r in reference_run["results"]:
        if r["outcome"] == "skip":
            assert "which the adapter does not declare" in r["message"], r


def test_reference_results_follow_the_schema(reference_run: dict[str, Any]) -> None:
    import jsonschema

    doc = {k: v for k, v in reference_run.items() if k != "status"}
    jsonschema.validate(doc, results_schema())


def test_addcow_impl_command_as_ci_runs_it(tmp_path: Path) -> None:
    exe = shutil.which("addcow-conformance")
    if exe is None:
        pytest.skip("addcow-conformance is not installed on PATH")
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [exe, "run", "--impl", "addcow-impl", "--vectors", str(VECTORS), "--jobs", "2",
         "--check-refusal-reason", "--junit", str(junit), *SAMPLE],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "CONFORMING" in proc.stdout
    assert "<testsuites" in junit.read_text("utf-8")


def _passing_for_reference(reference_run: dict[str, Any]) -> set[str]:
    return {v["id"] for v in reference_run["vectors"] if v["outcome"] in ("pass", "skip")}


def _run_mutant(name: str, vectors: list[Any], work: Path) -> RunResult:
    impl = parse_impl(f"python:addcow_conformance.mutants:main {name}")
    manifest = load_manifest(VECTORS)
    options = RunOptions(check_refusal_reason=True, exitfirst=True, work_dir=work)
    return Runner(impl, manifest, VECTORS, options).run(vectors)


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_mutant_fails_at_least_one_vector(
    name: str, reference_run: dict[str, Any], tmp_path: Path
) -> None:
    fair = _passing_for_reference(reference_run)
    manifest = load_manifest(VECTORS)
    breaks = MUTANTS[name].breaks
    # Vectors about the rule the mutant breaks go first: with --exitfirst this only saves time,
    # any failing vector counts.
    vectors = sorted(
        (v for v in manifest.vectors if v.id in fair), key=lambda v: (breaks not in v.rules, v.id)
    )
    result = _run_mutant(name, vectors, tmp_path)
    killers = [r for r in result.results if r.outcome in UNEXPECTED]
    assert killers, f"mutant {name} (breaks {MUTANTS[name].breaks}) passed every vector"


def test_mutants_name_a_rule_of_the_registry() -> None:
    from addcow_ref.format.rules import all_rules

    assert len(MUTANTS) >= 10
    for name, cls in MUTANTS.items():
        assert cls.name == name
        assert cls.breaks in all_rules(), name
