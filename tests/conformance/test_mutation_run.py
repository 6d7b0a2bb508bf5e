"""The mutation run end to end: a mutant the vectors must kill is killed, one no vector reaches
survives and is reported as new unless the ledger lists it, and the tree is never touched."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from addcow_conformance.harness.cli import default_vectors_dir
from addcow_conformance.mutation.cli import main
from addcow_conformance.mutation.ledger import Ledger, toml_entry
from addcow_conformance.mutation.loader import take_snapshot
from addcow_conformance.mutation.mutate import MutantSpec
from addcow_conformance.mutation.run import RunConfig, choose, list_mutants, run_mutants

BASE = "header/base"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_mutant_the_vectors_must_kill_is_killed() -> None:
    # parse_header returning None: no image can be opened, the first vector fails.
    snapshot = take_snapshot()
    header = snapshot.source_of("addcow_ref.format.header").path
    before = _digest(header)
    config = RunConfig(vectors_dir=default_vectors_dir(), ledger=Ledger({}),
                       modules=("addcow_ref.format.header",),
                       mutant_globs=("*:parse_header:return-none:*",),
                       vector_globs=(BASE,), jobs=1)
    record = run_mutants(config)
    assert [(r.outcome, r.killed_by) for r in record.results] == [("killed", BASE)]
    assert record.results[0].detail.startswith("info: ")
    assert (record.vectors, record.excluded_vectors) == (1, {})
    assert _digest(header) == before


@pytest.fixture
def unreached() -> str:
    """A mutant of the v1 upgrade, which no call of the adapter interface runs."""
    snapshot = take_snapshot()
    specs = [s for s in list_mutants(snapshot, ["addcow_ref.ops.upgrade"])
             if s.function == "upgrade_v1"]
    assert specs
    return choose(specs, 1, 0)[0].id


def _run(tmp_path: Path, mutant: str, ledger: Path) -> tuple[int, str, dict[str, object]]:
    out = tmp_path / "results.json"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = main(["run", "--module", "addcow_ref.ops.upgrade", "--mutant", mutant,
                       "--run", BASE, "--jobs", "1", "--ledger", str(ledger),
                       "--output", str(out), "--fail-on-new"])
    return status, buf.getvalue(), json.loads(out.read_text())


def test_a_survivor_not_in_the_ledger_is_new(tmp_path: Path, unreached: str) -> None:
    status, text, doc = _run(tmp_path, unreached, tmp_path / "no-ledger.toml")
    assert status == 1
    assert f"NEW  {unreached}" in text
    assert "1 survived (0 in the ledger, 1 new)" in text
    results = doc["results"]
    assert isinstance(results, list)
    assert [(r["id"], r["outcome"], r["ledger"]) for r in results] == [
        (unreached, "survived", None)]
    assert (results[0]["reached_by"], results[0]["detail"]) == (0, "no vector runs this statement")
    assert doc["summary"][-1]["new"] == 1  # type: ignore[index]


def test_a_survivor_in_the_ledger_is_not_new(tmp_path: Path, unreached: str) -> None:
    ledger = tmp_path / "ledger.toml"
    module, function, operator, index, digest = unreached.rsplit(":", 4)
    spec = MutantSpec(module, function, operator, int(index), 0, "", "", digest)
    ledger.write_text(toml_entry(spec, "unreachable-by-adapter", "upgrade is no adapter call")
                      + "\n")
    status, text, doc = _run(tmp_path, unreached, ledger)
    assert status == 0
    assert "NEW" not in text
    assert "1 survived (1 in the ledger, 0 new)" in text
    assert doc["results"][0]["ledger"] == "unreachable-by-adapter"  # type: ignore[index]


def test_a_mutant_only_the_numpy_mode_reaches_is_run_with_numpy() -> None:
    # _popcounts serves count_ones only where numpy is loaded, which no adapter call does by
    # itself: without the numpy mode this mutant was "no vector runs this statement".
    # Its first return serves numpy >= 2 (np.bitwise_count), its second the byte table of
    # older releases (Debian 12 has 1.24): mutate the one this numpy runs.
    np = pytest.importorskip("numpy")
    which = 0 if hasattr(np, "bitwise_count") else 1
    vector = "big/bitmap-over-cache-chunk"
    config = RunConfig(vectors_dir=default_vectors_dir(), ledger=Ledger({}),
                       modules=("addcow_ref.format.bitmap",),
                       mutant_globs=(f"*:_popcounts:return-none:{which}:*",),
                       vector_globs=(vector,), jobs=1)
    record = run_mutants(config)
    assert [(r.outcome, r.killed_by) for r in record.results] == [("killed", vector)]


def test_a_mutant_of_code_run_at_import_time_is_run_not_skipped() -> None:
    # _struct_code builds the header tables while fieldtable.py is imported, before the reach
    # trace starts: the trace says no vector runs it, yet the mutated library does not even
    # import. It was reported as a survivor ("no vector runs this statement") and never run;
    # now it runs, and a library that cannot be built is an error, outside the score.
    config = RunConfig(vectors_dir=default_vectors_dir(), ledger=Ledger({}),
                       modules=("addcow_ref.format.layout",),
                       mutant_globs=("*:_struct_code:const+1:3:*",),
                       vector_globs=(BASE,), jobs=1)
    record = run_mutants(config)
    assert [(r.outcome, r.detail) for r in record.results] == [("error", "KeyError: 8")]


def test_a_survivor_of_the_default_mode_runs_again_with_numpy(tmp_path: Path) -> None:
    # In the default mode count_ones counts with one big integer whatever nwords says, so this
    # mutant (nwords = len >> 2, twice the 64-bit words there are) changes no count. With numpy
    # loaded the same statement sizes numpy's view of the buffer, which then asks for twice the
    # bytes there are and raises. The default mode reaches the line, so the mutant used to run
    # there only, and survived. Run in a fresh interpreter: this test process may have numpy
    # loaded already, and the run's children would inherit it in the default mode too.
    pytest.importorskip("numpy")
    vector = "big/bitmap-over-cache-chunk"
    out = tmp_path / "results.json"
    subprocess.run([sys.executable, "-m", "addcow_conformance.mutation", "run",
                    "--module", "addcow_ref.format.bitmap",
                    "--mutant", "*:count_ones:const-1:0:*", "--run", "bitmap/*",
                    "--run", vector, "--jobs", "1", "--ledger", str(tmp_path / "none.toml"),
                    "--output", str(out)], check=True, capture_output=True)
    results = json.loads(out.read_text())["results"]
    assert [(r["outcome"], r["killed_by"]) for r in results] == [("killed", vector)]
