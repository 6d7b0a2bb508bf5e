"""The comparison rules, the manifest loader and the known-failures ledger, one rule per test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.harness.compare import (
    REQUIRED_INFO,
    compare_info,
    compare_map,
    first_difference,
    normalize_int,
)
from addcow_conformance.harness.known_failures import KnownFailuresError, load_known_failures
from addcow_conformance.harness.manifest import ManifestError, load_manifest, verify_sums
from addcow_conformance.harness.outcomes import worst

from . import harness_suite

EXTENTS = [
    {"start": 0, "length": 512, "allocated": True},
    {"start": 512, "length": 1024, "allocated": False},
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("18446744073709551615", 2**64 - 1), (7.0, 7), ("-3", -3), ("0x10", "0x10"), (True, True)],
)
def test_normalize_int(value: Any, expected: Any) -> None:
    assert normalize_int(value) == expected


def test_info_accepts_decimal_strings_and_ignores_extra_fields() -> None:
    mismatches, ignored = compare_info(
        {"virtual_size": 2**60, "image_file": "a.raw", "cluster_size": 512},
        {"virtual_size": str(2**60), "image_file": "a.raw", "filename": "/x/y"},
    )
    assert (mismatches, ignored) == ([], ["cluster_size"])


def test_info_missing_mandatory_field_and_bool_is_not_int() -> None:
    mismatches, _ = compare_info(
        {"backing_file": None, "compatible_features": 1}, {"compatible_features": True}
    )
    assert mismatches == [
        {"field": "backing_file", "expected": None, "actual": "<missing>"},
        {"field": "compatible_features", "expected": 1, "actual": True},
    ]
    assert "allocated_clusters" in REQUIRED_INFO


def test_map_equal() -> None:
    assert compare_map(EXTENTS, [dict(e) for e in EXTENTS]) is None


@pytest.mark.parametrize(
    ("actual", "message", "offset"),
    [
        ({"start": 0}, "map output: not a JSON list", None),
        ([{"start": 0, "length": 512}], "map output: entry 0: 'allocated' is not true/false", None),
        (
            [{"start": 0, "length": 512, "allocated": True},
             {"start": 1024, "length": 512, "allocated": False}],
            "map entry 1 starts at 1024, expected 512 (gap or overlap)",
            512,
        ),
        (
            [{"start": 0, "length": 512, "allocated": True},
             {"start": 512, "length": 512, "allocated": False},
             {"start": 1024, "length": 512, "allocated": False}],
            "map entries 1 and 2 are adjacent and not merged",
            1024,
        ),
        (
            [{"start": 0, "length": 1024, "allocated": True},
             {"start": 1024, "length": 512, "allocated": False}],
            "at guest offset 512: expected unallocated, got allocated",
            512,
        ),
        (
            [{"start": 0, "length": 512, "allocated": True},
             {"start": 512, "length": 512, "allocated": False}],
            "at guest offset 1024: expected unallocated, got outside the map",
            1024,
        ),
    ],
    ids=["not-a-list", "no-allocated", "gap", "unmerged", "wrong-status", "short"],
)
def test_map_problems(actual: Any, message: str, offset: int | None) -> None:
    problem = compare_map(EXTENTS, actual)
    assert problem is not None
    assert (problem.message, problem.offset) == (message, offset)


class Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    def close(self) -> None:
        self.closed = True


def test_first_difference_streams_and_closes(tmp_path: Path) -> None:
    ref = Bytes(bytes(range(256)) * 8)
    out = tmp_path / "out"
    wrong = bytearray(ref.data[100:600])
    wrong[250] ^= 1
    out.write_bytes(bytes(wrong))
    assert first_difference(ref, out, 100, 500) == {"offset": 350, "expected": 94, "actual": 95}
    assert ref.closed
    out.write_bytes(ref.data[100:400])
    assert first_difference(Bytes(ref.data), out, 100, 500) == {
        "offset": 400, "expected": 400 % 256, "actual": None
    }
    out.write_bytes(ref.data[:10])
    assert first_difference(Bytes(ref.data), out, 0, 10) is None


def test_worst_outcome_order() -> None:
    assert worst(["pass", "skip"]) == "pass"
    assert worst(["pass", "fail", "xfail"]) == "fail"
    assert worst(["timeout", "crash", "fail"]) == "crash"
    assert worst([]) == "skip"


def test_manifest_loads_the_style_layout(tmp_path: Path) -> None:
    root = harness_suite.build_suite(tmp_path / "s")
    # STYLE (b) puts v2 vectors under v2/<id>; the loader finds either layout.
    (root / "v2").mkdir()
    (root / "read").rename(root / "v2" / "read")
    m = load_manifest(root)
    v = next(v for v in m.vectors if v.id == "read/backing-ends-mid-cluster")
    assert v.directory == root / "v2" / "read" / "backing-ends-mid-cluster"
    assert v.rules == ("BMP-BIT-ORDER", "READ-PAST-BACKING-EOF")


def test_manifest_errors(tmp_path: Path) -> None:
    root = harness_suite.build_suite(tmp_path / "s")
    (root / "manifest.json").write_text("{\"vectors\": [{\"id\": \"x/y\"}]}")
    with pytest.raises(ManifestError, match="vector 'x/y': malformed entry"):
        load_manifest(root)
    (root / "manifest.json").write_text("[1, 2")
    with pytest.raises(ManifestError, match="not JSON"):
        load_manifest(root)


def test_sums_catch_missing_and_changed_files(tmp_path: Path) -> None:
    root = harness_suite.build_suite(tmp_path / "s")
    assert verify_sums(root) == []
    (root / "header/magic-last-byte-fe/backing.raw").unlink()
    (root / "read/backing-ends-mid-cluster/image.raw").write_bytes(b"x")
    assert verify_sums(root) == [
        "header/magic-last-byte-fe/backing.raw: listed in SHA256SUMS but missing",
        "read/backing-ends-mid-cluster/image.raw: SHA-256 differs from SHA256SUMS "
        "(mangled checkout?)",
    ]
    only = [root / "ops/write-straddles-clusters/image.raw"]
    assert verify_sums(root, only) == []


def test_known_failures_ledger(tmp_path: Path) -> None:
    p = tmp_path / "kf.toml"
    p.write_text('"a/*" = { reason = "glob" }\n"a/b" = { reason = "exact", bug = "u" }\n')
    kf = load_known_failures(p)
    entry = kf.lookup("a/b")
    assert entry is not None
    assert (entry.reason, entry.bug) == ("exact", "u")
    other = kf.lookup("a/c")
    assert other is not None
    assert other.reason == "glob"
    assert kf.lookup("b/a") is None
    for bad, message in [
        ('"a" = 1\n', "must be a table"),
        ('"a" = { reason = "" }\n', "has no reason"),
        ('"a" = { reason = "r", why = 1 }\n', "unknown keys"),
        ("a = [\n", "not TOML"),
    ]:
        p.write_text(bad)
        with pytest.raises(KnownFailuresError, match=message):
            load_known_failures(p)
