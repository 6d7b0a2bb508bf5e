"""Cross-reference lint of the committed manifest: every reference resolves, nothing dangles."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from addcow_conformance.checker.engine import registry as checker_registry

from addcow_ref.format.rules import all_rules

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    data: Manifest = json.loads((VECTORS / "manifest.json").read_text("utf-8"))
    return data


def _vector_dir(v: dict[str, Any]) -> Path:
    return VECTORS / ("v1" if v["spec"] == "1" else "v2") / str(v["id"])


def test_manifest_validates_against_its_schema(manifest: Manifest) -> None:
    schema = json.loads((VECTORS / "manifest.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [f"{e.json_path}: {e.message}" for e in
              jsonschema.Draft202012Validator(schema).iter_errors(manifest)]
    assert not errors, errors[:10]


def test_schema_rejects_unknown_keys(manifest: Manifest) -> None:
    schema = json.loads((VECTORS / "manifest.schema.json").read_text("utf-8"))
    bad = json.loads(json.dumps(manifest))
    bad["vectors"][0]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(("key", "value"), [("violates", ["HDR-NO-SUCH-RULE"]),
                                            ("flags", ["no-such-flag"]),
                                            ("requires", ["no-such-feature"])])
def test_schema_rejects_unknown_references(manifest: Manifest, key: str, value: Any) -> None:
    schema = json.loads((VECTORS / "manifest.schema.json").read_text("utf-8"))
    bad = json.loads(json.dumps(manifest))
    bad["vectors"][0][key] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)


def test_references_resolve_and_maps_are_used(manifest: Manifest) -> None:
    rules, flags, features = manifest["rules"], manifest["flags"], manifest["features"]
    used_rules: set[str] = set()
    used_flags: set[str] = set()
    used_features: set[str] = set()
    for v in manifest["vectors"]:
        used_rules |= set(v["exercises"]) | set(v["violates"])
        used_rules |= {f["rule"] for f in v["checker"]["findings"]}
        if "refusal" in v["expect"]:
            used_rules.add(v["expect"]["refusal"]["rule"])
        used_flags |= set(v["flags"])
        used_features |= set(v["requires"])
    assert used_rules <= set(rules), sorted(used_rules - set(rules))
    assert used_flags <= set(flags), sorted(used_flags - set(flags))
    assert used_features <= set(features), sorted(used_features - set(features))
    assert set(flags) <= used_flags, sorted(set(flags) - used_flags)
    assert set(features) <= used_features, sorted(set(features) - used_features)
    testable = {r for r, e in rules.items() if e["testability"] != "untestable"}
    assert testable <= used_rules, sorted(testable - used_rules)
    assert set(rules) == {r.id for r in all_rules().values() if r.status == "active"}


def test_vector_invariants(manifest: Manifest) -> None:
    ids = [v["id"] for v in manifest["vectors"]]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))
    assert not set(ids) & set(manifest["retired"])
    for v in manifest["vectors"]:
        assert (v["result"] == "valid") == (not v["violates"]), v["id"]
        if v["result"] == "acceptable":
            assert v["flags"], v["id"]
        if len(v["violates"]) > 1 and v["result"] == "invalid":
            assert "multi-violation" in v["flags"], v["id"]
        if v["result"] == "invalid":
            assert v["expect"]["refusal"]["rule"] in v["violates"], v["id"]
        severities = {f["severity"] for f in v["checker"]["findings"]}
        want = 2 if "error" in severities else 3 if "warning" in severities else 0
        assert v["checker"]["exit_code"] == want, v["id"]
        # Rules no check decides (a reader's MAY) are broken without a finding.
        assert {f["rule"] for f in v["checker"]["findings"]} == set(v["violates"]) & set(
            checker_registry()), v["id"]
        if v["result"] == "acceptable":
            assert v["expect"].get("reader_duty") in (None, "ignore", "either"), v["id"]
        if _max_int(v) > 2**53 - 1:
            assert "big-int" in v["requires"], v["id"]


def _max_int(obj: Any) -> int:
    if isinstance(obj, bool):
        return 0
    if isinstance(obj, int):
        return obj
    if isinstance(obj, dict):
        return max((_max_int(x) for x in obj.values()), default=0)
    if isinstance(obj, list):
        return max((_max_int(x) for x in obj), default=0)
    return 0


def test_ids_equal_directories_and_files_match(manifest: Manifest) -> None:
    dirs = {p.relative_to(VECTORS).as_posix()
            for base in ("v1", "v2") for p in (VECTORS / base).glob("*/*") if p.is_dir()}
    expected = {_vector_dir(v).relative_to(VECTORS).as_posix() for v in manifest["vectors"]}
    assert dirs == expected
    for v in manifest["vectors"]:
        d = _vector_dir(v)
        listed = {f["path"] for f in v["files"] if "synth" not in f}
        on_disk = {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}
        assert listed == on_disk, v["id"]
        assert v["entry"] in {f["path"] for f in v["files"]}, v["id"]
        for f in v["files"]:
            if "synth" in f:
                assert not (d / f["path"]).exists()
                continue
            data = (d / f["path"]).read_bytes()
            assert len(data) == f["size"], (v["id"], f["path"])
            assert hashlib.sha256(data).hexdigest() == f["sha256"], (v["id"], f["path"])


def test_counts(manifest: Manifest) -> None:
    vs = manifest["vectors"]
    c = manifest["counts"]
    assert c["total"] == len(vs)
    assert c["kind"] == {k: Counter(v["kind"] for v in vs)[k] for k in c["kind"]}
    assert c["result"] == {k: Counter(v["result"] for v in vs)[k] for k in c["result"]}
    assert sum(c["kind"].values()) == sum(c["result"].values()) == len(vs)


def test_sha256sums_match_files_both_ways() -> None:
    lines = (VECTORS / "SHA256SUMS").read_text("utf-8").splitlines()
    listed = {}
    for line in lines:
        digest, path = line.split("  ", 1)
        listed[path] = digest
    assert list(listed) == sorted(listed)
    on_disk = {p.relative_to(VECTORS).as_posix() for p in VECTORS.rglob("*")
               if p.is_file() and p.name != "SHA256SUMS"}
    assert set(listed) == on_disk
    for path, digest in listed.items():
        assert hashlib.sha256((VECTORS / path).read_bytes()).hexdigest() == digest, path


def test_lists_agree_with_manifest(manifest: Manifest) -> None:
    for result in ("valid", "invalid", "acceptable"):
        lines = (VECTORS / "lists" / f"{result}.txt").read_text("utf-8").split()
        want = sorted(_vector_dir(v).relative_to(VECTORS).as_posix()
                      for v in manifest["vectors"] if v["result"] == result)
        assert lines == want


def test_committed_size_is_small() -> None:
    """The suite ships in the wheel and in every checkout: big images are ``synth`` files the
    harness makes, and what is committed stays small. 6 MiB since suite 3.0.0 (5 MiB before;
    its 203 vectors hold about 5.3 MB, a wheel of about 3.8 MB)."""
    total = sum(p.stat().st_size for p in VECTORS.rglob("*") if p.is_file())
    assert total < 6 * 1024 * 1024, f"vectors/ holds {total} bytes"
