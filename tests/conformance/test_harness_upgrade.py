"""``apply`` with ``{"op": "upgrade"}``: the harness and the reference adapter upgrade a version 1
image to version 2 in place (spec/legacy.rst, "Upgrading to version 2").

The v1 image is forged here (``addcow_ref.format.forge``) and every expectation is derived from
the spec's geometry (64 KiB clusters, the disk is the image file rounded down to 512, bit ``i``
of the bitmap at byte 2560 says where cluster ``i`` lives), never from the reference's output.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.harness.impl import ForkImpl
from addcow_conformance.harness.manifest import load_manifest
from addcow_conformance.harness.runner import Runner, RunOptions, RunResult
from addcow_conformance.protocol import APPLY_OPERATIONS, REQUIREMENTS, apply_flag

from addcow_ref.format.forge import forge_v1

CLUSTER = 1 << 16
IMAGE = bytes([0xA5]) * (3 * CLUSTER)
BACKING = bytes([0x42]) * 100_000  # ends inside cluster 1
BITMAP = 0b010  # cluster 1 allocated
UPGRADE = "ops/upgrade-v1"
REFUSED = "ops/upgrade-v1-reserved-nonzero"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def v1_file(reserved: bytes = b"") -> bytes:
    header = bytearray(forge_v1(backing_file=b"backing.raw", image_file=b"image.raw").build())
    header[2060:2060 + len(reserved)] = reserved  # the v1 reserved field (V1-RESERVED)
    return bytes(header) + bytes([BITMAP])


def guest() -> bytes:
    out = bytearray()
    for c in range(3):
        lo, hi = c * CLUSTER, (c + 1) * CLUSTER
        out += IMAGE[lo:hi] if BITMAP >> c & 1 else BACKING[lo:hi].ljust(CLUSTER, b"\0")
    return bytes(out)


def extents() -> list[dict[str, Any]]:
    return [{"start": c * CLUSTER, "length": CLUSTER, "allocated": bool(BITMAP >> c & 1)}
            for c in range(3)]


def _entry(role: str, path: str, data: bytes) -> dict[str, Any]:
    return {"role": role, "path": path, "size": len(data), "sha256": sha(data)}


def _vector(root: Path, vid: str, cow: bytes, **fields: Any) -> dict[str, Any]:
    d = root / vid
    d.mkdir(parents=True)
    files = {"image.add-cow": ("add-cow", cow), "image.raw": ("image", IMAGE),
             "backing.raw": ("backing", BACKING)}
    for name, (_, data) in files.items():
        (d / name).write_bytes(data)
    return {"id": vid, "description": f"harness test vector {vid}", "spec": "1", "kind": "op",
            "exercises": [], "violates": [], "flags": [], "entry": "image.add-cow",
            "files": [_entry(role, name, data) for name, (role, data) in files.items()],
            "since": "1.0.0", "generator": "tests.conformance.test_harness_upgrade", **fields}


def build_suite(root: Path) -> Path:
    ops = [{"op": "upgrade"}]
    after = {
        # Upgrading never touches the raw files (spec/legacy.rst); the add-cow file's bytes are
        # the writer's layout, so the check is what a reader sees in it.
        "files": [_entry("image", "image.raw", IMAGE), _entry("backing", "backing.raw", BACKING)],
        "info": {"version": 2, "header_length": 128, "virtual_size": len(IMAGE),
                 "cluster_bits": 16, "image_file": "image.raw", "backing_file": "backing.raw",
                 "image_format": "raw", "backing_format": "raw", "incompatible_features": 0,
                 "compatible_features": 0, "autoclear_features": 0, "allocated_clusters": 1},
        "extents": extents(),
        "guest_sha256": sha(guest()),
    }
    vectors = [
        _vector(root, UPGRADE, v1_file(), result="valid",
                requires=["v1", "apply:upgrade", "info", "map", "read"],
                expect={"ops": ops, "after": after}),
        _vector(root, REFUSED, v1_file(reserved=b"\x01"), result="invalid",
                violates=["V1-RESERVED"], requires=["v1", "apply:upgrade"],
                expect={"ops": ops, "refusal": {"rule": "V1-RESERVED"}}),
    ]
    manifest = {"schema": "manifest.schema.json", "manifest_version": "1.0.0",
                "suite_version": "1.0.0", "spec_versions": ["1", "2.0"],
                "generator": {"name": "tests", "version": "0"}, "rules": {}, "flags": {},
                "features": {}, "retired": [], "counts": {}, "vectors": vectors}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
    lines = sorted(f"{sha(p.read_bytes())}  {p.relative_to(root).as_posix()}"
                   for p in root.rglob("*") if p.is_file() and p.name != "manifest.json")
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n", "ascii")
    return root


def fork(adapter: type[ReferenceAdapter]) -> ForkImpl:
    def main(argv: list[str]) -> int:
        return adapter().run(argv)

    return ForkImpl(f"fake:{adapter.__name__}", f"fake:{adapter.__name__}", main, [])


def run(tmp_path: Path, adapter: type[ReferenceAdapter]) -> RunResult:
    root = build_suite(tmp_path / "suite")
    manifest = load_manifest(root)
    runner = Runner(fork(adapter), manifest, root,
                    RunOptions(work_dir=tmp_path / "work", check_refusal_reason=True))
    assert runner.check_integrity(manifest.vectors) == []
    return runner.run(manifest.vectors)


def outcomes(result: RunResult, vid: str) -> list[tuple[str, str]]:
    return [(r.capability, r.outcome) for r in result.results if r.id == vid]


def test_upgrade_is_an_apply_operation_and_a_requirement() -> None:
    assert "upgrade" in APPLY_OPERATIONS
    assert apply_flag("upgrade") == "apply:upgrade"
    assert "version 1" in REQUIREMENTS["apply:upgrade"]


def test_reference_upgrades_through_the_harness(tmp_path: Path) -> None:
    result = run(tmp_path, ReferenceAdapter)
    got = outcomes(result, UPGRADE)
    # apply (files), then info (version 2), map and the whole guest read after it.
    assert got == [("apply", "pass"), ("info", "pass"), ("map", "pass"), ("read", "pass")], got
    refused = [r for r in result.results if r.id == REFUSED]
    assert [(r.capability, r.outcome) for r in refused] == [("apply", "pass")]
    assert "V1-RESERVED" in refused[0].message
    assert result.exit_code == 0


class NoUpgrade(ReferenceAdapter):
    """Upgrades like the reference but does not say so: its vectors are skipped."""

    def capabilities(self) -> Any:
        caps = super().capabilities()
        caps["supports"] = [s for s in caps["supports"] if s != "apply:upgrade"]
        return caps


def test_an_adapter_without_apply_upgrade_skips_the_upgrade_vectors(tmp_path: Path) -> None:
    result = run(tmp_path, NoUpgrade)
    assert outcomes(result, UPGRADE) == [("apply", "skip")]
    assert outcomes(result, REFUSED) == [("apply", "skip")]


class UpgradeInPlace(ReferenceAdapter):
    """The mistake an upgrade may make: rewrite the v1 file as v2 but leave the bitmap behind,
    so every cluster reads from the backing file."""

    def upgrade(self, path: str) -> None:
        super().upgrade(path)
        data = bytearray(Path(path).read_bytes())
        data[-1] = 0
        Path(path).write_bytes(bytes(data))


def test_a_wrong_upgrade_fails_the_checks_after_it(tmp_path: Path) -> None:
    got = dict(outcomes(run(tmp_path, UpgradeInPlace), UPGRADE))
    assert got["info"] == "fail"  # allocated_clusters 0, not 1
    assert got["read"] == "fail"  # cluster 1 reads the backing file's bytes


# -- the reference adapter's apply of upgrade, call by call -----------------------------------


def call(argv: list[str]) -> tuple[int, bytes]:
    out = io.BytesIO()
    return ReferenceAdapter(stdout=out).run(argv), out.getvalue()


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    (tmp_path / "image.raw").write_bytes(IMAGE)
    (tmp_path / "backing.raw").write_bytes(BACKING)
    path = tmp_path / "image.add-cow"
    path.write_bytes(v1_file())
    return path


def ops(tmp_path: Path, *operations: dict[str, Any]) -> str:
    p = tmp_path / "ops.json"
    p.write_text(json.dumps(list(operations)), "utf-8")
    return str(p)


def test_upgrade_then_write_in_one_apply(v1: Path, tmp_path: Path) -> None:
    write = {"op": "write", "offset": 0, "length": 4, "pattern": 0x11}
    assert call(["apply", str(v1), ops(tmp_path, {"op": "upgrade"}, write)]) == (0, b"")
    status, out = call(["info", str(v1)])
    assert (status, json.loads(out)["version"], json.loads(out)["allocated_clusters"]) == (0, 2, 2)
    status, out = call(["read", str(v1), "0", str(len(IMAGE))])
    assert (status, out) == (0, b"\x11" * 4 + guest()[4:])


def test_write_before_the_upgrade_is_refused_and_changes_nothing(v1: Path, tmp_path: Path) -> None:
    before = v1.read_bytes()
    write = {"op": "write", "offset": 0, "length": 4, "pattern": 0x11}
    status, out = call(["apply", str(v1), ops(tmp_path, write, {"op": "upgrade"})])
    assert (status, json.loads(out)["rule"]) == (65, "V1-NO-WRITE-OPEN")
    assert v1.read_bytes() == before


def test_upgrade_of_a_version_2_image_changes_nothing(v1: Path, tmp_path: Path) -> None:
    assert call(["apply", str(v1), ops(tmp_path, {"op": "upgrade"})])[0] == 0
    upgraded = v1.read_bytes()
    assert call(["apply", str(v1), ops(tmp_path, {"op": "upgrade"})]) == (0, b"")
    assert v1.read_bytes() == upgraded


def test_upgrade_of_an_invalid_version_2_image_is_refused(v1: Path, tmp_path: Path) -> None:
    assert call(["apply", str(v1), ops(tmp_path, {"op": "upgrade"})])[0] == 0
    data = bytearray(v1.read_bytes())
    data[112] = 1  # reserved2 (HDR-RESERVED2)
    v1.write_bytes(bytes(data))
    status, out = call(["apply", str(v1), ops(tmp_path, {"op": "upgrade"})])
    assert status == 65
    assert json.loads(out)["rule"].startswith("HDR-")
    assert v1.read_bytes() == bytes(data)


def test_upgrade_takes_no_arguments(v1: Path, tmp_path: Path) -> None:
    before = v1.read_bytes()
    status, _ = call(["apply", str(v1), ops(tmp_path, {"op": "upgrade", "backing_format": "raw"})])
    assert status == 64
    assert v1.read_bytes() == before


def test_upgrade_of_a_missing_file_is_refused(tmp_path: Path) -> None:
    status, out = call(["apply", str(tmp_path / "nothing.add-cow"),
                        ops(tmp_path, {"op": "upgrade"})])
    assert status == 65
    assert "nothing.add-cow" in json.loads(out)["message"]
