"""``fieldtable.py``, the construct-free field tables, against the schema it is generated from.

The tools' start-up path (``addcow-check``, ``addcow info``) reads headers through the generated
tables so that it never imports construct; ``schema.py`` stays the one source of the layout.
These tests hold the two together: the committed module is what ``tablegen`` renders from the
schema today, its records equal the ones ``layout.field_table`` derives from the structs, and
decoding a header and evaluating each single-field check give construct's own answers.
"""

from __future__ import annotations

from typing import Any

import pytest
from construct import Int32ub, Struct, this
from hypothesis import given, settings
from hypothesis import strategies as st

from addcow_ref.format import fieldtable, schema, tablegen
from addcow_ref.format.header import HeaderV1, HeaderV2
from addcow_ref.format.layout import (
    HeaderTable,
    decode_field,
    decode_header,
    encode_field,
    field_info,
    field_table,
)

PAIRS = [pytest.param(fieldtable.HEADER_V2, schema.HEADER_V2, id="v2"),
         pytest.param(fieldtable.HEADER_V1, schema.HEADER_V1, id="v1")]


def test_committed_module_is_regenerated_from_the_schema() -> None:
    assert tablegen.MODULE_PATH.read_text("utf-8") == tablegen.render_module(), (
        "addcow_ref/format/fieldtable.py is stale: run `python -m addcow_ref.format.tablegen`")
    assert tablegen.main(["--check"]) == 0


def test_the_staleness_check_can_fail() -> None:
    grown = Struct(*schema.HEADER_V2.subcons,
                   schema.field("new_field", Int32ub, "A field added later."))
    text = tablegen.render_module({"HEADER_V2": grown, "HEADER_V1": schema.HEADER_V1})
    assert text != tablegen.MODULE_PATH.read_text("utf-8")
    assert "name='new_field', offset=128, size=4" in text


@pytest.mark.parametrize(("table", "struct"), PAIRS)
def test_table_records_are_the_schema_records(table: HeaderTable, struct: Struct) -> None:
    assert field_table(table) == field_table(struct)  # every compared attribute of FieldInfo
    assert [sorted(f.checks) for f in field_table(table)] == \
        [sorted(f.checks) for f in field_table(struct)]
    assert table.size == struct.sizeof()
    assert table.schema() is struct


def _construct_values(struct: Struct, data: bytes) -> dict[str, Any]:
    return {k: v for k, v in struct.parse(data).items() if not k.startswith("_")}


@pytest.mark.parametrize(("table", "struct"), PAIRS)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_decoding_and_checks_agree_with_construct(table: HeaderTable, struct: Struct,
                                                  data: st.DataObject) -> None:
    # Random bytes, with each field sometimes set to its default so that checks also hold.
    parts = []
    for info in field_table(struct):
        default = encode_field(struct, info.name, info.default)
        parts.append(data.draw(st.one_of(st.just(default),
                                         st.binary(min_size=info.size, max_size=info.size))))
    raw = b"".join(parts)
    values = decode_header(table, raw)
    assert values == _construct_values(struct, raw)
    assert list(values) == [f.name for f in field_table(struct)]
    for ours, theirs in zip(field_table(table), field_table(struct), strict=True):
        for rule, expr in theirs.checks.items():
            assert bool(ours.checks[rule](values)) == bool(expr(values)), (rule, values)


@pytest.mark.parametrize(("table", "struct"), PAIRS)
def test_every_check_holds_on_the_default_header(table: HeaderTable, struct: Struct) -> None:
    # The defaults name no image file; a header that does passes every single-field check.
    defaults = {f.name: f.default for f in field_table(struct)}
    if "image_name_length" in defaults:
        defaults["image_name_length"] = 1
    raw = b"".join(encode_field(struct, name, value) for name, value in defaults.items())
    values = decode_header(table, raw)
    results = {rule: check(values) for f in field_table(table) for rule, check in f.checks.items()}
    assert results
    assert all(results.values()), results


def test_a_check_that_fails_in_construct_fails_in_the_table() -> None:
    values = decode_header(fieldtable.HEADER_V2, bytes(fieldtable.HEADER_V2.size))
    info = field_info(fieldtable.HEADER_V2, "cluster_bits")
    assert values["cluster_bits"] == 0
    assert not info.checks["HDR-CLUSTER-BITS"](values)
    assert not field_info(schema.HEADER_V2, "cluster_bits").checks["HDR-CLUSTER-BITS"](values)


def test_decode_header_refuses_another_length() -> None:
    with pytest.raises(ValueError, match="HEADER_V2 is 128 bytes long, not 127"):
        decode_header(fieldtable.HEADER_V2, bytes(127))


def test_field_encoding_goes_through_the_schema() -> None:
    table, struct = fieldtable.HEADER_V2, schema.HEADER_V2
    assert encode_field(table, "version", 2) == encode_field(struct, "version", 2) == b"\0\0\0\2"
    assert decode_field(table, "version", b"\0\0\0\2") == 2


def test_unknown_field_names_the_field() -> None:
    with pytest.raises(KeyError, match="no field 'nope'"):
        field_info(fieldtable.HEADER_V2, "nope")


@pytest.mark.parametrize("expr", [this.a.b == 1, this._.a == 1])
def test_check_source_refuses_what_it_cannot_compile(expr: Any) -> None:
    with pytest.raises(TypeError, match="unsupported path"):
        tablegen.check_source(expr)


def test_header_classes_keep_their_schema_struct() -> None:
    assert HeaderV2._struct is schema.HEADER_V2
    assert HeaderV1._struct is schema.HEADER_V1
    assert HeaderV2._table is fieldtable.HEADER_V2


def test_the_rendered_table_does_not_depend_on_constructs_operator_names(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """construct's ``opnames`` is only repr text and differs by release (2.10.68, Debian 12's,
    writes ``and`` for ``operator.and_``; 2.10.70 writes ``&``): the committed table was stale
    on Debian's construct until the generator used its own operator table."""
    import operator

    from construct import expr

    from addcow_ref.format import tablegen

    monkeypatch.setitem(expr.opnames, operator.and_, "and")
    monkeypatch.setitem(expr.opnames, operator.or_, "or")
    assert tablegen.render_module() == tablegen.MODULE_PATH.read_text("utf-8")
