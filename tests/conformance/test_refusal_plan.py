"""The refusal plan: an image that must be refused is asked ``info``, ``map`` and a ``read`` of a
range whose bits are 0, and every call must refuse it (READ-DUTY).

Before the plan read anything, an implementation that refused in ``info`` passed every invalid
vector however it answered reads; ``unallocated-read-unchecked`` (the 21st mutant) is that
implementation, and it passed the whole committed suite (131 vectors) with the old plan.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.harness.impl import ForkImpl
from addcow_conformance.harness.manifest import load_manifest
from addcow_conformance.harness.refusal_reads import MAX_READ, refusal_reads
from addcow_conformance.harness.runner import Runner, RunOptions, RunResult
from addcow_conformance.mutants import MUTANTS
from addcow_conformance.mutants.unchecked_read import UnallocatedReadUnchecked
from hypothesis import given, settings
from hypothesis import strategies as st

from addcow_ref.format.errors import AddCowError
from addcow_ref.format.forge import forge_v1

from . import harness_suite

INCOMPAT = "features/incompatible-bit-0"


# -- which ranges ------------------------------------------------------------------------------


def _write(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "image.add-cow"
    p.write_bytes(data)
    return p


def test_the_first_cluster_whose_bit_is_0(tmp_path: Path) -> None:
    # Bitmap 0x05: clusters 0 and 2 allocated, so cluster 1 (bytes 512..1023) is the first 0 bit.
    p = _write(tmp_path, harness_suite.addcow_file(incompatible_features=1))
    assert refusal_reads(p) == [{"offset": 512, "length": 512}]


def test_every_bit_1_reads_the_first_and_the_last_byte(tmp_path: Path) -> None:
    p = _write(tmp_path, harness_suite.addcow_file(bytes([0x0F])))
    assert refusal_reads(p) == [{"offset": 0, "length": 1},
                                {"offset": harness_suite.SIZE - 1, "length": 1}]


def test_a_missing_bitmap_counts_as_unallocated(tmp_path: Path) -> None:
    p = _write(tmp_path, harness_suite.addcow_file(b""))  # BMP-LENGTH: the file ends at 4096
    assert refusal_reads(p) == [{"offset": 0, "length": 512}]


def test_no_header_reads_the_first_byte(tmp_path: Path) -> None:
    assert refusal_reads(_write(tmp_path, b"QFI\xfb" + bytes(200))) == [{"offset": 0, "length": 1}]
    assert refusal_reads(_write(tmp_path, b"")) == [{"offset": 0, "length": 1}]
    assert refusal_reads(tmp_path / "missing") == [{"offset": 0, "length": 1}]


def test_an_empty_disk_is_not_read(tmp_path: Path) -> None:
    assert refusal_reads(_write(tmp_path, harness_suite.addcow_file(virtual_size=0))) == []


def test_version_1_takes_the_disk_from_the_image_file(tmp_path: Path) -> None:
    header = forge_v1(image_file=b"v1.raw").build()
    p = _write(tmp_path, header + bytes([0b01]))  # cluster 0 allocated, cluster 1 not
    assert refusal_reads(p) == [{"offset": 0, "length": 1}]  # no image file: no disk size
    (tmp_path / "v1.raw").write_bytes(bytes(65536 + 1000))
    assert refusal_reads(p) == [{"offset": 65536, "length": 512}]


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(9, 20), clusters=st.integers(1, 40), bitmap=st.binary(max_size=6),
       tail=st.integers(0, 511))
def test_ranges_lie_inside_the_disk_on_clusters_whose_bit_is_0(
    tmp_path_factory: Any, bits: int, clusters: int, bitmap: bytes, tail: int
) -> None:
    size = (clusters - 1) * (1 << bits) + 512 + tail
    p = tmp_path_factory.mktemp("r") / "image.add-cow"
    p.write_bytes(harness_suite.addcow_file(bitmap, virtual_size=size, cluster_bits=bits))
    count = -(-size >> bits)
    bit = [i < len(bitmap) * 8 and bool(bitmap[i // 8] >> (i % 8) & 1) for i in range(count)]
    reads = refusal_reads(p)
    assert reads
    for r in reads:
        assert r["offset"] >= 0
        assert 1 <= r["length"] <= MAX_READ
        assert r["offset"] + r["length"] <= size
    if all(bit):
        assert reads == [{"offset": 0, "length": 1}, {"offset": size - 1, "length": 1}][
            : 1 if size == 1 else 2]
    else:
        assert reads[0]["offset"] == bit.index(False) << bits


# -- the plan in the harness -------------------------------------------------------------------


def build_suite(root: Path) -> Path:
    """The tiny suite plus an invalid image a reader can still read around: an unknown
    incompatible bit (FEAT-INCOMPAT-UNKNOWN), names and bitmap intact."""
    harness_suite.build_suite(root)
    manifest = json.loads((root / "manifest.json").read_text("utf-8"))
    manifest["vectors"].append(harness_suite._vector(
        root, INCOMPAT, kind="parse", result="invalid",
        files={"image.add-cow": ("add-cow", harness_suite.addcow_file(incompatible_features=1)),
               "image.raw": ("image", harness_suite.image_bytes()),
               "backing.raw": ("backing", harness_suite.backing_bytes())},
        expect={"refusal": {"rule": "FEAT-INCOMPAT-UNKNOWN"}}, exercises=[],
        violates=["FEAT-INCOMPAT-UNKNOWN"]))
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
    d = root / INCOMPAT
    with (root / "SHA256SUMS").open("a", encoding="ascii") as f:
        for p in sorted(d.iterdir()):
            f.write(f"{harness_suite.sha(p.read_bytes())}  {p.relative_to(root).as_posix()}\n")
    return root


def fork(adapter: type[ReferenceAdapter]) -> ForkImpl:
    def main(argv: list[str]) -> int:
        return adapter().run(argv)

    return ForkImpl(f"fake:{adapter.__name__}", f"fake:{adapter.__name__}", main, [])


def run(tmp_path: Path, adapter: type[ReferenceAdapter], **options: Any) -> RunResult:
    root = build_suite(tmp_path / "suite")
    manifest = load_manifest(root)
    runner = Runner(fork(adapter), manifest, root,
                    RunOptions(work_dir=tmp_path / "work", **options))
    assert runner.check_integrity(manifest.vectors) == []
    return runner.run(manifest.vectors)


def results_of(result: RunResult, vid: str) -> list[Any]:
    return [r for r in result.results if r.id == vid]


def test_reference_refuses_in_every_call(tmp_path: Path) -> None:
    result = run(tmp_path, ReferenceAdapter, check_refusal_reason=True)
    (r,) = results_of(result, INCOMPAT)
    assert (r.capability, r.outcome) == ("info", "pass")
    calls = [c["args"][0] for c in r.context["calls"]]
    assert calls == ["info", "map", "read"]
    assert r.context["calls"][2]["args"][2:] == ["512", "512"]  # cluster 1: bit 0
    assert all(c["status"] == "exit 65" for c in r.context["calls"])
    assert result.exit_code == 0


def test_a_read_answered_without_the_checks_is_caught(tmp_path: Path) -> None:
    assert MUTANTS["unallocated-read-unchecked"] is UnallocatedReadUnchecked
    result = run(tmp_path, UnallocatedReadUnchecked)
    (r,) = results_of(result, INCOMPAT)
    assert (r.capability, r.outcome) == ("read", "fail")
    assert "read [512, +512) succeeded" in r.message
    assert "refused only by info, map" in r.message
    assert r.reproduce is not None
    assert " read " in r.reproduce
    # The valid vectors are the reference's: only the invalid image tells them apart.
    others = [x for x in result.results if x.id != INCOMPAT]
    assert {x.outcome for x in others} == {"pass"}


class RefusesOnlyAtRead(ReferenceAdapter):
    """Accepts ``info`` and ``map`` of an invalid image (printing nothing it could not decode)
    and refuses it only in ``read``, as a lazily checking reader would."""

    def cmd_info(self, path: str) -> int:
        try:
            return super().cmd_info(path)
        except AddCowError:
            self.emit_json({})
            return 0

    def cmd_map(self, path: str) -> int:
        try:
            return super().cmd_map(path)
        except AddCowError:
            self.emit_json([])
            return 0


def test_refusing_only_at_read_is_still_accepting(tmp_path: Path) -> None:
    result = run(tmp_path, RefusesOnlyAtRead)
    for vid, refused_by in ((INCOMPAT, "read [512, +512)"),
                            ("header/magic-last-byte-fe", "read [0, +1)")):
        (r,) = results_of(result, vid)
        assert (r.capability, r.outcome) == ("info", "fail"), (vid, r.message)
        assert "(info, map succeeded" in r.message
        assert f"refused only by {refused_by}" in r.message


class ReadCrashes(ReferenceAdapter):
    """Refuses cleanly in info and map, but its read of a refused image crashes."""

    def cmd_read(self, path: str, offset: int, length: int) -> int:
        try:
            self.open(path).close()
        except AddCowError:
            raise RuntimeError("boom") from None
        return super().cmd_read(path, offset, length)


def test_a_later_call_that_crashes_decides(tmp_path: Path) -> None:
    (r,) = results_of(run(tmp_path, ReadCrashes), INCOMPAT)
    assert (r.capability, r.outcome) == ("read", "refused-unclean")
    (lenient,) = results_of(run(tmp_path / "l", ReadCrashes, lenient_refusal=True), INCOMPAT)
    assert (lenient.capability, lenient.outcome) == ("read", "pass")
