"""The rule <-> field mapping is declared twice and must agree: the spec's ``:field:`` option on a
``.. rule::`` directive (``spec/*.rst``, carried into ``rules.json``) and the ``rules=`` tuple
of each field in ``addcow_ref/format/schema.py`` (shown in the spec's field tables).

The two are not the same shape. ``:field:`` names one field per rule: the field a finding about
the rule points at. ``rules=`` may tag a rule on several fields (HDR-RESERVED guards both
reserved areas; NAME-BOUNDS both name offsets). So agreement means:

* a rule with a ``:field:`` is listed in that field's ``rules=`` (in v2 or v1, whichever has a
  field of that name), and
* a rule listed in any field's ``rules=`` has a ``:field:``, and it is one of the fields that
  list the rule.

Rules about bytes outside the fixed header are tagged on the header field that locates or
declares those bytes, because that is where a finding about them points: the name contents
(NAME-NO-NUL) on the name offsets, the image file (IMG-EXISTS, IMG-SIZE) on
``image_name_offset`` and ``virtual_size``, the backing chain (BACK-*) on
``backing_name_offset`` and ``backing_format``. Rules with no such field (the name area between
the names, NAME-AREA-ZERO; the bitmap, BMP-*; reader and writer behaviour in general) carry
neither a ``:field:`` nor a ``rules=`` tag, which this test accepts.
"""

from __future__ import annotations

from collections.abc import Mapping

from addcow_ref.format.layout import field_table
from addcow_ref.format.rules import all_rules
from addcow_ref.format.schema import HEADER_V1, HEADER_V2


def _schema_tags() -> dict[str, set[str]]:
    """Rule ID -> the names of the fields (v2 and v1) whose ``rules=`` list it."""
    tags: dict[str, set[str]] = {}
    for struct in (HEADER_V2, HEADER_V1):
        for info in field_table(struct):
            for rule_id in info.rules:
                tags.setdefault(rule_id, set()).add(info.name)
    return tags


def _disagreements(fields: Mapping[str, str | None], tags: Mapping[str, set[str]]) -> list[str]:
    """Every disagreement between ``fields`` (rule ID -> its ``:field:``) and ``tags`` (rule ID
    -> the fields whose ``rules=`` list it)."""
    out: list[str] = []
    for rule_id, field in fields.items():
        tagged = tags.get(rule_id, set())
        if field is not None and field not in tagged:
            out.append(f"{rule_id}: the spec's :field: is {field}, but that field's schema "
                       f"rules= does not list it (listed on: {sorted(tagged) or 'no field'})")
        if field is None and tagged:
            out.append(f"{rule_id}: the schema lists it on {sorted(tagged)}, but the spec's "
                       "rule has no :field:")
    out += [f"{rule_id}: listed on {sorted(names)} in the schema but not a rule of the spec"
            for rule_id, names in tags.items() if rule_id not in fields]
    return out


def _spec_fields() -> dict[str, str | None]:
    return {rule.id: rule.field for rule in all_rules().values()}


def test_spec_field_options_and_schema_rule_tags_agree() -> None:
    assert _disagreements(_spec_fields(), _schema_tags()) == []


def test_a_one_sided_tag_is_reported_from_either_side() -> None:
    """Starting from an agreeing mapping built from the schema's real tags, each kind of
    one-sided change is reported, and only for the rule changed."""
    tags = _schema_tags()
    assert len(tags) >= 30, "the comparison would be vacuous"
    fields: dict[str, str | None] = {rule_id: min(names) for rule_id, names in tags.items()}
    fields["READ-NAME-RELATIVE"] = None
    assert _disagreements(fields, tags) == []
    untagged = {**tags, "IMG-SIZE": set()}
    assert _disagreements(fields, untagged) == [
        "IMG-SIZE: the spec's :field: is virtual_size, but that field's schema rules= does not "
        "list it (listed on: no field)"]
    # Tagged on the other name offset only: the :field: no longer lists it.
    moved = {**tags, "NAME-NO-NUL": tags["NAME-NO-NUL"] - {fields["NAME-NO-NUL"]}}
    assert moved["NAME-NO-NUL"]
    assert [d.split(":")[0] for d in _disagreements(fields, moved)] == ["NAME-NO-NUL"]
    unfielded = {**fields, "HDR-MAGIC": None}
    assert [d.split(":")[0] for d in _disagreements(unfielded, tags)] == ["HDR-MAGIC"]
    unknown = {**tags, "HDR-NOT-A-RULE": {"magic"}}
    assert [d.split(":")[0] for d in _disagreements(fields, unknown)] == ["HDR-NOT-A-RULE"]
