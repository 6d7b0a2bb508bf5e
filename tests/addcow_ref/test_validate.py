"""validate.py: the rule predicates shared by the reference (first error) and the checker (all)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from addcow_ref.format.forge import forge_v2
from addcow_ref.format.header import HeaderV2
from addcow_ref.format.validate import check_names, header_violations

TIB = 1 << 40


def _header(**changes: int | bytes) -> HeaderV2:
    """A 1 MiB image named ``image.raw`` (9 bytes) without backing file; fields by name."""
    return forge_v2(**{"virtual_size": 1 << 20, "image_name_length": 9, **changes})


def _seek_data(fd: int, end: int) -> object:
    def next_data(pos: int) -> int:
        try:
            return os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                return end
            raise
    return next_data


def test_sparse_terabyte_name_area_is_scanned_by_its_data_only(tmp_path: Path) -> None:
    """A stray byte half a terabyte into a sparse name area is found without reading the holes."""
    header = _header(bitmap_offset=TIB)
    path = tmp_path / "huge.add-cow"
    stray_at = TIB // 2 + 12345
    with path.open("wb") as f:
        f.write(header.build() + b"image.raw")
        f.seek(stray_at)
        f.write(b"\x07")
        f.truncate(TIB + header.bitmap_length)
    fd = os.open(path, os.O_RDONLY)
    requested = 0

    def read_at(offset: int, length: int) -> bytes:
        nonlocal requested
        requested += length
        return os.pread(fd, length, offset)

    try:
        found = check_names(header, read_at, path.stat().st_size,
                            _seek_data(fd, path.stat().st_size))  # type: ignore[arg-type]
    finally:
        os.close(fd)
    if requested > 64 << 20:
        pytest.fail(f"read {requested} bytes of a sparse name area: holes were not skipped")
    assert [(v.rule_id, v.offset) for v in found] == [("NAME-AREA-ZERO", stray_at)]


def test_without_next_data_every_byte_of_the_area_is_read() -> None:
    """The default reads the whole area: a stray byte at its very end is still found."""
    header = _header(bitmap_offset=8192)
    data = bytearray(header.build() + b"image.raw")
    data += bytes(8192 - len(data))
    data[8191] = 1
    data += bytes(header.bitmap_length)
    found = header_violations(header, lambda o, n: bytes(data[o:o + n]), len(data))
    assert [(v.rule_id, v.offset) for v in found] == [("NAME-AREA-ZERO", 8191)]


def test_pristine_header_has_no_violation() -> None:
    header = _header()
    data = header.build() + b"image.raw"
    data += bytes(4096 - len(data)) + bytes(header.bitmap_length)
    assert header_violations(header, lambda o, n: data[o:o + n], len(data)) == []
