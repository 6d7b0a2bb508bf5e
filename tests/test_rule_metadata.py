"""A rule's metadata must agree with its text, or the extractor refuses the spec.

The level is the strongest RFC 2119 key word of the clause, every clause holds one, every
file-testable rule states its reader duty and no other rule does, and ``:split-from:`` names a
rule of the spec. Each refusal is one line naming the file, the line and the rule, so the docs
build and the ``rules.json`` test fail where the author can see why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from addcow_ref.format import rulesource
from addcow_ref.format.rules import all_rules

from .conftest import ROOT

_HEAD = "Page\n====\n\n"


def _block(rule_id: str = "HDR-X", *, level: str = "MUST", testability: str = "file",
           extra: str = "   :reader: refuse\n", text: str = "It MUST hold.") -> str:
    return (f".. rule:: {rule_id}\n   :level: {level}\n   :severity: error\n"
            f"   :applies-to: file\n   :testability: {testability}\n{extra}\n   {text}\n\n")


def _extract(tmp_path: Path, *blocks: str) -> list[dict[str, object]]:
    (tmp_path / "page.rst").write_text(_HEAD + "".join(blocks), encoding="utf-8")
    return rulesource.extract_rules(tmp_path)


def test_a_well_formed_rule_is_accepted(tmp_path: Path) -> None:
    [rule] = _extract(tmp_path, _block())
    assert (rule["level"], rule["reader"], rule["split_from"]) == ("MUST", "refuse", None)


@pytest.mark.parametrize(("level", "text", "strongest"), [
    ("SHOULD", "A writer SHOULD do this; a reader MUST refuse that.", "MUST"),
    ("MUST", "A writer SHOULD do this.", "SHOULD"),
    ("MUST", "A reader MAY skip it.", "MAY"),
    ("MAY", "It is RECOMMENDED.", "SHOULD"),
    ("SHOULD", "It SHALL NOT happen.", "MUST"),
], ids=["should-says-must", "must-says-should", "must-says-may", "may-says-recommended",
        "should-says-shall-not"])
def test_a_level_that_disagrees_with_the_text_is_refused(tmp_path: Path, level: str, text: str,
                                                         strongest: str) -> None:
    with pytest.raises(ValueError, match="strongest key word") as info:
        _extract(tmp_path, _block(level=level, text=text))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'page.rst'}:4: rule HDR-X ")
    assert f":level: {level} but the strongest key word of its text is {strongest}" in message


@pytest.mark.parametrize("text", ["It must hold, in lower case.", "Cluster i is bit i & 7."])
def test_a_rule_without_a_key_word_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match=r"page\.rst:4: rule HDR-X holds no RFC 2119 key word"):
        _extract(tmp_path, _block(text=text))


@pytest.mark.parametrize(("text", "level"), [
    ("It MUST NOT happen.", "MUST"), ("It is REQUIRED.", "MUST"),
    ("It SHOULD NOT happen.", "SHOULD"), ("It is NOT RECOMMENDED.", "SHOULD"),
    ("It MAY happen.", "MAY"), ("It is OPTIONAL.", "MAY"),
    ("It MAY happen, and it SHOULD.", "SHOULD"), ("It MAY, it SHOULD, it MUST.", "MUST"),
])
def test_the_strongest_key_word_decides_the_level(tmp_path: Path, text: str,
                                                  level: str) -> None:
    assert rulesource.strongest_keyword(text) == level
    [rule] = _extract(tmp_path, _block(level=level, text=text))
    assert rule["level"] == level


@pytest.mark.parametrize(("testability", "extra", "complaint"), [
    ("file", "", "file-testable rule HDR-X needs :reader:"),
    ("file", "   :reader: maybe\n", "needs :reader: one of ['either', 'ignore', 'refuse']"),
    ("reader", "   :reader: refuse\n", "rule HDR-X has :reader: but only file-testable rules"),
], ids=["missing", "unknown-value", "on-a-reader-rule"])
def test_the_reader_duty_belongs_to_file_rules_only(tmp_path: Path, testability: str,
                                                    extra: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=r"page\.rst:4: ") as info:
        _extract(tmp_path, _block(testability=testability, extra=extra))
    assert complaint in str(info.value)


def test_split_from_must_name_a_rule_of_the_spec(tmp_path: Path) -> None:
    old = _block("HDR-OLD")
    new = _block("HDR-NEW", extra="   :reader: ignore\n   :split-from: HDR-OLD\n")
    assert {r["id"]: r["split_from"] for r in _extract(tmp_path, old, new)} == {
        "HDR-OLD": None, "HDR-NEW": "HDR-OLD"}
    with pytest.raises(ValueError, match=r"page\.rst:4: rule HDR-NEW :split-from: names "
                                         r"HDR-OLD, which the spec does not declare"):
        _extract(tmp_path, new)


def test_main_reports_a_refused_rule_in_one_line_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "page.rst").write_text(_HEAD + _block(level="SHOULD"), encoding="utf-8")
    out = tmp_path / "rules.json"
    assert rulesource.main([str(tmp_path), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "rule HDR-X is :level: SHOULD" in err
    assert not out.exists()


def test_every_rule_of_the_spec_agrees_with_its_text() -> None:
    for rule in all_rules().values():
        assert rulesource.strongest_keyword(rule.text) == rule.level, rule.id
        assert (rule.reader is not None) == (rule.testability == "file"), rule.id


def test_conventions_define_every_reader_duty() -> None:
    """The page that the reader duty cites defines each of its values as a term."""
    text = (ROOT / "spec" / "conventions.rst").read_text(encoding="utf-8")
    section = text.split("Reader duties\n-------------\n", 1)[1].split("\n.. rule::", 1)[0]
    terms = {line for line in section.splitlines() if line and not line.startswith(" ")
             and not line.endswith(".") and " " not in line}
    assert terms == rulesource.READER_DUTIES
