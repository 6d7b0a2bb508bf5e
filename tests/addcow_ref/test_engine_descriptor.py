"""One descriptor for v1 and v2 images: opening describes either header the same way, and only
the descriptor module (and the v1 reader it calls) knows which header class it came from."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.engine.descriptor import ImageDescriptor, describe_v1, read_descriptor
from addcow_ref.engine.fileio import OSFileSystem
from addcow_ref.format.constants import DEFAULT_BITMAP_OFFSET
from addcow_ref.format.errors import FormatError, ReadOnlyError
from addcow_ref.format.header import HeaderV1, HeaderV2, parse_header_v1

from .helpers import make_image, make_v1

ENGINE = Path(addcow_ref.__file__).parent / "engine"
FS = OSFileSystem()


def test_v2_descriptor(tmp_path: Path) -> None:
    path = make_image(tmp_path, size=5 << 12, cluster_bits=12, backing=b"\x01" * 100)
    with addcow_ref.open_image(path) as img:
        d = img.descriptor
        assert isinstance(img.header, HeaderV2)
    assert d == ImageDescriptor(
        version=2, virtual_size=5 << 12, cluster_bits=12, bitmap_offset=DEFAULT_BITMAP_OFFSET,
        header_length=128,
        image_name=b"disk.raw", image_format="raw", backing_name=b"disk-base.raw",
        backing_format="raw", incompatible_features=0, compatible_features=0,
        autoclear_features=0, writable=True)
    assert (d.cluster_size, d.cluster_count, d.bitmap_length) == (4096, 5, 1)
    assert not d.all_allocated


def test_v1_descriptor_is_read_only_with_a_raw_backing_file(tmp_path: Path) -> None:
    image = bytes(3 * 65536 + 1000)  # the virtual size rounds down to a sector
    path = make_v1(tmp_path, image=image, backing=b"\x77" * 100)
    with pytest.raises(ReadOnlyError) as refused:
        addcow_ref.open_image(path, "r+")  # V1-NO-WRITE-OPEN: refused, not quietly read-only
    assert refused.value.rule_id == "V1-NO-WRITE-OPEN"
    with addcow_ref.open_image(path) as img:
        d = img.descriptor
        assert isinstance(img.header, HeaderV1)
        assert img.readonly
        with pytest.raises(ReadOnlyError) as info:
            img.write(0, b"x")
        assert info.value.rule_id == "V1-READ-ONLY"
    assert d.version == 1
    assert d.virtual_size == 3 * 65536 + 512
    assert (d.cluster_bits, d.bitmap_offset, d.header_length) == (16, 2560, 2560)
    assert (d.image_name, d.image_format) == (b"old.raw", "raw")
    assert (d.backing_name, d.backing_format) == (b"old-base.raw", "raw")
    assert (d.incompatible_features, d.compatible_features, d.autoclear_features) == (0, 0, 0)
    assert not d.writable
    header = parse_header_v1(path.read_bytes()[:2560]).with_image_length(len(image))
    assert describe_v1(header) == d


def test_v1_without_backing_has_no_backing_format(tmp_path: Path) -> None:
    path = make_v1(tmp_path, image=bytes(65536))
    meta = FS.open(str(path), writable=False)
    try:
        header, d = read_descriptor(meta, str(path), FS)
    finally:
        meta.close()
    assert isinstance(header, HeaderV1)
    assert (d.backing_name, d.backing_format) == (None, None)


def test_bad_magic_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "x.addcow"
    path.write_bytes(b"NOTACOW!" + bytes(120))
    meta = FS.open(str(path), writable=False)
    try:
        with pytest.raises(FormatError) as info:
            read_descriptor(meta, str(path), FS)
    finally:
        meta.close()
    assert (info.value.rule_id, info.value.field, info.value.offset) == ("HDR-MAGIC", "magic", 0)


def _mentions(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def test_only_the_descriptor_tells_the_header_versions_apart() -> None:
    """The I/O code reads the descriptor instead of branching on the header: no engine module
    tests a header's class, and only the descriptor's compares a version with 1."""
    class_tests: list[str] = []
    version_tests: set[str] = set()
    for source in sorted(ENGINE.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "isinstance" and len(node.args) == 2
                    and _mentions(node.args[1], "HeaderV1")):
                class_tests.append(f"{source.name}:{node.lineno}")
            if isinstance(node, ast.Compare) and _mentions(node, "VERSION_1"):
                version_tests.add(source.name)
    assert class_tests == []
    assert version_tests == {"descriptor.py"}
