"""Version 1 images: read-only access and the upgrade to version 2."""

from __future__ import annotations

from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.format.errors import ImageFileError, ReadOnlyError, TruncatedError
from addcow_ref.ops.info import image_info

from .helpers import bitmap_clusters, check_valid, make_v1

CLUSTER = 65536


def sample(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    image = bytes(range(256)) * (3 * CLUSTER // 256) + b"\x01" * 700  # not sector-aligned
    backing = b"\x77" * len(image)
    # bit 0 and 2 set, plus a padding bit (bit 7) that the upgrade must clear
    path = make_v1(tmp_path, image=image, bitmap=bytes([0b1000_0101]), backing=backing)
    return path, image, backing


def expected_disk(image: bytes, backing: bytes) -> bytes:
    size = len(image) - len(image) % 512
    disk = bytearray(backing[:size])
    for c in (0, 2):
        disk[c * CLUSTER:(c + 1) * CLUSTER] = image[c * CLUSTER:(c + 1) * CLUSTER]
    return bytes(disk[:size])


def test_v1_opens_read_only(tmp_path: Path) -> None:
    path, image, backing = sample(tmp_path)
    with pytest.raises(ReadOnlyError) as refused:
        addcow_ref.open_image(path, "r+")  # whatever it would write, a flush included
    assert refused.value.rule_id == "V1-NO-WRITE-OPEN"
    with addcow_ref.open_image(path) as img:
        assert img.version == 1
        assert img.readonly
        assert img.virtual_size == len(image) - len(image) % 512  # rounded down to 512
        assert img.cluster_size == CLUSTER
        assert img.read(0, img.virtual_size) == expected_disk(image, backing)
        with pytest.raises(ReadOnlyError) as info:
            img.write(0, b"x")
        assert info.value.rule_id == "V1-READ-ONLY"
        with pytest.raises(ReadOnlyError):
            img.resize(CLUSTER)
        assert image_info(img).version == 1
        assert [e.allocated for e in img.map()] == [True, False, True, False]


def test_upgrade_keeps_contents_and_clears_padding(tmp_path: Path) -> None:
    path, image, backing = sample(tmp_path)
    addcow_ref.upgrade_v1(path)
    bitmap = check_valid(path)
    assert bitmap_clusters(bitmap, 4) == {0, 2}
    with addcow_ref.open_image(path, "r+") as img:
        assert img.version == 2
        assert not img.readonly
        assert image_info(img).backing_format == "raw"
        assert img.read(0, img.virtual_size) == expected_disk(image, backing)
        img.write(CLUSTER + 5, b"new")
    with addcow_ref.open_image(path) as img:
        assert img.read(CLUSTER, 10) == b"\x77" * 5 + b"new" + b"\x77" * 2


def test_upgrade_refuses_v2(tmp_path: Path) -> None:
    path, _, _ = sample(tmp_path)
    addcow_ref.upgrade_v1(path)
    before = path.read_bytes()
    with pytest.raises(addcow_ref.AddCowError, match="already version 2"):
        addcow_ref.upgrade_v1(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(("offset", "byte", "rule"), [(0, 0x42, "HDR-MAGIC"),
                                                      (11, 0x07, "HDR-VERSION")])
def test_upgrade_of_neither_v1_nor_v2_names_the_rule(tmp_path: Path, offset: int, byte: int,
                                                     rule: str) -> None:
    path, _, _ = sample(tmp_path)
    data = bytearray(path.read_bytes())
    data[offset] = byte  # a bad magic, or version 7
    path.write_bytes(bytes(data))
    with pytest.raises(addcow_ref.AddCowError) as caught:
        addcow_ref.upgrade_v1(path)
    assert caught.value.rule_id == rule  # once no rule at all: "not a version 1 add-cow image"
    assert path.read_bytes() == bytes(data)


def test_truncated_v1_bitmap(tmp_path: Path) -> None:
    path, _, _ = sample(tmp_path)
    path.write_bytes(path.read_bytes()[:2560])
    with pytest.raises(TruncatedError) as info:
        addcow_ref.open_image(path)
    assert info.value.rule_id == "V1-BITMAP-LENGTH"


def test_v1_missing_image_file(tmp_path: Path) -> None:
    path, _, _ = sample(tmp_path)
    (tmp_path / "old.raw").unlink()
    with pytest.raises(ImageFileError) as info:
        addcow_ref.open_image(path)
    assert info.value.rule_id == "IMG-EXISTS"
