"""Every testable rule has a valid vector that obeys it and, if breakable, one that breaks it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from addcow_ref.format.rules import all_rules

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "vectors" / "manifest.json").read_text("utf-8"))
    return data


def _testable() -> list[str]:
    return sorted(r.id for r in all_rules().values()
                  if r.status == "active" and r.testability != "untestable")


def test_every_testable_rule_is_obeyed_by_a_valid_vector(manifest: dict[str, Any]) -> None:
    obeyed = {rid for v in manifest["vectors"] if v["result"] == "valid" for rid in v["exercises"]}
    missing = [rid for rid in _testable() if rid not in obeyed]
    assert not missing, f"rules without a valid vector exercising them: {missing}"


#: Breakable rules no committed vector can break, and why. Each entry must stay needed.
UNREPRESENTABLE = {
    "NAME-LENGTH-LIMIT": "a name longer than 4096 bytes that resolves needs a path longer than "
                         "PATH_MAX: neither the generator nor the harness can create or copy "
                         "such a file by path, and a reader on Linux cannot open it by path",
}


def test_every_breakable_rule_is_broken_by_a_vector(manifest: dict[str, Any]) -> None:
    broken = {rid for v in manifest["vectors"] for rid in v["violates"]}
    rules = all_rules()
    missing = [rid for rid in _testable() if not rules[rid].unbreakable and rid not in broken
               and rid not in UNREPRESENTABLE]
    assert not missing, f"breakable rules without a vector breaking them: {missing}"
    for rid in UNREPRESENTABLE:
        assert rid in _testable(), rid
        assert not rules[rid].unbreakable, rid
        assert rid not in broken, rid


def test_unbreakable_rules_are_never_claimed_broken(manifest: dict[str, Any]) -> None:
    rules = all_rules()
    wrong = sorted({rid for v in manifest["vectors"] for rid in v["violates"]
                    if rules[rid].unbreakable or rules[rid].testability == "untestable"})
    assert not wrong


@pytest.mark.parametrize("boundary", [9, 21])
def test_cluster_size_boundaries_are_covered(manifest: dict[str, Any], boundary: int) -> None:
    assert any(v["result"] == "valid" and v["expect"].get("info", {}).get("cluster_bits")
               == boundary for v in manifest["vectors"])


def test_required_scenarios_exist(manifest: dict[str, Any]) -> None:
    vs = manifest["vectors"]
    valid_reads = [v for v in vs if v["result"] == "valid" and "info" in v["expect"]]
    assert any(v["spec"] == "1" for v in valid_reads), "no v1 legacy read vector"
    assert any("backing-chain" in v["requires"] for v in valid_reads), "no add-cow chain"
    assert any(i["virtual_size"] % i["cluster_size"]
               for i in (v["expect"]["info"] for v in valid_reads)), "no partial last cluster"
    assert any(len(i["image_file"]) > 1023 and i["bitmap_offset"] > 4096
               for i in (v["expect"]["info"] for v in valid_reads)), "no long name"
    assert any(v["expect"]["info"]["header_length"] > 128 for v in valid_reads)
    ops = [v for v in vs if v["kind"] == "op" and "after" in v["expect"]]
    resized = [v for v in ops if any(o["op"] == "resize" for o in v["expect"]["ops"])]
    after_sizes = [(v["expect"]["info"]["virtual_size"], v["expect"]["after"]["info"]
                    ["virtual_size"]) for v in resized]
    assert any(b > a for a, b in after_sizes), "no grow vector"
    assert any(b < a for a, b in after_sizes), "no shrink vector"
    assert any(v["expect"]["info"]["autoclear_features"]
               and not v["expect"]["after"]["info"]["autoclear_features"] for v in ops), (
        "no op vector clearing an unknown autoclear bit")
    straddling = [v for v in ops for o in v["expect"]["ops"] if o["op"] == "write"
                  and _straddles(o, v["expect"]["info"]["cluster_size"])]
    assert straddling, "no write straddling a cluster boundary"


def _straddles(op: dict[str, Any], cluster_size: int) -> bool:
    length = op.get("length", len(op.get("data_hex", "")) // 2)
    return bool(op["offset"] // cluster_size != (op["offset"] + length - 1) // cluster_size)
