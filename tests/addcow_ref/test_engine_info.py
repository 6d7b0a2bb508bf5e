"""The typed info record (``addcow_ref.ops.info``): its fields, built from v1 and v2 images
through the one descriptor, and its JSON and human renderings (what ``addcow info`` prints)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.cli.humanize import format_size
from addcow_ref.format.constants import DEFAULT_BITMAP_OFFSET, AutoclearFeature, CompatibleFeature
from addcow_ref.format.header import parse_header
from addcow_ref.ops.info import (
    INFO_FIELDS,
    ImageInfo,
    feature_names,
    image_info,
    info_json,
    render_info,
    render_info_json,
)

from .helpers import make_image, make_v1

CB = 12
SIZE = 10 << CB


def test_fields_in_order() -> None:
    assert INFO_FIELDS == (
        "filename", "version", "virtual_size", "cluster_bits", "cluster_size", "bitmap_offset",
        "bitmap_length", "header_length", "image_file", "image_path", "backing_file",
        "backing_path", "image_format", "backing_format", "incompatible_features",
        "compatible_features", "autoclear_features", "all_allocated", "allocated_clusters",
        "cluster_count", "readonly")
    assert tuple(f.name for f in dataclasses.fields(ImageInfo)) == INFO_FIELDS


def test_field_list_loads_without_the_engine() -> None:
    """The vectors generator imports the field list and must not load the implementation."""
    code = ("import sys, addcow_ref.ops.info as m; assert m.INFO_FIELDS; "
            "print(sorted(n for n in sys.modules if n.startswith('addcow_ref.engine')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "[]"


def test_v2_overlay_record_and_renderings(tmp_path: Path) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=b"\x11" * 20000)
    with addcow_ref.open_image(path, "r+") as img:
        img.write(5000, b"x" * 9000)  # clusters 1, 2, 3
        info = image_info(img)
    assert info == ImageInfo(
        filename=str(path), version=2, virtual_size=SIZE, cluster_bits=CB, cluster_size=4096,
        bitmap_offset=DEFAULT_BITMAP_OFFSET, bitmap_length=2, header_length=128,
        image_file="disk.raw",
        image_path=str(tmp_path / "disk.raw"), backing_file="disk-base.raw",
        backing_path=str(tmp_path / "disk-base.raw"), image_format="raw",
        backing_format="raw", incompatible_features=0, compatible_features=0,
        autoclear_features=0, all_allocated=False, allocated_clusters=3, cluster_count=10,
        readonly=False)
    # JSON: qemu-img's keys, the add-cow record under format-specific, indented by four.
    text = render_info_json(info)
    doc = json.loads(text)
    assert list(doc) == ["filename", "format", "virtual-size", "actual-size", "cluster-size",
                         "format-specific", "backing-filename", "full-backing-filename",
                         "backing-filename-format"]
    assert doc["format-specific"] == {"type": "add-cow", "data": {
        k: v for k, v in dataclasses.asdict(info).items() if k != "filename"}}
    assert list(doc["format-specific"]["data"]) == list(INFO_FIELDS[1:])
    assert (doc["virtual-size"], doc["cluster-size"]) == (SIZE, 4096)
    assert doc["backing-filename"] == "disk-base.raw"
    assert doc["full-backing-filename"] == str(tmp_path / "disk-base.raw")
    assert doc["backing-filename-format"] == "raw"
    usage = sum(os.stat(p).st_blocks * 512 for p in (path, tmp_path / "disk.raw"))
    assert doc["actual-size"] == usage > 0
    assert text == json.dumps(info_json(info), indent=4)
    assert text.startswith('{\n    "filename": ' + json.dumps(str(path)) + ',\n'
                           '    "format": "add-cow",\n    "virtual-size": 40960,\n')
    assert render_info(info, size_text=format_size) == "\n".join([
        f"image: {path}",
        "file format: add-cow",
        "version: 2",
        "virtual size: 40 KiB (40960 bytes)",
        "cluster_size: 4096 (cluster_bits 12)",
        "allocated clusters: 3 of 10 (30.0%)",
        "image file: disk.raw (raw)",
        "backing file: disk-base.raw",
        "backing file format: raw",
        "header length: 128",
        "bitmap offset: 4096 (0x1000)",
        "incompatible features: none",
        "compatible features: none",
        "autoclear features: none",
    ])


def test_hydrated_record(tmp_path: Path) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=b"\x11" * 20000)
    with addcow_ref.open_image(path, "r+") as img:
        img.hydrate()
        info = image_info(img)
    assert (info.all_allocated, info.allocated_clusters, info.compatible_features) == (
        True, 10, int(CompatibleFeature.ALL_ALLOCATED))
    assert "compatible features: all_allocated" in render_info(info, size_text=str)


def test_v1_record(tmp_path: Path) -> None:
    path = make_v1(tmp_path, image=bytes(256 * 1024), bitmap=b"\x05",
                   backing=b"\x77" * (256 * 1024))
    with addcow_ref.open_image(path) as img:
        info = image_info(img)
    assert (info.version, info.readonly, info.header_length, info.bitmap_offset) == (
        1, True, 2560, 2560)
    assert (info.image_format, info.backing_file, info.backing_format) == (
        "raw", "old-base.raw", "raw")
    assert (info.incompatible_features, info.compatible_features,
            info.autoclear_features) == (0, 0, 0)
    assert (info.allocated_clusters, info.cluster_count, info.cluster_bits) == (2, 4, 16)
    text = render_info(info, size_text=format_size)
    assert text.endswith("header length: 2560\nbitmap offset: 2560 (0xa00)")  # no feature words


def test_v1_without_backing(tmp_path: Path) -> None:
    path = make_v1(tmp_path, image=bytes(64 * 1024))
    with addcow_ref.open_image(path) as img:
        info = image_info(img)
    assert (info.backing_file, info.backing_path, info.backing_format) == (None, None, None)
    assert "backing file: none" in render_info(info, size_text=format_size)


def test_unknown_feature_bits_are_named_by_number(tmp_path: Path) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB)
    data = bytearray(path.read_bytes())
    header = parse_header(bytes(data[:128]))
    data[:128] = header.replace(autoclear_features=(1 << 5) | (1 << 40),
                                compatible_features=1 | (1 << 9)).build()
    path.write_bytes(bytes(data))
    with addcow_ref.open_image(path) as img:
        info = image_info(img)
    text = render_info(info, size_text=format_size)
    assert "compatible features: all_allocated, bit 9" in text
    assert "autoclear features: bit 5, bit 40" in text


@pytest.mark.parametrize(("word", "names"), [(0, []), (1, ["all_allocated"]),
                                              (1 << 63, ["bit 63"])])
def test_feature_names(word: int, names: list[str]) -> None:
    assert feature_names(word, CompatibleFeature) == names
    assert feature_names(word, AutoclearFeature) == [f"bit {b}" for b in range(64)
                                                     if word >> b & 1]
