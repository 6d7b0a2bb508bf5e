"""The docs page of the mutation run: current with the committed results and ledger, and showing
the score per module, the ledger per reason and the date."""

from __future__ import annotations

from pathlib import Path

from addcow_conformance.mutation.cli import DEFAULT_RESULTS
from addcow_conformance.mutation.ledger import REASONS, Ledger, LedgerEntry, load_ledger
from addcow_conformance.mutation.mutate import MutantSpec
from addcow_conformance.mutation.render import render_page
from addcow_conformance.mutation.results import MutantResult, RunRecord, load_results

#: The checkout's page (the tests run against an installed wheel, where DEFAULT_PAGE, found from
#: the package's own path, points nowhere).
PAGE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "mutation.rst"


def test_committed_page_is_current() -> None:
    text = render_page(load_results(DEFAULT_RESULTS), load_ledger())
    assert PAGE.read_text("utf-8") == text, (
        "docs/guides/mutation.rst is stale; run `python -m addcow_conformance.mutation render`")


def _spec(module: str, index: int, line: str = "if a < b:") -> MutantSpec:
    return MutantSpec(module, "f", "cmp-boundary", index, 7, line, "a <= b", f"{index:08x}")


def test_page_shows_scores_ledger_and_date() -> None:
    ledgered = _spec("pkg.a", 1)
    record = RunRecord(
        date="2026-01-02 03:04 UTC", commit="abc1234", python="3.11.7", cpus=2, jobs=2,
        sample=3, seed=1, call_timeout=5.0, modules=["pkg.a", "pkg.b"], candidates=10,
        duration_s=90.0, mutants_per_minute=2.0, suite_version="1.0.0", vectors=100,
        excluded_vectors={}, baseline_s=3.0,
        results=[MutantResult(_spec("pkg.a", 0), "killed", killed_by="v"),
                 MutantResult(ledgered, "survived"),
                 MutantResult(_spec("pkg.b", 2, "x = `y`"), "survived")],
    )
    ledger = Ledger({ledgered.id: LedgerEntry(ledgered.id, "equivalent", "same")})
    page = render_page(record, ledger)
    assert "Run on 2026-01-02 03:04 UTC (commit abc1234, suite 1.0.0)" in page
    assert "a sample of 3 of the 10 mutants (``--sample 3 --seed 1``)" in page
    assert "2.0 mutants per minute" in page
    # pkg.a: 1 of 2 killed raw, 1 of 1 killable; pkg.b: its survivor is new.
    assert "   * - ``pkg.a``\n     - 2\n     - 1\n     - 0\n     - 1\n     - 1\n     - 0\n" \
           "     - 50.0 %\n     - 100.0 %\n" in page
    assert "   * - ``pkg.b``\n     - 1\n     - 0\n     - 0\n     - 1\n     - 0\n     - 1\n" \
           "     - 0.0 %\n     - 0.0 %\n" in page
    meaning = REASONS["equivalent"]
    assert f"   * - ``equivalent``\n     - {meaning}\n     - 1\n     - 1\n" in page
    assert "1 survivors are not in the ledger" in page
    assert "``x = 'y'`` → ``a <= b``\n     - 0\n" in page
