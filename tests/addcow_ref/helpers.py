"""Shared helpers: building small images and checking a file against the spec's structural
rules (header rules through ``addcow_ref.format.validate``, plus the ``all_allocated`` rule,
which needs the bitmap's contents; set padding bits are a warning, BMP-PADDING, which
``check_valid`` reports only when asked to be strict)."""

from __future__ import annotations

import os
from pathlib import Path

import addcow_ref
from addcow_ref.format.bitmap import count_ones, padding_mask
from addcow_ref.format.constants import CompatibleFeature
from addcow_ref.format.header import parse_header
from addcow_ref.format.validate import header_violations


def make_image(directory: Path, *, size: int, cluster_bits: int = 12,
               backing: bytes | None = None, name: str = "disk") -> Path:
    """``name.addcow`` over ``name.raw``, with ``name-base.raw`` holding ``backing`` if given."""
    path = directory / f"{name}.addcow"
    if backing is not None:
        (directory / f"{name}-base.raw").write_bytes(backing)
        addcow_ref.create(path, size=size, image_file=f"{name}.raw",
                          backing_file=f"{name}-base.raw", backing_format="raw",
                          cluster_bits=cluster_bits)
    else:
        addcow_ref.create(path, size=size, image_file=f"{name}.raw", cluster_bits=cluster_bits)
    return path


def check_valid(path: str | os.PathLike[str], *, strict: bool = False) -> bytes:
    """Assert the add-cow file breaks no error-severity rule; return its bitmap bytes.

    ``strict`` also refuses the warnings a finished operation must not leave: set padding bits
    (BMP-PADDING) and an image file longer than the disk (IMG-LENGTH)."""
    data = Path(path).read_bytes()
    header = parse_header(data[:128])

    def read_at(offset: int, length: int) -> bytes:
        return data[offset:offset + length]

    errors = [v for v in header_violations(header, read_at, len(data)) if v.severity == "error"]
    assert not errors, errors
    bo = int(header.bitmap_offset)
    bitmap = data[bo:bo + header.bitmap_length]
    assert len(bitmap) == header.bitmap_length
    mask = padding_mask(header.cluster_count)
    if bitmap and strict:
        assert bitmap[-1] & mask == 0, f"padding bits set: {bitmap[-1]:08b}"  # BMP-PADDING
    if int(header.compatible_features) & CompatibleFeature.ALL_ALLOCATED:
        padding = bin(bitmap[-1] & mask).count("1") if bitmap else 0
        assert count_ones(bitmap) - padding == header.cluster_count  # FEAT-ALL-ALLOCATED
    raw_path = Path(path).parent / os.fsdecode(
        data[int(header.image_name_offset):int(header.image_name_offset)
             + int(header.image_name_length)])
    assert raw_path.stat().st_size >= int(header.virtual_size)  # IMG-SIZE
    if strict and raw_path.is_file():
        assert raw_path.stat().st_size == int(header.virtual_size)  # IMG-LENGTH
    return bitmap


def bitmap_clusters(bitmap: bytes, cluster_count: int) -> set[int]:
    """The clusters whose bit is 1."""
    return {i for i in range(cluster_count) if bitmap[i >> 3] >> (i & 7) & 1}


def make_v1(directory: Path, *, image: bytes, bitmap: bytes | None = None,
            backing: bytes | None = None, name: str = "old") -> Path:
    """A version 1 (v9 patch) image: 2560-byte header, bitmap at 2560, 64 KiB clusters."""
    from addcow_ref.format.constants import MAGIC
    from addcow_ref.format.header import bitmap_length_for

    (directory / f"{name}.raw").write_bytes(image)
    backing_name = b""
    if backing is not None:
        (directory / f"{name}-base.raw").write_bytes(backing)
        backing_name = f"{name}-base.raw".encode()
    header = (MAGIC + (1).to_bytes(4, "big") + backing_name.ljust(1024, b"\0")
              + f"{name}.raw".encode().ljust(1024, b"\0") + bytes(500))
    assert len(header) == 2560
    length = bitmap_length_for(len(image) - len(image) % 512, 16)
    bits = (bitmap or b"")[:length].ljust(length, b"\0")
    path = directory / f"{name}.addcow"
    path.write_bytes(header + bits)
    return path
