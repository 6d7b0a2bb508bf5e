"""``addcow map`` tells holes from data as ``qemu-img map`` does, and agrees with what
``qemu-img map`` sees of the same disk through ``addcow serve`` (NBD block status), range by
range, and with ``qemu-img map`` of the raw backing file itself.

The disk has every kind of range: data in the image file, a hole punched in the image file
inside allocated clusters, data and holes of a sparse raw backing file, and the range past the
backing file's end. A two-level chain checks that holes of a deeper layer's files count too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import addcow_ref

from . import tools
from .conftest import SERVE, Server

ADDCOW = SERVE[:1]
MiB = 1 << 20
C = 65536
SIZE = 4 * MiB
BACKING = 3 * MiB


def _sparse_base(path: Path) -> None:
    with path.open("wb") as f:  # data only in [1 MiB, 1.5 MiB)
        f.truncate(BACKING)
        f.seek(MiB)
        f.write(b"\x11" * (MiB // 2))


def _disk(d: Path) -> Path:
    _sparse_base(d / "base.raw")
    path = d / "disk.add-cow"
    addcow_ref.create(str(path), size=SIZE, image_file="disk.raw", backing_file="base.raw",
                      backing_format="raw")
    with addcow_ref.open_image(str(path), "r+") as img:
        img.write(0, b"\x22" * (2 * C))                # data in the image file
        img.write_zeroes(2 * C, 2 * C, punch=True)     # allocated, a hole of the image file
        img.write(MiB, b"\x33" * C)                    # allocated over backing data
    return path


def _addcow_map(path: Path, *extra: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(
        tools.run([*ADDCOW, "map", "-U", "--output=json", *extra, path]).stdout)
    return entries


def _data(entries: list[dict[str, Any]]) -> list[tuple[int, int, bool]]:
    return tools.merged([(e["start"], e["length"], bool(e["data"])) for e in entries])


def test_map_matches_qemu_img_map_over_serve(tmp_path: Path,
                                             serve: Callable[..., Server]) -> None:
    tools.need("qemu-img")
    image = _disk(tmp_path)
    ours = _addcow_map(image)
    # qemu-img's keys, in its order, then add-cow's "allocated".
    for e in ours:
        keys = ["start", "length", "depth", "present", "zero", "data"]
        keys += ["offset"] if e["present"] else []
        assert list(e) == [*keys, "allocated"], e
        assert e["zero"] is not e["data"], e
    server = serve(image, readonly=True)
    qmap = tools.qemu_img_json("map", "-f", "raw", server.uri)
    assert server.stop() == 0
    assert _data(ours) == _data(qmap)
    assert _data(ours) == [(0, 2 * C, True), (2 * C, MiB - 2 * C, False), (MiB, MiB // 2, True),
                           (MiB + MiB // 2, SIZE - MiB - MiB // 2, False)]
    # The punched clusters are allocated in the image file yet report no data.
    hole = next(e for e in ours if e["start"] == 2 * C)
    assert (hole["depth"], hole["allocated"], hole["present"], hole["zero"]) == (0, True, True,
                                                                                  True)
    # Past the backing file's end no layer holds the bytes: not present, as qemu-img says of
    # an unallocated qcow2 cluster without backing file.
    tail = ours[-1]
    assert (tail["start"] + tail["length"], tail["present"], tail["data"]) == (SIZE, False,
                                                                                False)


def test_unwritten_ranges_map_as_qemu_img_maps_the_raw_backing(tmp_path: Path) -> None:
    """Where the overlay holds nothing, each range is what ``qemu-img map`` says of the raw
    backing file, one level deeper: the same starts, lengths, offsets, zero and data flags."""
    tools.need("qemu-img")
    _sparse_base(tmp_path / "base.raw")
    image = tmp_path / "disk.add-cow"
    addcow_ref.create(str(image), size=BACKING, image_file="disk.raw", backing_file="base.raw",
                      backing_format="raw")
    qemu = tools.qemu_img_json("map", "-f", "raw", str(tmp_path / "base.raw"))
    ours = _addcow_map(image)
    fields = ("start", "length", "present", "zero", "data", "offset")
    assert [tuple(e[k] for k in fields) for e in ours] == \
           [tuple(e[k] for k in fields) for e in qemu]
    assert [e["depth"] for e in ours] == [e["depth"] + 1 for e in qemu]
    assert any(e["zero"] for e in ours)
    assert any(e["data"] for e in ours)


def test_holes_of_a_deeper_layer(tmp_path: Path, serve: Callable[..., Server]) -> None:
    """top -> mid (add-cow) -> base.raw (sparse): holes of mid's image file and of the base
    two levels down are reported, over serve as in the map."""
    tools.need("qemu-img")
    _sparse_base(tmp_path / "base.raw")
    addcow_ref.create(str(tmp_path / "mid.add-cow"), size=SIZE, image_file="mid.raw",
                      backing_file="base.raw", backing_format="raw")
    with addcow_ref.open_image(str(tmp_path / "mid.add-cow"), "r+") as mid:
        mid.write(0, b"\x44" * C)
        mid.write_zeroes(C, C, punch=True)
    top = tmp_path / "top.add-cow"
    addcow_ref.create(str(top), image_file="top.raw", backing_file="mid.add-cow",
                      backing_format="add-cow")
    ours = _addcow_map(top)
    by_start = {e["start"]: e for e in ours}
    assert (by_start[0]["depth"], by_start[0]["data"]) == (1, True)
    assert (by_start[C]["depth"], by_start[C]["present"], by_start[C]["data"]) == (1, True,
                                                                                    False)
    assert (by_start[MiB]["depth"], by_start[MiB]["data"]) == (2, True)
    server = serve(top, readonly=True)
    qmap = tools.qemu_img_json("map", "-f", "raw", server.uri)
    assert server.stop() == 0
    assert _data(ours) == _data(qmap)
    window = _addcow_map(top, "--start-offset", str(C // 2), "--max-length", str(MiB))
    assert _data(window) == [(C // 2, C // 2, True), (C, MiB - C, False), (MiB, C // 2, True)]
