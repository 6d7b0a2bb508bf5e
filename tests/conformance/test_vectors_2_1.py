"""Suite 2.1.0: the vectors added for the gaps the mutation run found (issue 16, part 3).

Each bug planted here (by monkeypatching the reference, which the forked ``python:`` adapter
inherits) passes every vector of suite 2.0.0 that is about the same operation and fails a vector
added in 2.1.0: the 2.0.0 suite was blind to it, the new one is not. The oracle's run-by-run
``guest``/``extents`` (needed to generate the 256 MiB vectors in seconds) is held to the literal
cluster-by-cluster definition, and the long-bitmap vectors to the boundaries they exist for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from addcow_conformance.harness.manifest import Vector, load_manifest
from addcow_conformance.records import Extent
from addcow_conformance.vectors.model import Disk, extents
from hypothesis import given, settings
from hypothesis import strategies as st

from addcow_ref.engine import extents as extents_module
from addcow_ref.engine.addcowbacking import AddCowBacking
from addcow_ref.engine.bitmapcache import DEFAULT_CHUNK_SIZE
from addcow_ref.engine.extents import MAP_WINDOW_CLUSTERS, W
from addcow_ref.engine.hydrate import HydrateMixin
from addcow_ref.engine.image import AddCowImage
from addcow_ref.ops import mapping as mapping_module

from .vectors_support import failing_vectors, suite_ids

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"

pytestmark = pytest.mark.skipif(
    not (VECTORS / "manifest.json").is_file(), reason="vectors/manifest.json not generated yet"
)


def _blind_then_seen(tmp_path: Path, old: list[str], new: list[str]) -> None:
    old_ids = suite_ids("2.0.0")
    assert all(i in old_ids for i in old)
    assert not any(i in old_ids for i in new)
    assert failing_vectors(tmp_path, old) == set()
    assert failing_vectors(tmp_path, new) == set(new)


def test_hydrate_that_leaves_stale_bytes(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Hydration that does not zero the clusters without backing data (past the backing
    file's end, or with no backing file) over an image file holding stale bytes."""
    monkeypatch.setattr(HydrateMixin, "_zero_image", lambda self, start, length: None)
    _blind_then_seen(tmp_path, ["ops/hydrate", "ops/hydrate-image-file-longer"],
                     ["ops/hydrate-no-backing-stale-image",
                      "ops/hydrate-backing-ends-mid-cluster"])


