"""The cached benchmark images: valid add-cow files with the promised bitmaps, qcow2 overlays
QEMU accepts, sparse files past the file system's size limit, and cache reuse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from addcow_conformance.checker.cli import main as check_main

from addcow_ref import open_image
from addcow_ref.format.bitmap import count_ones
from addcow_ref.format.header import parse_header
from addcow_ref.ops.info import image_info
from bench import images


def _bitmap(img: Path) -> bytes:
    h = parse_header(img.read_bytes()[:128])
    return img.read_bytes()[h.bitmap_offset:h.bitmap_offset + h.bitmap_length]


def test_random_image_is_conforming_and_about_half_full(tmp_path: Path) -> None:
    img = images.addcow_image(tmp_path, 8 << 30, fill="random")  # 131072 clusters
    assert check_main(["-q", str(img)]) == 0
    bits = _bitmap(img)
    assert len(bits) == (8 << 30) >> 16 >> 3
    assert 0.45 < count_ones(bits) / (len(bits) * 8) < 0.55
    with open_image(img) as im:
        assert im.virtual_size == 8 << 30
        assert image_info(im).backing_file == "base.raw"


def test_runs_image_has_one_extent_per_4096_clusters(tmp_path: Path) -> None:
    img = images.addcow_image(tmp_path, 1 << 30, fill="runs")
    with open_image(img) as im:
        extents = im.map()
    assert len(extents) == 4
    assert [e.allocated for e in extents] == [True, False, True, False]
    assert {e.length for e in extents} == {256 << 20}


def test_padding_bits_stay_zero_for_a_partial_last_byte(tmp_path: Path) -> None:
    img = images.addcow_image(tmp_path, 3 << 16, fill="ones", backing=False)  # 3 clusters
    assert _bitmap(img) == bytes([0b111])
    assert check_main(["-q", str(img)]) == 0


def test_data_images_hold_real_blocks(tmp_path: Path) -> None:
    img = images.addcow_image(tmp_path, 2 << 20, fill="ones", data=True)
    raw = img.parent / "img.raw"
    assert os.stat(raw).st_blocks * 512 >= 2 << 20
    assert raw.read_bytes() != (img.parent / "base.raw").read_bytes()


def test_cache_reuses_finished_builds_and_redoes_broken_ones(tmp_path: Path) -> None:
    calls: list[Path] = []

    def build(d: Path) -> None:
        calls.append(d)
        (d / "x").write_text("1")

    d = images.cached(tmp_path, "k", build)
    assert images.cached(tmp_path, "k", build) == d
    assert len(calls) == 1
    (d / ".done").unlink()  # as if the build had died half way
    images.cached(tmp_path, "k", build)
    assert len(calls) == 2


def test_sparse_file_past_the_fs_limit_lands_on_tmpfs(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm here")
    big = Path("/dev/shm") / f"addcow-bench-test-{os.getpid()}"
    monkeypatch.setattr(images, "BIG_SPARSE_DIR", big)
    try:
        p = images.sparse_file(tmp_path / "huge.raw", 64 << 40)
        assert p.stat().st_size == 64 << 40
        assert p.stat().st_blocks == 0
        if p.is_symlink():  # ext4 and friends: the file system could not hold it
            assert Path(os.readlink(p)).is_relative_to(big)
    finally:
        shutil.rmtree(big, ignore_errors=True)


def test_qcow2_overlay_maps_every_cluster_over_a_raw_backing(tmp_path: Path) -> None:
    if shutil.which("qemu-img") is None:
        if os.environ.get("ADDCOW_REQUIRE_TOOLS") == "1":
            pytest.fail("qemu-img is required (ADDCOW_REQUIRE_TOOLS=1)")
        pytest.skip("qemu-img is not installed")
    for data_file in (True, False):
        q = images.qcow2_overlay(tmp_path, 64 << 20, data_file=data_file)
        subprocess.run(["qemu-img", "check", "-q", str(q)], check=True)
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(q)],
                                         check=True, capture_output=True, text=True).stdout)
        assert info["backing-filename"] == "base.raw"
        extents = json.loads(subprocess.run(
            ["qemu-img", "map", "--output=json", str(q)], check=True, capture_output=True,
            text=True).stdout)
        assert all(e["data"] and e["depth"] == 0 for e in extents), extents[:3]
        assert sum(e["length"] for e in extents) == 64 << 20
