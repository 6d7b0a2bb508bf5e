"""``addcow serve`` tells holes from data (NBD ``base:allocation``) and supports trim and zero,
proved with the real clients: ``qemu-img map``, ``nbdinfo --map``, ``nbdcopy`` and ``qemu-io``.

The disk under test has every kind of range: data in the image file, a hole punched in the
image file inside an allocated cluster, data of the raw backing file, a hole of the backing
file, and the range past the backing file's end (no layer holds it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import addcow_ref

from . import tools
from .conftest import Server

MiB = 1 << 20
C = 65536
SIZE = 4 * MiB
BACKING = 3 * MiB


def _disk(d: Path) -> tuple[Path, bytearray]:
    """The disk described in the module docstring, and its guest bytes."""
    base = d / "base.raw"
    with base.open("wb") as f:  # sparse: data only in [1 MiB, 1.5 MiB)
        f.truncate(BACKING)
        f.seek(MiB)
        f.write(b"\x11" * (MiB // 2))
    path = d / "disk.add-cow"
    addcow_ref.create(str(path), size=SIZE, image_file="disk.raw", backing_file="base.raw",
                      backing_format="raw")
    guest = bytearray(SIZE)
    guest[MiB:MiB + MiB // 2] = b"\x11" * (MiB // 2)
    with addcow_ref.open_image(str(path), "r+") as img:
        img.write(0, b"\x22" * (2 * C))                # clusters 0-1: data in the image file
        img.write_zeroes(2 * C, 2 * C, punch=True)     # clusters 2-3: allocated, a file hole
        img.write(MiB, b"\x33" * C)                    # allocated over backing data
    guest[0:2 * C] = b"\x22" * (2 * C)
    guest[MiB:MiB + C] = b"\x33" * C
    return path, guest


#: (start, length, is data) of the disk above, merged.
EXPECTED = [(0, 2 * C, True), (2 * C, MiB - 2 * C, False), (MiB, MiB // 2, True),
            (MiB + MiB // 2, SIZE - MiB - MiB // 2, False)]


def _has_holes(path: Path) -> bool:
    return os.stat(path).st_blocks * 512 < SIZE


def test_block_status_reports_holes(tmp_path: Path, serve: Callable[..., Server]) -> None:
    tools.need("qemu-img", "nbdinfo")
    image, _ = _disk(tmp_path)
    server = serve(image, readonly=True)
    qmap = tools.qemu_img_json("map", "--output=json", "-f", "raw", server.uri)
    got = tools.merged([(e["start"], e["length"], bool(e["data"])) for e in qmap])
    assert got == EXPECTED
    assert all(e["zero"] for e in qmap if not e["data"])
    proc = tools.run(["nbdinfo", "--map", "--json", server.uri])
    nmap = json.loads(proc.stdout)
    holes = tools.merged([(e["offset"], e["length"], e["type"] & 3 == 0) for e in nmap])
    assert holes == EXPECTED
    assert all(e["type"] == 3 for e in nmap if e["type"] & 1)  # every hole is also zero
    assert server.stop() == 0


def test_nbdcopy_and_qemu_img_convert_stay_thin(tmp_path: Path,
                                                serve: Callable[..., Server]) -> None:
    tools.need("qemu-img", "nbdcopy")
    image, guest = _disk(tmp_path)
    server = serve(image, readonly=True)
    copy = tmp_path / "copy.raw"
    tools.run(["nbdcopy", server.uri, str(copy)])
    conv = tmp_path / "conv.raw"
    tools.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", server.uri, str(conv)])
    assert server.stop() == 0
    for out in (copy, conv):
        assert out.read_bytes() == bytes(guest)
        # 2 clusters of the image file plus 512 KiB of backing data are data; a fully written
        # copy would take 4 MiB.
        assert os.stat(out).st_blocks * 512 <= 2 * C + MiB // 2 + 2 * C, out


def test_trim_and_zero_over_the_export(tmp_path: Path, serve: Callable[..., Server]) -> None:
    """``zero`` allocates and reads zeros, even over backing data; ``trim`` punches only
    allocated clusters, so an unallocated one keeps reading the backing file."""
    tools.need("qemu-io")
    image, guest = _disk(tmp_path)
    server = serve(image)
    tools.qemu_io(server.uri, [f"write -z {MiB + C} {2 * C}",        # over backing data
                               f"write -z -u {MiB + 4 * C} {C}",     # may punch: a hole
                               f"discard 0 {C}",                     # allocated: punched
                               f"discard {MiB + 6 * C} {C}",         # unallocated: kept
                               "flush"])
    guest[MiB + C:MiB + 3 * C] = bytes(2 * C)
    guest[MiB + 4 * C:MiB + 5 * C] = bytes(C)
    guest[0:C] = bytes(C)  # a discarded allocated cluster reads zeros (DISCARD-PUNCH)
    oracle = tmp_path / "oracle.raw"
    oracle.write_bytes(bytes(guest))
    tools.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", server.uri, str(oracle)])
    assert server.stop() == 0
    with addcow_ref.open_image(str(image)) as img:
        assert img.is_allocated(MiB + C, 2 * C) == (True, 2 * C)
        assert img.is_allocated(MiB + 6 * C, C) == (False, C)
        assert img.read(MiB + 6 * C, C) == bytes(guest[MiB + 6 * C:MiB + 7 * C])
    assert _has_holes(tmp_path / "disk.raw")
    tools.assert_conforming(image)
