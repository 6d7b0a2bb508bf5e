"""``addcow-check --explain RULE-ID``: every rule explained from the package alone; unknown IDs
get one line, close matches and exit 64."""

from __future__ import annotations

import pytest
from addcow_conformance.checker.cli import main
from addcow_conformance.explain import (
    UnknownRule,
    explain,
    field_spans,
    fix_of,
    fix_sentences,
    resolve_rule_id,
)
from addcow_conformance.harness.manifest import load_manifest
from addcow_conformance.packaged import default_vectors_dir

from addcow_ref.format.rules import DOCS_URL_ENV, all_rules, rule_url


@pytest.fixture(autouse=True)
def _no_docs_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DOCS_URL_ENV, raising=False)


def test_every_file_testable_rule_has_a_fix_sentence_and_no_other_rule_does() -> None:
    file_rules = {rid for rid, r in all_rules().items() if r.testability == "file"}
    assert set(fix_sentences()) == file_rules
    for rid, sentence in fix_sentences().items():
        assert sentence.endswith("."), rid
        assert len(sentence) > 40, rid


@pytest.mark.parametrize("rule_id", sorted(all_rules()))
def test_every_rule_explains(rule_id: str) -> None:
    rule = all_rules()[rule_id]
    page = explain(rule_id)
    assert page.startswith(f"{rule_id}: {rule.level}, severity {rule.severity} ")
    assert f"Clause:      {rule_url(rule_id)}" in page
    assert "Fix:" in page
    assert "Broken by:" in page
    assert "Obeyed by:" in page
    assert "``" not in page, "reST markup left in the page"
    assert ":rule:`" not in page, "reST markup left in the page"
    if rule.reader is not None:
        assert f"Reader duty: {rule.reader}: " in page
    else:
        assert "Reader duty:" not in page
    assert " ".join(fix_of(rule).split()[:3]) in " ".join(page.split())


def test_field_and_byte_range_come_from_the_field_table() -> None:
    [span] = field_spans(all_rules()["HDR-CLUSTER-BITS"])
    assert (span.field.name, span.field.offset, span.field.size) == ("cluster_bits", 56, 4)
    page = " ".join(explain("HDR-CLUSTER-BITS").split())
    assert "cluster_bits (version 2 header), bytes 56-59 (0x0038-0x003b, 4 bytes" in page
    # A rule held by two fields names both.
    assert {s.field.name for s in field_spans(all_rules()["HDR-RESERVED"])} == {"reserved1",
                                                                              "reserved2"}


def test_vectors_that_break_and_obey_come_from_the_default_suite() -> None:
    vectors = load_manifest(default_vectors_dir()).vectors
    breaking = sorted(v.id for v in vectors if "HDR-MAGIC" in v.violates)
    assert breaking, "the suite has no vector breaking HDR-MAGIC"
    page = " ".join(explain("HDR-MAGIC").split())
    assert f"Broken by: {len(breaking)} vector" in page
    for vid in breaking:
        assert vid in page


def test_ids_are_matched_case_insensitively() -> None:
    assert resolve_rule_id(" hdr-magic ").id == "HDR-MAGIC"


def test_cli_prints_the_page_and_exits_0(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["--explain", "BMP-TRAILING", "--docs-url", "/srv/html"]) == 0
    out = capfd.readouterr().out
    assert out == explain("BMP-TRAILING", "/srv/html")
    assert "file:///srv/html/spec/bitmap.html#rule-bmp-trailing" in out


@pytest.mark.parametrize(("given", "suggested"), [("HDR-MAGIK", "HDR-MAGIC"),
                                                   ("BMP-TRAILNG", "BMP-TRAILING")])
def test_unknown_id_is_one_line_with_close_matches_and_exit_64(
        given: str, suggested: str, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["--explain", given]) == 64
    out, err = capfd.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"addcow-check: unknown rule ID {given!r}; did you mean ")
    assert suggested in err


def test_unknown_id_without_a_close_match_still_says_what_an_id_looks_like() -> None:
    with pytest.raises(UnknownRule, match="rule IDs look like HDR-MAGIC"):
        resolve_rule_id("XYZZY")


def test_checking_still_needs_an_image(capfd: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 64
    assert "Missing argument 'IMAGE...'" in capfd.readouterr().err
