"""AddCowImage: opening (typed errors with rule IDs), status queries, features, create."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.format.constants import DEFAULT_BITMAP_OFFSET, CompatibleFeature
from addcow_ref.format.errors import (
    FormatError,
    ImageFileError,
    ReadOnlyError,
    TruncatedError,
    UnsupportedFeatureError,
)
from addcow_ref.format.header import parse_header
from addcow_ref.ops.info import image_info

from .helpers import check_valid, make_image

CB = 12
SIZE = 8 << CB


def patch_header(path: Path, **fields: int) -> None:
    data = bytearray(path.read_bytes())
    header = parse_header(bytes(data[:128])).replace(**fields)
    data[:128] = header.build()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("mutate", "cls", "rule"), [
    (lambda d: d.__setitem__(slice(0, 8), b"QFI\xfb\0\0\0\0"), FormatError, "HDR-MAGIC"),
    (lambda d: d.__delitem__(slice(100, None)), TruncatedError, "HDR-COMPLETE"),
    (lambda d: d.__delitem__(slice(4096, None)), TruncatedError, "BMP-LENGTH"),
    (lambda d: d.__setitem__(slice(8, 12), b"\0\0\0\x03"), UnsupportedFeatureError,
     "HDR-VERSION"),
    (lambda d: d.__setitem__(23, 1), UnsupportedFeatureError, "FEAT-INCOMPAT-UNKNOWN"),
    (lambda d: d.__setitem__(59, 30), FormatError, "HDR-CLUSTER-BITS"),
    (lambda d: d.__setitem__(200, 1), FormatError, "NAME-AREA-ZERO"),
])
def test_open_refuses_broken_images_with_typed_errors(tmp_path: Path, mutate: object,
                                                      cls: type, rule: str) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB)
    data = bytearray(path.read_bytes())
    mutate(data)  # type: ignore[operator]
    path.write_bytes(bytes(data))
    with pytest.raises(cls) as info:
        addcow_ref.open_image(path)
    assert info.value.rule_id == rule
    assert info.value.file == str(path)


def test_image_file_rules(tmp_path: Path) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB)
    raw = tmp_path / "disk.raw"
    raw.write_bytes(bytes(SIZE - 512))
    with pytest.raises(ImageFileError) as info:
        addcow_ref.open_image(path)
    assert info.value.rule_id == "IMG-SIZE"
    raw.unlink()
    raw.mkdir()
    with pytest.raises(ImageFileError) as info:
        addcow_ref.open_image(path)
    assert info.value.rule_id == "IMG-FILE-TYPE"  # was IMG-EXISTS before the split
    raw.rmdir()
    with pytest.raises(ImageFileError) as info:
        addcow_ref.open_image(path)
    assert info.value.rule_id == "IMG-EXISTS"
    with pytest.raises(addcow_ref.AddCowError):
        addcow_ref.open_image(tmp_path / "nope.addcow")


def test_read_write_bounds_and_modes(tmp_path: Path) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB)
    with addcow_ref.open_image(path) as img:
        with pytest.raises(ReadOnlyError):
            img.write(0, b"x")
        with pytest.raises(ValueError, match="outside"):
            img.read(SIZE - 1, 2)
        assert img.read(SIZE, 0) == b""
    with pytest.raises(ValueError, match="closed"):
        img.read(0, 1)
    with addcow_ref.open_image(path, "r+") as img, pytest.raises(ValueError, match="outside"):
        img.write(SIZE - 1, b"ab")
    with pytest.raises(ValueError, match="mode"):
        addcow_ref.open_image(path, "w")
    assert addcow_ref.open is addcow_ref.open_image


def test_is_allocated_and_map(tmp_path: Path) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=b"\x01" * (3 * 4096))
    with addcow_ref.open_image(path, "r+") as img:
        img.write(4096 + 5, b"x")
        img.write(3 * 4096, b"y" * 8192)
        assert img.is_allocated(0, SIZE) == (False, 4096)
        assert img.is_allocated(100, 10) == (False, 10)
        assert img.is_allocated(4096 + 100, SIZE) == (True, 4096 - 100)
        assert img.is_allocated(3 * 4096, SIZE) == (True, 8192)
        assert [(e.start, e.length, e.allocated, e.depth, e.data) for e in img.map()] == [
            (0, 4096, False, 1, True),
            (4096, 4096, True, 0, True),
            (8192, 4096, False, 1, True),
            (12288, 8192, True, 0, True),
            (20480, SIZE - 20480, False, 1, False),
        ]
        assert img.map(4096 + 10, 20) == [addcow_ref.Extent(4096 + 10, 20, True, 0, True)]
        info = image_info(img)
        assert info.allocated_clusters == 3
        assert info.cluster_count == 8
        assert info.backing_file == "disk-base.raw"
        assert info.backing_format == "raw"
        assert info.image_format == "raw"
        assert (info.version, info.virtual_size, info.cluster_bits, info.cluster_size) == (
            2, SIZE, CB, 1 << CB)
        assert (info.image_file, info.header_length) == ("disk.raw", 128)
        assert (info.incompatible_features, info.compatible_features,
                info.autoclear_features) == (0, 0, 0)


def test_autoclear_bits_are_cleared_before_the_first_write(tmp_path: Path) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB)
    patch_header(path, autoclear_features=(1 << 5) | (1 << 40), compatible_features=1 << 9)
    with addcow_ref.open_image(path, "r+") as img:
        assert int(parse_header(path.read_bytes()[:128]).autoclear_features) != 0
        img.read(0, 10)  # reading does not modify
        assert int(parse_header(path.read_bytes()[:128]).autoclear_features) != 0
        img.write(0, b"x")
        # Durable before the write returned, not only at flush.
        header = parse_header(path.read_bytes()[:128])
        assert int(header.autoclear_features) == 0
        assert int(header.compatible_features) == 1 << 9  # unknown compatible bits stay


def test_hydrate_sets_all_allocated_and_reads_skip_bitmap(tmp_path: Path) -> None:
    backing = random.Random(1).randbytes(5 * 4096 + 100)
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=backing)
    with addcow_ref.open_image(path, "r+") as img:
        img.write(4096, b"z" * 10)
        img.hydrate()
        assert img.all_allocated
    header = parse_header(path.read_bytes()[:128])
    assert int(header.compatible_features) & CompatibleFeature.ALL_ALLOCATED
    check_valid(path)
    disk = bytearray(backing.ljust(SIZE, b"\0"))
    disk[4096:4106] = b"z" * 10
    assert (tmp_path / "disk.raw").read_bytes() == disk
    # Reads must not consult the bitmap any more: corrupt it and read.
    data = bytearray(path.read_bytes())
    data[4096] = 0
    path.write_bytes(bytes(data))
    with addcow_ref.open_image(path) as img:
        assert img.read(0, SIZE) == disk


def test_create_long_names_and_explicit_bitmap_offset(tmp_path: Path) -> None:
    name = "n" * 4000 + ".raw"  # does not fit before a bitmap at 4096
    sub = tmp_path / ("d" * 200)
    sub.mkdir()
    (sub / ("d" * 200)).mkdir()
    long_name = f"{'d' * 200}/{'d' * 200}/x.raw"
    addcow_ref.create(tmp_path / "a.addcow", size=SIZE, image_file=long_name, cluster_bits=9)
    with addcow_ref.open_image(tmp_path / "a.addcow") as img:
        assert image_info(img).image_file == long_name
        assert img.header.cluster_count == SIZE // 512
    check_valid(tmp_path / "a.addcow")
    with pytest.raises(ValueError, match="NUL"):
        addcow_ref.create(tmp_path / "b.addcow", size=SIZE, image_file="a\0b")
    addcow_ref.create(tmp_path / "c.addcow", size=SIZE, image_file="c.raw", bitmap_offset=65536)
    with addcow_ref.open_image(tmp_path / "c.addcow") as img:
        assert image_info(img).bitmap_offset == 65536
    with pytest.raises(FormatError) as info:
        addcow_ref.create(tmp_path / "d.addcow", size=SIZE, image_file=name,
                          bitmap_offset=DEFAULT_BITMAP_OFFSET)
    assert info.value.rule_id == "NAME-BOUNDS"
    with pytest.raises(FormatError) as info:
        addcow_ref.create(tmp_path / "e.addcow", size=1000, image_file="e.raw")
    assert info.value.rule_id == "HDR-VIRTUAL-SIZE-ALIGN"
    assert not (tmp_path / "e.addcow").exists()


def test_existing_image_file_is_kept_and_extended(tmp_path: Path) -> None:
    (tmp_path / "disk.raw").write_bytes(b"\x33" * 1000)
    addcow_ref.create(tmp_path / "t.addcow", size=SIZE, image_file="disk.raw")
    assert (tmp_path / "disk.raw").stat().st_size == SIZE
    assert (tmp_path / "disk.raw").read_bytes()[:1000] == b"\x33" * 1000
    with addcow_ref.open_image(tmp_path / "t.addcow", "r+") as img:
        assert img.read(0, SIZE) == bytes(SIZE)  # unallocated, no backing: zeros
        img.write(SIZE - 10, b"k" * 10)
        img.hydrate()  # must zero the stale bytes, not only the holes
        assert img.read(0, SIZE) == bytes(SIZE - 10) + b"k" * 10
    assert (tmp_path / "disk.raw").read_bytes() == bytes(SIZE - 10) + b"k" * 10


def test_large_sparse_image_reads_through_a_bounded_cache(tmp_path: Path) -> None:
    """1 TiB with 64 KiB clusters: a 2 MiB bitmap that is never loaded whole."""
    size = 1 << 40
    addcow_ref.create(tmp_path / "big.addcow", size=size, image_file="big.raw")
    rng = random.Random(7)
    with addcow_ref.open_image(tmp_path / "big.addcow", "r+", cache_capacity=4) as img:
        img.write(size - 4096, b"end!")
        img.write(1 << 30, b"mid")
        for _ in range(200):
            off = rng.randrange(0, size - 4096) & ~4095
            assert img.read(off, 4096).strip(b"\0") in (b"", b"mid", b"end!")
            assert len(img._cache) <= 5  # capacity plus the one chunk in use
        assert img.read(size - 4096, 4) == b"end!"
        extents = img.map()
        assert sum(e.length for e in extents) == size
        assert [e.start for e in extents if e.allocated] == [1 << 30, size - 65536]
    check_valid(tmp_path / "big.addcow")
