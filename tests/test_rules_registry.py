"""The rule registry is the spec's: rules.json must equal what spec/*.rst declares."""

from __future__ import annotations

import json

import pytest

from addcow_ref.format import rulesource
from addcow_ref.format.layout import field_table
from addcow_ref.format.rules import all_rules
from addcow_ref.format.schema import HEADER_V1, HEADER_V2

from .conftest import ROOT


def test_rules_json_is_regenerated_from_spec() -> None:
    committed = (ROOT / "addcow_ref" / "format" / "rules.json").read_text(encoding="utf-8")
    assert committed == rulesource.render_rules_json(ROOT / "spec"), (
        "addcow_ref/format/rules.json is stale: run `python -m addcow_ref.format.rulesource`")


def test_installed_registry_matches_spec() -> None:
    spec_ids = [r["id"] for r in rulesource.extract_rules(ROOT / "spec")]
    assert list(all_rules()) == spec_ids


@pytest.mark.parametrize("struct", [HEADER_V2, HEADER_V1], ids=["v2", "v1"])
def test_every_rule_tag_on_a_schema_field_exists(struct: object) -> None:
    rules = all_rules()
    for info in field_table(struct):  # type: ignore[arg-type]
        for rule_id in info.rules:
            assert rule_id in rules, f"field {info.name} cites unknown rule {rule_id}"


def test_rule_field_options_name_real_fields() -> None:
    names = {f.name for s in (HEADER_V2, HEADER_V1) for f in field_table(s)}
    for rule in all_rules().values():
        assert rule.field is None or rule.field in names, (rule.id, rule.field)


def test_untestable_rules_say_why() -> None:
    for rule in all_rules().values():
        if rule.testability == "untestable":
            assert rule.reason, rule.id


def test_reader_duties_fit_the_severity() -> None:
    """A breach that a reader reads past (duty ``ignore``) cannot make a file non-conforming, and
    a breach of severity ``warning`` leaves a conforming file that a reader refuses only when it
    cannot read it at all (``FMT-BACKING-KNOWN``: a backing format it does not support)."""
    for rule in all_rules().values():
        if rule.reader == "ignore":
            assert rule.severity == "warning", rule.id
        if rule.severity == "warning" and rule.testability == "file":
            assert rule.reader == "ignore" or rule.id == "FMT-BACKING-KNOWN", rule.id


def test_split_rules_name_an_active_rule() -> None:
    rules = all_rules()
    for rule in rules.values():
        if rule.split_from is not None:
            assert rules[rule.split_from].status == "active", rule.id
            assert rule.split_from != rule.id


def test_duplicate_rule_ids_are_refused(tmp_path: object) -> None:
    from pathlib import Path

    d = Path(str(tmp_path))
    block = (".. rule:: HDR-X\n   :level: MUST\n   :severity: error\n   :applies-to: file\n"
             "   :testability: file\n   :reader: refuse\n\n   It MUST.\n")
    (d / "a.rst").write_text(block)
    (d / "b.rst").write_text(block)
    with pytest.raises(ValueError, match="HDR-X is declared twice"):
        rulesource.extract_rules(d)


def test_rules_json_is_valid_json_with_anchors() -> None:
    data = json.loads((ROOT / "addcow_ref" / "format" / "rules.json").read_text(encoding="utf-8"))
    for r in data["rules"]:
        assert r["anchor"] == "rule-" + r["id"].lower()
