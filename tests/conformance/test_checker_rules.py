"""One test per file-testable rule: an image that breaks only that rule yields only that rule.

Each case starts from a pristine image set (``images.py``) and changes one thing, by field name.
A few rules cannot be broken alone (a ``bitmap_offset`` below 4096 that is a multiple of 4096 is
0, which breaks the name area too); those cases list the companions the spec makes inevitable.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from addcow_conformance.checker import CheckOptions, check_file
from addcow_conformance.checker.context import CheckContext
from addcow_conformance.checker.engine import registry, rules_not_for_checker
from addcow_conformance.checker.findings import Finding

from addcow_ref.format.constants import MAX_CHAIN_DEPTH
from addcow_ref.format.rules import all_rules, get_rule, rule_url

from .images import (
    HALF_BITMAP,
    VIRTUAL_SIZE,
    build_v1,
    format_field,
    patch_bytes,
    pristine_v1,
    pristine_v2,
    read_field,
    set_field,
)

Build = Callable[[Path], Path]


@dataclasses.dataclass(frozen=True)
class Case:
    rule: str
    build: Build
    also: frozenset[str] = frozenset()


def hdr_complete(d: Path) -> Path:
    s = pristine_v2(d)
    s.addcow.write_bytes(s.addcow.read_bytes()[:16])
    return s.addcow


def field_case(name: str, value: int | bytes, **pristine: object) -> Build:
    def build(d: Path) -> Path:
        s = pristine_v2(d, **pristine)  # type: ignore[arg-type]
        set_field(s.addcow, name, value)
        return s.addcow
    return build


def zero_name(path: Path, which: str) -> None:
    offset = read_field(path, f"{which}_name_offset")
    length = read_field(path, f"{which}_name_length")
    assert isinstance(offset, int)
    assert isinstance(length, int)
    patch_bytes(path, offset, bytes(length))


def name_image_required(d: Path) -> Path:
    s = pristine_v2(d)
    zero_name(s.addcow, "image")
    set_field(s.addcow, "image_name_offset", 0)
    set_field(s.addcow, "image_name_length", 0)
    return s.addcow


def name_backing_pair(d: Path) -> Path:
    s = pristine_v2(d)
    zero_name(s.addcow, "backing")
    set_field(s.addcow, "backing_name_offset", 0)
    return s.addcow


def name_bounds(d: Path) -> Path:
    s = pristine_v2(d)
    zero_name(s.addcow, "image")
    set_field(s.addcow, "image_name_offset", 4090)
    return s.addcow


def name_overlap(d: Path) -> Path:
    # "abacking.raw" at 128 holds "backing.raw" at 129: both names are real files.
    s = pristine_v2(d, image_name=b"abacking.raw")
    zero_name(s.addcow, "backing")
    set_field(s.addcow, "backing_name_offset", 129)
    return s.addcow


def name_no_nul(d: Path) -> Path:
    s = pristine_v2(d)
    patch_bytes(s.addcow, 128 + 5, b"\0")
    return s.addcow


def name_area_zero(d: Path) -> Path:
    s = pristine_v2(d)
    patch_bytes(s.addcow, 4000, b"\x01")
    return s.addcow


def bmp_length(d: Path) -> Path:
    s = pristine_v2(d)
    s.addcow.write_bytes(s.addcow.read_bytes()[:-1])
    return s.addcow


def bmp_trailing(d: Path) -> Path:
    s = pristine_v2(d)
    with open(s.addcow, "ab") as f:
        f.write(b"\0")
    return s.addcow


def bmp_padding(d: Path) -> Path:
    return pristine_v2(d, bitmap=bytes([0x55, 0x81])).addcow


def img_exists(d: Path) -> Path:
    s = pristine_v2(d)
    assert s.image is not None
    s.image.unlink()
    return s.addcow


def img_size(d: Path) -> Path:
    s = pristine_v2(d)
    assert s.image is not None
    os.truncate(s.image, VIRTUAL_SIZE - 512)
    return s.addcow


def img_file_type(d: Path) -> Path:
    s = pristine_v2(d)
    assert s.image is not None
    s.image.unlink()
    s.image.mkdir()
    return s.addcow


def img_identity(d: Path) -> Path:
    # The image file is the raw backing file: a write would change the "golden" backing file.
    return pristine_v2(d, image_name=b"backing.raw").addcow


def img_length(d: Path) -> Path:
    s = pristine_v2(d)
    assert s.image is not None
    os.truncate(s.image, 3 * VIRTUAL_SIZE)
    return s.addcow


def name_confined(d: Path) -> Path:
    (d / "up").mkdir(parents=True)
    s = pristine_v2(d / "up", backing_name=b"../backing.raw", backing=False)
    pristine_v2(d / "up", backing_name=b"../backing.raw", stem="image")
    (d / "backing.raw").write_bytes(bytes(VIRTUAL_SIZE))
    return s.addcow


def hdr_length_multiple(d: Path) -> Path:
    # header_length 132, the names moved to start at 136 so the name area holds them.
    s = pristine_v2(d)
    names = s.addcow.read_bytes()[128:128 + len(b"image.rawbacking.raw")]
    patch_bytes(s.addcow, 128, bytes(len(names)))
    patch_bytes(s.addcow, 136, names)
    set_field(s.addcow, "header_length", 132)
    set_field(s.addcow, "image_name_offset", 136)
    set_field(s.addcow, "backing_name_offset", 136 + len(b"image.raw"))
    return s.addcow


def virtual_size_unaligned(d: Path) -> Path:
    s = pristine_v2(d)
    assert s.image is not None
    set_field(s.addcow, "virtual_size", VIRTUAL_SIZE - 1)
    os.truncate(s.image, VIRTUAL_SIZE - 1)  # as long as the disk, so IMG-LENGTH holds
    return s.addcow


def back_exists(d: Path) -> Path:
    s = pristine_v2(d)
    assert s.backing is not None
    s.backing.unlink()
    return s.addcow


def back_format(d: Path) -> Path:
    s = pristine_v2(d, backing_format="add-cow")
    (d / "backing.raw").write_bytes(bytes(VIRTUAL_SIZE))
    return s.addcow


def back_loop(d: Path) -> Path:
    return pristine_v2(d, backing_format="add-cow", backing_name=b"image.add-cow").addcow


def chain(d: Path, below: int) -> Path:
    """An add-cow image with ``below`` add-cow files under it; the last has no backing."""
    for i in range(below, -1, -1):
        if i == below:
            pristine_v2(d, stem=f"f{i}", image_name=f"f{i}.raw".encode(), backing=False)
        else:
            pristine_v2(d, stem=f"f{i}", image_name=f"f{i}.raw".encode(),
                        backing_format="add-cow", backing_name=f"f{i + 1}.add-cow".encode())
    return d / "f0.add-cow"


def back_depth(d: Path) -> Path:
    return chain(d, MAX_CHAIN_DEPTH + 1)


def v1_case(**header: object) -> Build:
    def build(d: Path) -> Path:
        s = pristine_v1(d)
        s.addcow.write_bytes(build_v1(backing_name=b"backing.raw", bitmap=HALF_BITMAP,
                                      **header))  # type: ignore[arg-type]
        return s.addcow
    return build


def v1_bitmap_length(d: Path) -> Path:
    s = pristine_v1(d)
    s.addcow.write_bytes(s.addcow.read_bytes()[:-1])
    return s.addcow


CASES = [
    Case("HDR-COMPLETE", hdr_complete),
    Case("HDR-MAGIC", field_case("magic", b"ADD_COW\xfe")),
    Case("HDR-VERSION", field_case("version", 3)),
    Case("HDR-LENGTH-MIN", field_case("header_length", 64)),
    Case("HDR-LENGTH-MULTIPLE", hdr_length_multiple),
    # Names must start at or after header_length and end by bitmap_offset: impossible here.
    Case("HDR-LENGTH-BOUND", field_case("header_length", 8192), frozenset({"NAME-BOUNDS"})),
    Case("HDR-VIRTUAL-SIZE-ALIGN", virtual_size_unaligned),
    Case("HDR-VIRTUAL-SIZE-MAX", field_case("virtual_size", 1 << 63)),
    Case("HDR-BITMAP-OFFSET-ALIGN", lambda d: pristine_v2(d, bitmap_offset=4608).addcow),
    # The only multiple of 4096 below 4096 is 0, which leaves no name area.
    Case("HDR-BITMAP-OFFSET-MIN", lambda d: pristine_v2(d, bitmap_offset=2048).addcow,
         frozenset({"HDR-BITMAP-OFFSET-ALIGN"})),
    Case("HDR-CLUSTER-BITS", field_case("cluster_bits", 22)),
    Case("HDR-RESERVED", field_case("reserved2", b"\0" * 15 + b"\x01")),
    Case("FEAT-INCOMPAT-UNKNOWN", field_case("incompatible_features", 1)),
    Case("FEAT-COMPAT-UNKNOWN", field_case("compatible_features", 2)),
    # A writer rule, but the spec asks checkers to warn about a bit left set.
    Case("FEAT-AUTOCLEAR-UNKNOWN", field_case("autoclear_features", 1 << 63)),
    Case("FEAT-ALL-ALLOCATED", field_case("compatible_features", 1)),
    Case("NAME-IMAGE-REQUIRED", name_image_required),
    Case("NAME-BACKING-PAIR", name_backing_pair),
    Case("NAME-BOUNDS", name_bounds),
    Case("NAME-OVERLAP", name_overlap),
    Case("NAME-NO-NUL", name_no_nul),
    Case("NAME-AREA-ZERO", name_area_zero),
    Case("NAME-CONFINED", name_confined),
    Case("FMT-PADDING", field_case("image_format", b"raw\0x".ljust(16, b"\0"))),
    Case("FMT-IMAGE", field_case("image_format", format_field("qcow2"))),
    Case("FMT-BACKING-PRESENCE", field_case("backing_format", bytes(16))),
    Case("FMT-BACKING-KNOWN", field_case("backing_format", format_field("qcow2"))),
    Case("BMP-LENGTH", bmp_length),
    Case("BMP-TRAILING", bmp_trailing),
    Case("BMP-PADDING", bmp_padding),
    Case("IMG-EXISTS", img_exists),
    Case("IMG-FILE-TYPE", img_file_type),
    Case("IMG-IDENTITY", img_identity),
    Case("IMG-SIZE", img_size),
    Case("IMG-LENGTH", img_length),
    Case("BACK-EXISTS", back_exists),
    Case("BACK-FORMAT", back_format),
    Case("BACK-LOOP", back_loop),
    Case("BACK-DEPTH", back_depth),
    Case("V1-NAME-PADDING", v1_case(backing_file=b"backing.raw\0junk".ljust(1024, b"\0"))),
    Case("V1-IMAGE-NAME", v1_case(image_file=bytes(1024))),
    Case("V1-RESERVED", v1_case(reserved=b"\x01" + bytes(499))),
    Case("V1-BITMAP-LENGTH", v1_bitmap_length),
]

FILE_RULES = sorted(r.id for r in all_rules().values() if r.testability == "file")


def test_every_checked_rule_has_a_case() -> None:
    assert sorted(c.rule for c in CASES) == sorted(registry())
    assert set(FILE_RULES) <= {c.rule for c in CASES}


def test_every_file_rule_has_a_check_and_every_check_a_rule() -> None:
    checks = registry()
    rules = all_rules()
    assert set(FILE_RULES) <= set(checks), set(FILE_RULES) - set(checks)
    assert set(checks) <= set(rules), set(checks) - set(rules)


def test_rules_without_checks_are_reader_writer_or_untestable() -> None:
    rest = rules_not_for_checker()
    assert set(rest) == set(all_rules()) - set(registry())
    for rule_id, reason in rest.items():
        assert all_rules()[rule_id].testability in ("reader", "writer", "untestable"), rule_id
        assert reason


@pytest.mark.parametrize("case", CASES, ids=[c.rule for c in CASES])
def test_breaking_one_rule_reports_exactly_that_rule(case: Case, tmp_path: Path) -> None:
    path = case.build(tmp_path)
    report = check_file(path)
    assert report.error is None, report.error
    assert not report.internal_errors, report.internal_errors
    assert set(report.rule_ids) == {case.rule} | case.also, [f.message for f in report.findings]
    for f in report.findings:
        assert f.severity == get_rule(f.rule).severity
        assert f.anchor == rule_url(f.rule)
        assert f.file == str(path)
        assert f.message
    severity = get_rule(case.rule).severity
    assert report.exit_code == (2 if severity == "error" else 3)
    assert case.rule in report.rules_checked


@pytest.mark.parametrize("version", ["v2", "v1", "v2-no-backing", "v2-all-allocated"])
def test_pristine_images_have_no_finding(version: str, tmp_path: Path) -> None:
    if version == "v1":
        path = pristine_v1(tmp_path).addcow
    elif version == "v2-no-backing":
        path = pristine_v2(tmp_path, backing=False).addcow
    elif version == "v2-all-allocated":
        path = pristine_v2(tmp_path, bitmap=bytes([0xFF, 0x03]), compatible_features=1).addcow
    else:
        path = pristine_v2(tmp_path).addcow
    report = check_file(path)
    assert report.findings == []
    assert report.internal_errors == []
    assert report.exit_code == 0
    assert report.status == "conforming"
    checked = set(report.rules_checked)
    skipped = {n.rule for n in report.rules_not_applicable}
    assert checked.isdisjoint(skipped)
    assert checked | skipped == set(all_rules())


def test_chain_of_exactly_the_maximum_depth_conforms(tmp_path: Path) -> None:
    report = check_file(chain(tmp_path, MAX_CHAIN_DEPTH))
    assert report.findings == []
    assert report.exit_code == 0


@pytest.mark.parametrize("compatible", [0, 1])
def test_a_missing_backing_file_is_an_error_whatever_the_bitmap_holds(
        tmp_path: Path, compatible: int) -> None:
    # A reader opens the whole chain when it opens the image; it never scans the bitmap to
    # decide whether it needs the backing file (all_allocated only lets it skip, MAY).
    s = pristine_v2(tmp_path, bitmap=bytes([0xFF, 0x03]), compatible_features=compatible)
    assert s.backing is not None
    s.backing.unlink()
    report = check_file(s.addcow)
    assert report.rule_ids == ["BACK-EXISTS"]
    assert report.exit_code == 2


def test_loop_through_two_files_is_reported_at_the_top(tmp_path: Path) -> None:
    pristine_v2(tmp_path, stem="a", image_name=b"a.raw", backing_format="add-cow",
                backing_name=b"b.add-cow")
    pristine_v2(tmp_path, stem="b", image_name=b"b.raw", backing_format="add-cow",
                backing_name=b"a.add-cow")
    report = check_file(tmp_path / "a.add-cow")
    assert report.rule_ids == ["BACK-LOOP"]


def test_symlink_back_to_the_image_is_a_loop(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path, backing_format="add-cow", backing_name=b"link.add-cow")
    (tmp_path / "link.add-cow").symlink_to(s.addcow.name)
    assert check_file(s.addcow).rule_ids == ["BACK-LOOP"]


def test_symlink_loop_as_backing_is_a_missing_backing_file(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path, backing_name=b"loop1")
    (tmp_path / "loop1").unlink()
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    report = check_file(s.addcow)
    assert report.rule_ids == ["BACK-EXISTS"]
    assert "symbolic link loop" in report.findings[0].message


def test_no_follow_checks_the_metadata_file_alone(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path)
    assert s.image is not None
    assert s.backing is not None
    s.image.unlink()
    s.backing.unlink()
    report = check_file(s.addcow, CheckOptions(follow=False))
    assert report.findings == []
    skipped = {n.rule: n.reason for n in report.rules_not_applicable}
    for rule in ("IMG-EXISTS", "IMG-SIZE", "BACK-EXISTS", "BACK-FORMAT", "BACK-LOOP",
                 "BACK-DEPTH"):
        assert "--no-follow" in skipped[rule]


def test_no_follow_makes_v1_bitmap_length_not_applicable(tmp_path: Path) -> None:
    report = check_file(v1_bitmap_length(tmp_path), CheckOptions(follow=False))
    assert report.findings == []
    assert "V1-BITMAP-LENGTH" in {n.rule for n in report.rules_not_applicable}


def test_v1_virtual_size_comes_from_the_image_file(tmp_path: Path) -> None:
    # Growing the image file past a cluster boundary makes the stored bitmap too short.
    s = pristine_v1(tmp_path)
    assert s.image is not None
    os.truncate(s.image, 17 * 65536)
    assert check_file(s.addcow).rule_ids == ["V1-BITMAP-LENGTH"]


def test_a_check_that_raises_becomes_an_internal_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from addcow_conformance.checker import registry

    def boom(ctx: CheckContext) -> list[Finding]:
        raise ZeroDivisionError("kaboom")

    original = registry._REGISTRY["HDR-MAGIC"]
    monkeypatch.setitem(registry._REGISTRY, "HDR-MAGIC",
                        dataclasses.replace(original, func=boom))
    report = check_file(pristine_v2(tmp_path).addcow)
    assert report.exit_code == 1
    assert report.internal_errors[0].rule == "HDR-MAGIC"
    assert "kaboom" in report.internal_errors[0].message
    assert "HDR-VERSION" in report.rules_checked  # the run went on


def test_registering_a_check_for_an_unknown_rule_fails() -> None:
    from addcow_conformance.checker.registry import check

    with pytest.raises(ValueError, match="no such rule"):
        check("HDR-NO-SUCH-RULE")
    with pytest.raises(ValueError, match="registered twice"):
        check("HDR-MAGIC")(lambda ctx: [])


def test_the_run_order_does_not_depend_on_import_order() -> None:
    # Each area is declared by one module, so registering the check modules backwards (a bare
    # package object stands in for checks/__init__, which would import them in its own order)
    # gives the same run order.
    code = ("import importlib, json, sys, types\n"
            "import addcow_conformance.checker.registry as r\n"
            "import addcow_conformance.checker as c\n"
            "pkg = types.ModuleType('addcow_conformance.checker.checks')\n"
            "pkg.__path__ = [c.__path__[0] + '/checks']\n"
            "sys.modules[pkg.__name__] = pkg\n"
            "for m in ['names', 'legacy', 'header', 'files', 'features', 'bitmap']:\n"
            "    importlib.import_module(pkg.__name__ + '.' + m)\n"
            "print(json.dumps(list(r.in_run_order())))\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert json.loads(out) == list(registry())
    areas = [rule.split("-", 1)[0] for rule in registry()]
    assert list(dict.fromkeys(areas)) == ["HDR", "FEAT", "NAME", "FMT", "BMP", "IMG", "BACK",
                                          "V1"]


def test_report_facts_use_the_info_record_names(tmp_path: Path) -> None:
    from addcow_conformance.checker.findings import Facts

    from addcow_ref.ops.info import INFO_FIELDS

    assert set(Facts.__annotations__) - {"file_size"} <= set(INFO_FIELDS)
    facts = check_file(pristine_v2(tmp_path).addcow).facts
    assert set(facts) <= set(Facts.__annotations__)
    assert {"virtual_size", "cluster_count", "allocated_clusters"} <= set(facts)
