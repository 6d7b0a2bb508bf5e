"""Property: whatever happens to a valid image (bit flips, truncation, any value in any field,
bytes appended), the checker returns a report with a checked verdict, never raises, and its
JSON validates. Field-targeted values come from the field widths in ``addcow_ref.format.layout``."""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from addcow_conformance.checker import Report, check_file
from addcow_conformance.checker.report import json_document
from hypothesis import given
from hypothesis import strategies as st

from addcow_ref.format.layout import field_table
from addcow_ref.format.rules import all_rules
from addcow_ref.format.schema import HEADER_V1, HEADER_V2

from .images import encode_field, patch_bytes, pristine_v1, pristine_v2

SCHEMA = json.loads(resources.files("addcow_conformance").joinpath(
    "schemas/check-report.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

BASES = ["v2", "v2-no-backing", "v2-add-cow-backing", "v1"]


def _integer_values(size: int) -> st.SearchStrategy[int]:
    top = (1 << (8 * size)) - 1
    edges = [0, 1, 2, 8, 9, 16, 21, 22, 127, 128, 129, 511, 512, 4095, 4096, 4097,
             1 << 31, top >> 1, (top >> 1) + 1, top - 1, top]
    return st.one_of(st.sampled_from([e for e in edges if e <= top]),
                     st.integers(min_value=0, max_value=top))


def _bytes_values(size: int) -> st.SearchStrategy[bytes]:
    names = [b"raw", b"add-cow", b"qcow2", b"", b"raw\0x", b"\xff", b"image.raw",
             b"backing.raw", b"/", b"..", b"image.add-cow"]
    return st.one_of(st.sampled_from([n[:size].ljust(size, b"\0") for n in names]),
                     st.binary(min_size=size, max_size=size))


@st.composite
def field_mutation(draw: st.DrawFn, struct: Any) -> tuple[str, int, bytes]:
    info = draw(st.sampled_from(field_table(struct)))
    value: int | bytes
    if info.is_integer:
        value = draw(_integer_values(info.size))
    else:
        value = draw(_bytes_values(info.size))
    return ("field", info.offset, encode_field(struct, info.name, value))


MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 4200), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 4200)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("name-area"), st.integers(128, 4095), st.binary(min_size=1, max_size=32)),
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, list[tuple[Any, ...]]]:
    base = draw(st.sampled_from(BASES))
    struct = HEADER_V1 if base == "v1" else HEADER_V2
    ops = draw(st.lists(st.one_of(MUTATION, field_mutation(struct)), min_size=1, max_size=4))
    return base, ops


def build_base(base: str, d: Path) -> Path:
    if base == "v1":
        return pristine_v1(d).addcow
    if base == "v2-no-backing":
        return pristine_v2(d, backing=False).addcow
    if base == "v2-add-cow-backing":
        pristine_v2(d, stem="lower", image_name=b"lower.raw")
        return pristine_v2(d, backing_format="add-cow", backing_name=b"lower.add-cow").addcow
    return pristine_v2(d).addcow


def apply(path: Path, op: tuple[Any, ...]) -> None:
    kind = op[0]
    data = bytearray(path.read_bytes())
    if kind == "flip":
        if op[1] < len(data):
            data[op[1]] ^= 1 << op[2]
    elif kind == "truncate":
        del data[op[1]:]
    elif kind == "append":
        data += op[1]
    elif kind in ("field", "name-area"):
        path.write_bytes(bytes(data))
        patch_bytes(path, op[1], op[2])
        return
    path.write_bytes(bytes(data))


def assert_trustworthy(report: Report) -> None:
    assert report.error is None, report.error
    assert report.internal_errors == [], report.internal_errors
    assert report.exit_code in (0, 2, 3)
    rules = all_rules()
    for f in report.findings:
        assert f.severity == rules[f.rule].severity
        assert f.message
    checked = set(report.rules_checked)
    skipped = {n.rule for n in report.rules_not_applicable}
    assert checked.isdisjoint(skipped)
    assert checked | skipped == set(rules)
    VALIDATOR.validate(json_document([report]))


@given(mutated())
def test_mutated_images_always_get_a_checked_verdict(case: tuple[str, list[tuple[Any, ...]]]
                                                     ) -> None:
    base, ops = case
    with tempfile.TemporaryDirectory() as tmp:
        path = build_base(base, Path(tmp))
        for op in ops:
            apply(path, op)
        assert_trustworthy(check_file(path))


@given(st.binary(max_size=3000))
def test_arbitrary_bytes_always_get_a_checked_verdict(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.add-cow"
        path.write_bytes(data)
        report = check_file(path)
        assert_trustworthy(report)
        if len(data) < 128:
            assert report.rule_ids == ["HDR-COMPLETE"]


def test_atheris_target_accepts_its_seeds_and_garbage(tmp_path: Path) -> None:
    from addcow_conformance import fuzz

    fuzz.seed_corpus(tmp_path)
    seeds = sorted(tmp_path.iterdir())
    assert len(seeds) >= 3
    for seed in seeds:
        report = fuzz.check_bytes(seed.read_bytes())
        assert isinstance(report, Report)
        assert report.exit_code == 0, (seed.name, [f.message for f in report.findings])
    for data in (b"", b"ADD_COW\xff", bytes(5000)):
        fuzz.test_one_input(data)
