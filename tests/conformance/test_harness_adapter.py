"""The reference adapter's side of the interface: exit statuses and what it prints."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.mutants import main as mutant_main

from . import harness_suite

READ = "read/backing-ends-mid-cluster"
MAGIC = "header/magic-last-byte-fe"


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    return harness_suite.build_suite(tmp_path / "suite")


def call(argv: list[str]) -> tuple[int, bytes]:
    out = io.BytesIO()
    status = ReferenceAdapter(stdout=out).run(argv)
    return status, out.getvalue()


def test_info_read_map(suite: Path) -> None:
    image = str(suite / READ / "image.add-cow")
    status, out = call(["info", image])
    assert status == 0
    info = json.loads(out)
    assert {k: info[k] for k in harness_suite.info(0x05)} == harness_suite.info(0x05)
    status, out = call(["read", image, "990", "40"])
    g = harness_suite.guest(0x05, harness_suite.image_bytes(), harness_suite.backing_bytes())
    assert (status, out) == (0, g[990:1030])
    status, out = call(["map", image])
    assert (status, json.loads(out)) == (0, harness_suite.extents(0x05))


def test_refusal_is_65_with_the_rule(suite: Path) -> None:
    status, out = call(["info", str(suite / MAGIC / "image.add-cow")])
    assert status == 65
    refusal = json.loads(out)
    assert (refusal["refused"], refusal["rule"]) == (True, "HDR-MAGIC")


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        ([], 64),
        (["info"], 64),
        (["read", "IMG", "x", "1"], 64),
        (["read", "IMG", "0", "4096"], 65),  # past the end: refused (READ-RANGE), not clipped
        (["convert", "IMG"], 69),
    ],
    ids=["nothing", "no-image", "bad-offset", "past-end", "unknown-command"],
)
def test_usage_and_unsupported(suite: Path, argv: list[str], status: int) -> None:
    image = str(suite / READ / "image.add-cow")
    assert call([image if a == "IMG" else a for a in argv])[0] == status


def test_apply_unknown_operation_is_unsupported_and_malformed_is_usage(
    suite: Path, tmp_path: Path
) -> None:
    image = str(suite / READ / "image.add-cow")
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps([{"op": "snapshot", "name": "s1"}]))
    assert call(["apply", image, str(ops)])[0] == 69
    ops.write_text(json.dumps([{"op": "write", "offset": 0}]))
    assert call(["apply", image, str(ops)])[0] == 64
    ops.write_text("{}")
    assert call(["apply", image, str(ops)])[0] == 64


def test_mutant_entry_point_needs_a_known_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert mutant_main(["no-such-mutant", "capabilities"]) == 64
    assert "bit-order-reversed" in capsys.readouterr().err
