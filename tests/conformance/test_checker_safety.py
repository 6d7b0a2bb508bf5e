"""Hostile headers: huge claimed sizes and offsets cost neither time nor memory, and bitmap scans
stay flat in memory whatever the bitmap's size (issue 4, "Any input is safe")."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest
from addcow_conformance.checker import CheckOptions, Report, check_file

from addcow_ref.format.rules import all_rules

from .images import build_v2, patch_bytes, pristine_v2, set_field, v2_header

MiB = 1 << 20


def checked_with_peak(path: Path, options: CheckOptions | None = None) -> tuple[Report, int]:
    tracemalloc.start()
    try:
        report = check_file(path, options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return report, peak


def assert_sane(report: Report) -> None:
    assert report.error is None
    assert report.internal_errors == []
    assert report.exit_code in (0, 2, 3)
    for f in report.findings:
        assert f.rule in all_rules()


@pytest.mark.parametrize(("name", "value"), [
    ("virtual_size", 1 << 62), ("virtual_size", (1 << 64) - 512), ("bitmap_offset", 1 << 63),
    ("bitmap_offset", (1 << 64) - 4096), ("header_length", (1 << 32) - 1),
    ("image_name_offset", (1 << 32) - 16), ("image_name_length", (1 << 32) - 1),
    ("backing_name_offset", (1 << 32) - 1), ("backing_name_length", (1 << 32) - 1),
    ("cluster_bits", 0), ("cluster_bits", (1 << 32) - 1), ("version", 0)],
    ids=lambda v: str(v))
def test_extreme_field_values_are_cheap(name: str, value: int, tmp_path: Path) -> None:
    s = pristine_v2(tmp_path)
    set_field(s.addcow, name, value)
    report, peak = checked_with_peak(s.addcow)
    assert_sane(report)
    assert report.exit_code == 2
    assert peak < 8 * MiB


def test_names_past_eof_are_reported_not_read(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path)
    set_field(s.addcow, "bitmap_offset", 1 << 40)  # name area and bitmap are not in the file
    set_field(s.addcow, "image_name_offset", 1 << 31)
    report, peak = checked_with_peak(s.addcow)
    assert_sane(report)
    assert "BMP-LENGTH" in report.rule_ids
    assert peak < 8 * MiB


def test_big_bitmap_scan_is_streamed_in_flat_memory(tmp_path: Path) -> None:
    # 32 MiB of bitmap (a 128 GiB disk at 512-byte clusters) in a sparse file; chunks of 1 MiB.
    size = 128 << 30
    s = pristine_v2(tmp_path, virtual_size=size, cluster_bits=9, backing=False, bitmap=b"")
    os.truncate(s.addcow, 4096 + 32 * MiB)
    os.truncate(tmp_path / "image.raw", size)
    report, peak = checked_with_peak(s.addcow)
    assert report.rule_ids == []
    assert report.facts["bitmap_length"] == 32 * MiB
    assert report.facts["allocated_clusters"] == 0
    assert peak < 8 * MiB


def test_all_allocated_finds_a_zero_bit_deep_in_a_big_bitmap(tmp_path: Path) -> None:
    clusters = 8 * 3 * MiB + 5  # three full chunks and a partial byte
    s = pristine_v2(tmp_path, virtual_size=clusters << 9, cluster_bits=9, backing=False,
                    bitmap=b"", compatible_features=1)
    ones = bytearray(b"\xff" * (3 * MiB) + b"\x1f")
    hole = 8 * (2 * MiB + 12345) + 3
    ones[hole // 8] &= ~(1 << (hole % 8)) & 0xFF
    with open(s.addcow, "ab") as f:
        f.write(ones)
    report = check_file(s.addcow)
    assert report.rule_ids == ["FEAT-ALL-ALLOCATED"]
    assert f"the first for cluster {hole}" in report.findings[0].message
    assert report.facts["allocated_clusters"] == clusters - 1


def test_image_named_as_a_fifo_is_not_opened(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path, image_name=b"fifo")
    (tmp_path / "fifo").unlink()
    os.mkfifo(tmp_path / "fifo")
    report = check_file(s.addcow)
    assert report.rule_ids == ["IMG-FILE-TYPE"]
    assert "FIFO" in report.findings[0].message


def test_raw_backing_named_as_a_directory_is_a_file_type_error(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path, backing_name=b"sub")
    (tmp_path / "sub").unlink()
    (tmp_path / "sub").mkdir()
    report = check_file(s.addcow)
    assert report.rule_ids == ["IMG-FILE-TYPE"]


def test_add_cow_backing_named_as_a_directory_is_a_format_error(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path, backing_format="add-cow", backing_name=b"sub")
    (tmp_path / "sub").mkdir()
    report = check_file(s.addcow)
    assert report.rule_ids == ["BACK-FORMAT"]


def test_absolute_names_are_used_as_is(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path / "a", image_name=str(tmp_path / "a" / "abs.raw").encode())
    report = check_file(s.addcow)
    assert report.rule_ids == ["NAME-CONFINED"]  # a warning only: the file is found and used
    assert report.facts["image_file"] == str(tmp_path / "a" / "abs.raw")


def test_holes_of_a_sparse_bitmap_are_skipped_not_read(tmp_path: Path) -> None:
    # A 64 GiB bitmap that really is in the (sparse) file: reading its zeros would take a
    # minute; the scan skips holes and still sees the last byte's padding bits.
    clusters = (1 << 39) - 3
    header = v2_header(virtual_size=clusters << 9, cluster_bits=9, image_name_offset=128,
                       image_name_length=9)
    path = tmp_path / "sparse.add-cow"
    path.write_bytes(build_v2(header, {128: b"image.raw"}, bitmap=b""))
    length = 1 << 36
    os.truncate(path, 4096 + length)
    patch_bytes(path, 4096 + length - 1, b"\xff")
    patch_bytes(path, 4096 + (1 << 20), b"\x01")  # one allocated cluster in the middle
    report, peak = checked_with_peak(path, CheckOptions(follow=False))
    assert report.rule_ids == ["BMP-PADDING"]
    assert report.findings[0].actual == "0xe0"
    assert report.facts["allocated_clusters"] == 1 + 5
    assert peak < 8 * MiB


def test_sparse_and_dense_copies_of_a_bitmap_get_the_same_verdict(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    clusters = 8 * (3 * MiB) - 2
    bitmap = bytearray(rng.randbytes(MiB) + bytes(MiB + 12345) + rng.randbytes(MiB - 12345))
    bitmap[-1] &= 0x3F
    verdicts = []
    for sparse in (True, False):
        d = tmp_path / ("sparse" if sparse else "dense")
        s = pristine_v2(d, virtual_size=clusters << 9, cluster_bits=9, bitmap=b"",
                        compatible_features=1)
        with open(s.addcow, "r+b") as f:
            f.seek(4096)
            if sparse:  # leave the zero run as a hole
                f.write(bitmap[:MiB])
                f.seek(4096 + 2 * MiB + 12345)
                f.write(bitmap[2 * MiB + 12345:])
            else:
                f.write(bitmap)
        report = check_file(s.addcow, CheckOptions(chunk_size=256 << 10))
        verdicts.append((report.rule_ids, [f.message for f in report.findings],
                         report.facts["allocated_clusters"]))
    assert verdicts[0] == verdicts[1]
    assert verdicts[0][0] == ["FEAT-ALL-ALLOCATED"]
    assert verdicts[0][2] == int.from_bytes(bitmap, "little").bit_count()


def test_a_name_longer_than_any_path_is_a_missing_file(tmp_path: Path) -> None:
    long_name = b"n" * 70000
    s = pristine_v2(tmp_path, backing=False, bitmap_offset=20 * 4096)
    patch_bytes(s.addcow, 128, long_name)
    set_field(s.addcow, "image_name_length", len(long_name))
    report = check_file(s.addcow)
    assert report.rule_ids == ["IMG-EXISTS"]
    assert "File name too long" in report.findings[0].message
    assert len(report.findings[0].message) < 500