def test_one_byte_reads_of_an_add_cow_backing(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An add-cow backing file that answers reads of 1 byte with zeros."""
    original = AddCowBacking.read

    def read(self: AddCowBacking, offset: int, length: int) -> bytes:
        return bytes(length) if length == 1 else original(self, offset, length)

    monkeypatch.setattr(AddCowBacking, "read", read)
    _blind_then_seen(tmp_path, ["chains/add-cow-backing-2-levels",
                                "chains/add-cow-backing-shorter", "chains/mixed-cluster-sizes"],
                     ["chains/one-byte-reads-through-add-cow-backing"])


def test_write_zeroes_that_skips_whole_clusters(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """write-zeroes that handles the partial head and tail but not the clusters in between."""
    monkeypatch.setattr(AddCowImage, "_zero_clusters", lambda self, first, count, punch: None)
    _blind_then_seen(tmp_path, ["ops/write-zeroes-allocates"],
                     ["ops/write-zeroes-whole-clusters", "ops/write-zeroes-to-end-of-disk"])


def test_long_bitmap_vector_crosses_the_reference_piece_boundaries() -> None:
    """big/bitmap-over-cache-chunk is only worth its size if its bitmap is longer than one
    bitmap-cache chunk and its disk longer than one map window, with runs across both."""
    v = next(v for v in load_manifest(VECTORS).vectors if v.id == "big/bitmap-over-cache-chunk")
    info = v.expect["info"]
    assert -(-info["cluster_count"] // 8) > DEFAULT_CHUNK_SIZE
    assert info["cluster_count"] > MAP_WINDOW_CLUSTERS
    edge = MAP_WINDOW_CLUSTERS * info["cluster_size"]
    assert any(e["allocated"] and e["start"] < edge < e["start"] + e["length"]
               for e in v.expect["extents"])
    assert any(f.get("synth") == "zeros" and f["size"] == info["virtual_size"]
               for f in v.raw["files"])


def test_upgrade_vectors_pin_only_what_the_spec_pins() -> None:
    """The new version 2 file's layout (header_length, bitmap_offset, name placement) is the
    writer's: it is neither hashed nor stated in after.info."""
    vs = [v for v in load_manifest(VECTORS).vectors
          if any(op["op"] == "upgrade" for op in v.expect.get("ops", []))
          and "refusal" not in v.expect]
    assert len(vs) >= 3
    for v in vs:
        after = v.expect["after"]
        assert "add-cow" not in {f.get("role") for f in after["files"]}, v.id
        assert {"header_length", "bitmap_offset"}.isdisjoint(after["info"]), v.id
        assert after["info"]["version"] == 2, v.id
        assert after["info"]["cluster_bits"] == 16, v.id
        assert after["guest_sha256"], v.id
        assert after["extents"], v.id


def _literal_guest(d: Disk) -> bytes:
    out = bytearray()
    for i in range(d.cluster_count):
        s, e = i * d.cluster_size, min((i + 1) * d.cluster_size, d.virtual_size)
        if i in d.bits:
            chunk = bytes(d.image[s:e])
            out += chunk + bytes(e - s - len(chunk))
        else:
            src = (d.backing or b"")[s:e]
            out += src + bytes(e - s - len(src))
    return bytes(out)


def _literal_extents(bits: set[int], vs: int, cs: int) -> list[Extent]:
    out: list[Extent] = []
    for pos in range(0, vs, cs):
        allocated, end = pos // cs in bits, min(pos + cs, vs)
        if out and out[-1]["allocated"] == allocated:
            out[-1]["length"] += end - pos
        else:
            out.append({"start": pos, "length": end - pos, "allocated": allocated})
    return out


@settings(max_examples=300, deadline=None)
@given(cb=st.sampled_from([9, 10, 12]), sectors=st.integers(0, 80), data=st.data())
def test_oracle_runs_match_the_cluster_by_cluster_definition(cb: int, sectors: int,
                                                             data: st.DataObject) -> None:
    vs = sectors * 512
    cs = 1 << cb
    count = -(-vs // cs)
    bits = data.draw(st.sets(st.integers(0, count + 2)))
    image = data.draw(st.binary(max_size=vs + 700))
    backing = data.draw(st.none() | st.binary(max_size=vs + 700))
    d = Disk(vs, cb, bytearray(image), bits, backing)
    assert d.guest() == _literal_guest(d)
    assert extents(bits, vs, cs) == _literal_extents(bits, vs, cs)


# -- vectors added to 2.1.0 after the review of the mutation run's survivors -----------------


def _vector(vid: str) -> Vector:
    return next(v for v in load_manifest(VECTORS).vectors if v.id == vid)


def _merge_without_length(windows: Iterable[W]) -> Iterator[W]:
    """``merge_windows`` with a bug: a run continued from the previous window is moved back to
    that run's start, but its length is not extended by the previous run's."""
    pending: W | None = None
    for w in windows:
        if not len(w[0]):
            continue
        if pending is not None:
            if all(bool(c[-1] == d[0]) for c, d in zip(pending[2:], w[2:], strict=True)):
                w[0][0] = pending[0][-1]
                pending = type(pending)(*(c[:-1] for c in pending))
            if len(pending[0]):
                yield pending
        pending = w
    if pending is not None:
        yield pending


def test_map_that_loses_a_run_joined_across_windows(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A map whose join of a run across two map windows loses the first window's part: only a
    disk of more than one window (2^19 clusters) shows it, and none in suite 2.0.0 has one."""
    monkeypatch.setattr(extents_module, "merge_windows", _merge_without_length)
    monkeypatch.setattr(mapping_module, "merge_windows", _merge_without_length)
    _blind_then_seen(tmp_path, ["bitmap/all-zeros", "bitmap/all-ones"],
                     ["big/map-one-run-across-map-window"])


def test_one_run_vector_crosses_the_map_window() -> None:
    v = _vector("big/map-one-run-across-map-window")
    info = v.expect["info"]
    assert info["cluster_count"] > MAP_WINDOW_CLUSTERS
    assert v.expect["extents"] == [{"start": 0, "length": info["virtual_size"],
                                    "allocated": False}]


@pytest.mark.parametrize("vid", ["ops/write-then-grow-2-clusters",
                                 "ops/write-then-grow-17-clusters"])
def test_write_then_grow_vectors_grow_over_a_written_bitmap(vid: str) -> None:
    """The write comes first in the same apply, the old last cluster is partial and
    unallocated, and the backing file has bytes past the old end that must not show."""
    v = _vector(vid)
    info = v.expect["info"]
    cs, old = info["cluster_size"], info["virtual_size"]
    ops = v.expect["ops"]
    assert [op["op"] for op in ops] == ["write", "resize"]
    assert old % cs
    assert ops[1]["size"] > old
    last = old // cs
    assert not any(e["allocated"] and e["start"] <= last * cs < e["start"] + e["length"]
                   for e in _extents_before(v))
    backing = next(f for f in v.files if f.role == "backing")
    assert backing.size >= ops[1]["size"]
    after = v.expect["after"]
    assert after["extents"][-1]["start"] + after["extents"][-1]["length"] == ops[1]["size"]
    assert all(e["allocated"] for e in after["extents"]
               if e["start"] + e["length"] > last * cs)


def _extents_before(v: Vector) -> list[Extent]:
    """The map before the operations, from the vector's own add-cow file."""
    info = v.expect["info"]
    raw = (v.directory / v.entry).read_bytes()
    bitmap = raw[info["bitmap_offset"]:info["bitmap_offset"] + -(-info["cluster_count"] // 8)]
    bits = {i for i in range(info["cluster_count"]) if bitmap[i // 8] >> (i % 8) & 1}
    return extents(bits, info["virtual_size"], info["cluster_size"])


def test_upgrade_of_a_file_neither_v1_nor_v2_cites_the_header_rule() -> None:
    for vid, rule in (("header/upgrade-bad-magic-refused", "HDR-MAGIC"),
                      ("header/upgrade-version-7-refused", "HDR-VERSION")):
        v = _vector(vid)
        assert v.expect["ops"] == [{"op": "upgrade"}]
        assert v.expect["refusal"] == {"rule": rule}
        assert v.result == "invalid"
