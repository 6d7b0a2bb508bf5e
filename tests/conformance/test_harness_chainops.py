"""``apply`` with ``{"op": "commit"}`` and ``{"op": "rebase"}``: the protocol's forms, the
reference adapter's calls, and how the harness gates the vectors that need them.

The images are laid out by the generator's builder (``vectors.builder.AddCow``) and every
expectation is spelled out here from the spec ("Committing and rebasing": the backing file reads
the guest disk after a commit, the names change after a rebase), cluster by cluster, never taken
from the reference's output.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.adapters.reference import REFERENCE_OPERATIONS, ReferenceAdapter
from addcow_conformance.harness.impl import ForkImpl
from addcow_conformance.harness.manifest import load_manifest
from addcow_conformance.harness.runner import Runner, RunOptions
from addcow_conformance.protocol import (
    APPLY_OPERATIONS,
    EXIT_REFUSED,
    EXIT_USAGE,
    FILE_OPERATIONS,
    REQUIREMENTS,
    apply_flag,
)
from addcow_conformance.vectors.builder import AddCow

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"

CS = 512
CLUSTERS = 8
SIZE = CS * CLUSTERS
BITS = {1, 5}
IMAGE = bytes(range(256)) * (SIZE // 256)
BACKING = bytes([0x42]) * SIZE
NEW = bytes([0x37]) * SIZE


def cluster(data: bytes, c: int) -> bytes:
    return data[c * CS:(c + 1) * CS]


def guest(bits: set[int], image: bytes, backing: bytes | None) -> bytes:
    """The guest disk, literally: allocated clusters from the image file, the others from the
    backing file (zeros without one)."""
    return b"".join(cluster(image, c) if c in bits
                    else cluster(backing or bytes(SIZE), c) for c in range(CLUSTERS))


def call(argv: list[str]) -> tuple[int, bytes]:
    out = io.BytesIO()
    return ReferenceAdapter(stdout=out).run(argv), out.getvalue()


def info(path: Path) -> dict[str, Any]:
    status, out = call(["info", str(path)])
    assert status == 0
    record: dict[str, Any] = json.loads(out)
    return record


def read_all(path: Path) -> bytes:
    status, out = call(["read", str(path), "0", str(SIZE)])
    assert status == 0
    return out


def ops(tmp_path: Path, *operations: dict[str, Any]) -> str:
    p = tmp_path / "ops.json"
    p.write_text(json.dumps(list(operations)), "utf-8")
    return str(p)


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    """image.add-cow: 8 clusters of 512 bytes, clusters 1 and 5 allocated, over backing.raw;
    new.raw beside it holds other data."""
    a = AddCow(virtual_size=SIZE, cluster_bits=9, backing_name=b"backing.raw", bits=set(BITS))
    (tmp_path / "image.raw").write_bytes(IMAGE)
    (tmp_path / "backing.raw").write_bytes(BACKING)
    (tmp_path / "new.raw").write_bytes(NEW)
    path = tmp_path / "image.add-cow"
    path.write_bytes(a.build())
    return path


def snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.name != "ops.json"}


def test_commit_and_rebase_are_file_operations_and_requirements() -> None:
    assert {"commit", "rebase"} <= set(APPLY_OPERATIONS)
    assert set(FILE_OPERATIONS) == {"upgrade", "commit", "rebase"}
    assert set(FILE_OPERATIONS) <= set(APPLY_OPERATIONS)
    assert "backing file" in REQUIREMENTS[apply_flag("commit")]
    assert "unsafe" in REQUIREMENTS[apply_flag("rebase")]
    supports = ReferenceAdapter().capabilities()["supports"]
    assert {"apply:commit", "apply:rebase"} <= set(supports)
    assert set(REFERENCE_OPERATIONS) == set(APPLY_OPERATIONS)


def test_commit_writes_the_clusters_into_the_backing_file_and_empties_the_image(
        overlay: Path, tmp_path: Path) -> None:
    before = guest(BITS, IMAGE, BACKING)
    assert call(["apply", str(overlay), ops(tmp_path, {"op": "commit"})]) == (0, b"")
    assert (tmp_path / "backing.raw").read_bytes() == before
    record = info(overlay)
    assert (record["allocated_clusters"], record["compatible_features"]) == (0, 0)
    assert read_all(overlay) == before


def test_commit_keep_leaves_the_image_as_it_was(overlay: Path, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    assert call(["apply", str(overlay), ops(tmp_path, {"op": "commit", "keep": True})])[0] == 0
    after = snapshot(tmp_path)
    assert after["backing.raw"] == guest(BITS, IMAGE, BACKING)
    assert {k: v for k, v in after.items() if k != "backing.raw"} == {
        k: v for k, v in before.items() if k != "backing.raw"}


def test_operations_before_and_after_a_commit_run_on_the_image(overlay: Path,
                                                               tmp_path: Path) -> None:
    """A write, a commit and a write in one apply: the first write is committed, the second
    allocates cluster 3 of the emptied image."""
    first = {"op": "write", "offset": 2 * CS, "length": CS, "pattern": 0xAA}
    second = {"op": "write", "offset": 3 * CS + 10, "length": 4, "pattern": 0xBB}
    assert call(["apply", str(overlay), ops(tmp_path, first, {"op": "commit"}, second)])[0] == 0
    committed = bytearray(guest(BITS, IMAGE, BACKING))
    committed[2 * CS:3 * CS] = b"\xaa" * CS
    assert (tmp_path / "backing.raw").read_bytes() == bytes(committed)
    assert info(overlay)["allocated_clusters"] == 1
    expected = bytearray(committed)
    expected[3 * CS + 10:3 * CS + 14] = b"\xbb" * 4
    assert read_all(overlay) == bytes(expected)


def test_unsafe_rebase_changes_only_the_names(overlay: Path, tmp_path: Path) -> None:
    op = {"op": "rebase", "backing": "new.raw", "backing_format": "raw", "unsafe": True}
    assert call(["apply", str(overlay), ops(tmp_path, op)])[0] == 0
    record = info(overlay)
    assert (record["backing_file"], record["backing_format"]) == ("new.raw", "raw")
    assert record["allocated_clusters"] == len(BITS)
    assert (tmp_path / "image.raw").read_bytes() == IMAGE
    assert read_all(overlay) == guest(BITS, IMAGE, NEW)


def test_safe_rebase_keeps_the_guest_disk(overlay: Path, tmp_path: Path) -> None:
    before = guest(BITS, IMAGE, BACKING)
    op = {"op": "rebase", "backing": "new.raw", "backing_format": "raw"}
    assert call(["apply", str(overlay), ops(tmp_path, op)])[0] == 0
    assert info(overlay)["backing_file"] == "new.raw"
    assert read_all(overlay) == before
    assert (tmp_path / "new.raw").read_bytes() == NEW


@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe"])
def test_rebase_to_no_backing_file(overlay: Path, tmp_path: Path, unsafe: bool) -> None:
    before = guest(BITS, IMAGE, BACKING)
    op = {"op": "rebase", "backing": None, "unsafe": unsafe}
    assert call(["apply", str(overlay), ops(tmp_path, op)])[0] == 0
    record = info(overlay)
    assert (record["backing_file"], record["backing_format"]) == (None, None)
    assert read_all(overlay) == (guest(BITS, IMAGE, None) if unsafe else before)


@pytest.mark.parametrize("op", [
    {"op": "commit", "keep": "yes"},
    {"op": "commit", "force": True},
    {"op": "rebase"},
    {"op": "rebase", "backing": "new.raw"},
    {"op": "rebase", "backing": "", "backing_format": "raw"},
    {"op": "rebase", "backing": None, "backing_format": "raw"},
    {"op": "rebase", "backing": "new.raw", "backing_format": "raw", "unsafe": 1},
    {"op": "rebase", "backing": "new.raw", "backing_format": "raw", "copy": True},
], ids=["keep-not-bool", "commit-extra-key", "rebase-no-backing-key", "rebase-no-format",
        "rebase-empty-name", "rebase-null-with-format", "unsafe-not-bool", "rebase-extra-key"])
def test_a_malformed_file_operation_is_a_usage_error_and_changes_nothing(
        overlay: Path, tmp_path: Path, op: dict[str, Any]) -> None:
    """Checked before any operation of the list runs: the write before it does not happen."""
    before = snapshot(tmp_path)
    write = {"op": "write", "offset": 0, "length": 4, "pattern": 0x11}
    status, out = call(["apply", str(overlay), ops(tmp_path, write, op)])
    assert (status, out) == (EXIT_USAGE, b"")
    assert snapshot(tmp_path) == before


def test_a_commit_without_a_backing_file_is_refused(tmp_path: Path) -> None:
    a = AddCow(virtual_size=SIZE, cluster_bits=9, bits={0})
    (tmp_path / "image.raw").write_bytes(IMAGE)
    path = tmp_path / "image.add-cow"
    path.write_bytes(a.build())
    before = snapshot(tmp_path)
    status, out = call(["apply", str(path), ops(tmp_path, {"op": "commit"})])
    assert status == EXIT_REFUSED
    assert "no backing file" in json.loads(out)["message"]
    assert snapshot(tmp_path) == before


def test_only_the_unsafe_form_renames_to_a_missing_file(overlay: Path, tmp_path: Path) -> None:
    """The safe form reads the new backing file, so a missing one is refused (BACK-EXISTS);
    the unsafe form is for a file that was moved, and only renames."""
    before = snapshot(tmp_path)
    safe = {"op": "rebase", "backing": "moved.raw", "backing_format": "raw"}
    status, out = call(["apply", str(overlay), ops(tmp_path, safe)])
    assert (status, json.loads(out)["rule"]) == (EXIT_REFUSED, "BACK-EXISTS")
    assert snapshot(tmp_path) == before
    assert call(["apply", str(overlay), ops(tmp_path, {**safe, "unsafe": True})])[0] == 0
    assert (tmp_path / "image.raw").read_bytes() == IMAGE
    (tmp_path / "moved.raw").write_bytes(BACKING)  # the file arrives where the name points
    assert info(overlay)["backing_file"] == "moved.raw"
    assert read_all(overlay) == guest(BITS, IMAGE, BACKING)


# -- the harness: vectors that need apply:commit / apply:rebase ---------------------------------


class NoChainOps(ReferenceAdapter):
    """The reference without apply:commit and apply:rebase in its capabilities."""

    def capabilities(self) -> Any:
        caps = super().capabilities()
        caps["supports"] = [s for s in caps["supports"]
                            if s not in ("apply:commit", "apply:rebase")]
        return caps


def fork(adapter: type[ReferenceAdapter]) -> ForkImpl:
    def main(argv: list[str]) -> int:
        return adapter().run(argv)

    return ForkImpl(f"fake:{adapter.__name__}", f"fake:{adapter.__name__}", main, [])


@pytest.mark.skipif(not (VECTORS / "manifest.json").is_file(), reason="vectors not generated")
@pytest.mark.parametrize("adapter", [ReferenceAdapter, NoChainOps], ids=["declared", "undeclared"])
def test_the_commit_and_rebase_vectors_are_gated_by_their_flags(
        tmp_path: Path, adapter: type[ReferenceAdapter]) -> None:
    manifest = load_manifest(VECTORS)
    chosen = [v for v in manifest.vectors
              if {"apply:commit", "apply:rebase"} & set(v.requires)]
    assert {v.id.split("-")[0] for v in chosen} == {"ops/commit", "ops/rebase", "legacy/commit",
                                                    "legacy/rebase"}
    runner = Runner(fork(adapter), manifest, VECTORS,
                    RunOptions(work_dir=tmp_path / "work", check_refusal_reason=True))
    result = runner.run(chosen)
    outcomes = {(r.id, r.capability, r.outcome) for r in result.results}
    if adapter is NoChainOps:
        assert outcomes == {(v.id, "apply", "skip") for v in chosen}
    else:
        assert {o for _, _, o in outcomes} == {"pass"}
        assert {i for i, c, _ in outcomes if c == "apply"} == {v.id for v in chosen}
        assert result.exit_code == 0


def test_every_file_after_a_commit_or_rebase_is_a_file_of_its_vector() -> None:
    """``after.files`` names the backing files a commit writes by path: each must be one of
    the vector's files, or the harness would report a missing file for every implementation."""
    if not (VECTORS / "manifest.json").is_file():
        pytest.skip("vectors not generated")
    doc = json.loads((VECTORS / "manifest.json").read_text("utf-8"))
    seen = 0
    for v in doc["vectors"]:
        if {"apply:commit", "apply:rebase"} & set(v["requires"]):
            seen += 1
            paths = {f["path"] for f in v["files"]}
            assert {f["path"] for f in v["expect"]["after"]["files"]} <= paths, v["id"]
    assert seen
