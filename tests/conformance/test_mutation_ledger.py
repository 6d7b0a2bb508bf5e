"""The ledger of survivors: reading it, matching mutants, counting; the scores over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from addcow_conformance.mutation.ledger import (
    REASONS,
    Ledger,
    LedgerEntry,
    LedgerError,
    load_ledger,
    toml_entry,
)
from addcow_conformance.mutation.mutate import MutantSpec
from addcow_conformance.mutation.results import MutantResult, apply_ledger, summarise


def spec(index: int = 0, digest: str = "0123abcd", module: str = "m") -> MutantSpec:
    return MutantSpec(module=module, function="C.f", operator="const+1", index=index, line=3,
                      original="x = 1", mutated="2", digest=digest)


def test_ledger_lines_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ledger.toml"
    path.write_text("# reviewed\n" + toml_entry(spec(), "equivalent", 'same "value"') + "\n")
    ledger = load_ledger(path)
    assert ledger.entries == {spec().id: LedgerEntry(spec().id, "equivalent", 'same "value"')}
    assert ledger.counts() == {**dict.fromkeys(REASONS, 0), "equivalent": 1}


def test_missing_ledger_is_empty(tmp_path: Path) -> None:
    assert load_ledger(tmp_path / "none.toml").entries == {}


@pytest.mark.parametrize(("line", "message"), [
    (toml_entry(spec(), "boring", "x"), "reason 'boring' is not one of equivalent"),
    (toml_entry(spec(), "equivalent", " "), "field 'note' must say why"),
    ('"m:f" = { reason = "equivalent", note = "x" }', "not a mutant id"),
    (f'"{spec().id}" = "equivalent"', "expected a table"),
    (f'"{spec().id}" = {{ reason = "equivalent", note = "x", bug = 1 }}', "unknown field 'bug'"),
    ("[[x", "ledger.toml: "),
])
def test_bad_entries_name_the_file_and_entry(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "ledger.toml"
    path.write_text(line + "\n")
    with pytest.raises(LedgerError, match=r"ledger\.toml") as info:
        load_ledger(path)
    assert message in str(info.value)


def test_lookup_by_id_then_by_loose_key() -> None:
    entry = LedgerEntry(spec(index=0).id, "performance-only", "cache size")
    ledger = Ledger({entry.id: entry})
    assert ledger.lookup(spec(index=0)) == entry
    assert ledger.lookup(spec(index=4)) == entry  # only the index moved
    assert ledger.lookup(spec(digest="ffffffff")) is None  # the line changed: review again
    assert ledger.lookup(spec(module="other")) is None
    # Two entries with the same loose key: the index must match exactly.
    twin = LedgerEntry(spec(index=1).id, "equivalent", "twin")
    both = Ledger({entry.id: entry, twin.id: twin})
    assert both.lookup(spec(index=1)) == twin
    assert both.lookup(spec(index=7)) is None


def test_scores_leave_out_ledgered_survivors_and_errors() -> None:
    results = [
        MutantResult(spec(index=0), "killed", killed_by="v"),
        MutantResult(spec(index=1), "timeout", killed_by="v"),
        MutantResult(spec(index=2, digest="00000002"), "survived"),
        MutantResult(spec(index=3, digest="00000003"), "survived"),
        MutantResult(spec(index=4, digest="00000004"), "error", detail="does not compile"),
        MutantResult(spec(index=0, module="n"), "survived"),
    ]
    known = spec(index=2, digest="00000002")
    ledger = Ledger({known.id: LedgerEntry(known.id, "equivalent", "same")})
    apply_ledger(results, ledger)
    m, n, total = summarise(results)
    assert (m.module, m.mutants, m.killed, m.timeout, m.survived, m.error) == ("m", 5, 1, 1, 2, 1)
    assert m.ledgered == {"equivalent": 1}
    assert m.new == 1
    assert m.raw_score == pytest.approx(2 / 4)
    assert m.killable_score == pytest.approx(2 / 3)
    assert (n.new, n.raw_score, n.killable_score) == (1, 0.0, 0.0)
    assert (total.module, total.mutants, total.new) == ("total", 6, 2)
    assert [r.is_new_survivor for r in results] == [False, False, False, True, False, True]


def test_stale_lists_the_entries_no_mutant_matches(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """An entry of a mutant the code still has is current; one whose line was edited (its
    digest no longer occurs) or whose function is gone is stale, and makes the exit 1."""
    from addcow_conformance.mutation.cli import main
    from addcow_conformance.mutation.loader import take_snapshot
    from addcow_conformance.mutation.run import list_mutants, resolve_modules

    snapshot = take_snapshot()
    current = list_mutants(snapshot, resolve_modules(snapshot, ["addcow_ref.ops.upgrade"]))[0]
    edited = MutantSpec(module=current.module, function=current.function,
                        operator=current.operator, index=current.index, line=current.line,
                        original=current.original, mutated=current.mutated, digest="ffffffff")
    gone = spec(module="addcow_ref.ops.upgrade")
    ledger = tmp_path / "ledger.toml"
    ledger.write_text("\n".join(toml_entry(s, "equivalent", "a note")
                                for s in (current, edited, gone)) + "\n", "utf-8")
    assert main(["stale", "--ledger", str(ledger)]) == 1
    assert capsys.readouterr().out.split() == sorted([edited.id, gone.id])
    ledger.write_text(toml_entry(current, "equivalent", "a note") + "\n", "utf-8")
    assert main(["stale", "--ledger", str(ledger)]) == 0
    assert capsys.readouterr().out == ""


def test_the_committed_ledger_has_no_stale_entry(capsys: pytest.CaptureFixture[str]) -> None:
    """Every reviewed entry still names a mutant of the code: an edit of a ledgered line
    changes its mutant's digest, and the old review must go with it (the next run then reports
    the new mutant, if it survives, for a fresh review). ``python -m
    addcow_conformance.mutation stale`` lists what to drop."""
    from addcow_conformance.mutation.cli import main

    status = main(["stale"])
    assert status == 0, "stale ledger entries: " + " ".join(capsys.readouterr().out.split())
