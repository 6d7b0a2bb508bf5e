"""Test images for the interop tests, each paired with its raw oracle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import addcow_ref
from addcow_ref.format.forge import forge_v1

from .tools import Oracle, sector_pattern

MiB = 1 << 20


@dataclass
class Disk:
    """An add-cow file and the oracle of its guest contents."""

    path: Path
    oracle: Oracle
    cluster_size: int

    @property
    def size(self) -> int:
        return len(self.oracle.data)


def overlay(directory: Path, *, size: int = 4 * MiB, cluster_bits: int = 16,
            backing_size: int | None = None, name: str = "disk") -> Disk:
    """An add-cow overlay over a raw backing file of ``backing_size`` bytes (default: the
    disk's size; 0: no backing file) filled with ``sector_pattern``."""
    backing_size = size if backing_size is None else backing_size
    path = directory / f"{name}.add-cow"
    backing = b""
    if backing_size:
        backing = sector_pattern(backing_size)
        (directory / f"{name}-base.raw").write_bytes(backing)
        addcow_ref.create(str(path), size=size, image_file=f"{name}.raw",
                          backing_file=f"{name}-base.raw", backing_format="raw",
                          cluster_bits=cluster_bits)
    else:
        addcow_ref.create(str(path), size=size, image_file=f"{name}.raw",
                          cluster_bits=cluster_bits)
    return Disk(path, Oracle(size, backing), 1 << cluster_bits)


def chain(directory: Path, *, size: int = 4 * MiB, cluster_bits: int = 16) -> Disk:
    """base.raw <- mid.add-cow <- top.add-cow, with data written at both add-cow levels
    (through the library) so that reads resolve at every depth."""
    backing = sector_pattern(size - 512 * 1000, seed=3)  # base shorter than the disk
    (directory / "base.raw").write_bytes(backing)
    addcow_ref.create(str(directory / "mid.add-cow"), size=size, image_file="mid.raw",
                      backing_file="base.raw", backing_format="raw", cluster_bits=cluster_bits)
    addcow_ref.create(str(directory / "top.add-cow"), size=size, image_file="top.raw",
                      backing_file="mid.add-cow", backing_format="add-cow",
                      cluster_bits=cluster_bits)
    oracle = Oracle(size, backing)
    cs = 1 << cluster_bits
    mid_writes = [(3 * cs + 100, b"\x4d" * (2 * cs)), (size - 700, b"\x4e" * 600)]
    top_writes = [(4 * cs - 50, b"\x54" * 100), (10 * cs, b"\x55" * cs)]
    for name, writes in (("mid", mid_writes), ("top", top_writes)):
        with addcow_ref.open_image(str(directory / f"{name}.add-cow"), mode="r+") as img:
            for off, data in writes:
                img.write(off, data)
                oracle.write(off, data)
            img.flush()
    return Disk(directory / "top.add-cow", oracle, cs)


def v1_image(directory: Path, *, size: int = 2 * MiB) -> Disk:
    """A legacy v1 file forged from the ``HEADER_V1`` defaults (64 KiB clusters, bitmap at 2560):
    clusters 1, 2 and the last are in the image file, the rest come from the backing file."""
    cs = 1 << 16
    backing = sector_pattern(size, seed=5)
    (directory / "v1-base.raw").write_bytes(backing)
    image = bytearray(size)
    allocated = [1, 2, size // cs - 1]
    for c in allocated:
        image[c * cs:(c + 1) * cs] = bytes([0x60 + c % 64]) * cs
    (directory / "v1.raw").write_bytes(image)
    header = forge_v1(backing_file=b"v1-base.raw", image_file=b"v1.raw").build()
    bitmap = bytearray(-(-(size // cs) // 8))
    for c in allocated:
        bitmap[c >> 3] |= 1 << (c & 7)
    path = directory / "v1.add-cow"
    path.write_bytes(header + bitmap)
    oracle = Oracle(size, backing)
    for c in allocated:
        oracle.write(c * cs, bytes(image[c * cs:(c + 1) * cs]))
    return Disk(path, oracle, cs)
