"""qemu-img (and nbdinfo) against served images: compare with a raw oracle, convert, info, map;
a two-level add-cow chain and a legacy v1 image."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import addcow_ref

from . import images, tools
from .conftest import SERVE, Server

#: The addcow CLI, as users run it.
ADDCOW = SERVE[:1]

pytestmark = pytest.mark.interop

MiB = images.MiB


def write_some(uri: str, disk: images.Disk) -> None:
    """A handful of writes through qemu-io, mirrored into the oracle: allocated clusters with
    data, one allocated cluster holding only zeros, unallocated clusters left alone."""
    c = disk.cluster_size
    writes = [(c + 100, 5000, 0xA1), (5 * c, c, 0x00), (9 * c - 10, 30, 0xA2),
              (disk.size - 4096, 4096, 0xA3)]
    tools.qemu_io(uri, [f"write -P 0x{b:02x} {o} {n}" for o, n, b in writes])
    for o, n, b in writes:
        disk.oracle.write(o, bytes([b]) * n)


def library_map(path: Path) -> list[tuple[int, int, bool]]:
    """(start, length, reads-as-data) from the reference's map(), merged; ``force_share``,
    as ``qemu-img -U``, since the image is often being served meanwhile."""
    with addcow_ref.open_image(str(path), force_share=True) as img:
        return tools.merged([(e.start, e.length, bool(e.data)) for e in img.map()])


def cli_map(path: Path) -> list[tuple[int, int, bool]]:
    """(start, length, reads-as-data) from ``addcow map --output=json``, merged."""
    entries: list[dict[str, Any]] = json.loads(
        tools.run([*ADDCOW, "map", "-U", "--output=json", path]).stdout)  # often served
    return tools.merged([(e["start"], e["length"], bool(e["data"])) for e in entries])


def qemu_map(uri: str) -> list[tuple[int, int, bool]]:
    entries: list[dict[str, Any]] = tools.qemu_img_json("map", "-f", "raw", uri)
    for e in entries:
        # Over NBD qemu has no backing chain: "zero" must be exactly "not data".
        assert e["depth"] == 0, e
        assert e["zero"] is not e["data"], e
    return tools.merged([(e["start"], e["length"], bool(e["data"])) for e in entries])


def nbdinfo_map(uri: str) -> list[tuple[int, int, bool]]:
    entries: list[dict[str, Any]] = json.loads(
        tools.run(["nbdinfo", "--map", "--json", uri]).stdout)
    # base:allocation type: bit 0 hole, bit 1 zero. Either both or neither.
    assert all(e["type"] in (0, 3) for e in entries), entries
    return tools.merged([(e["offset"], e["length"], e["type"] == 0) for e in entries])


def check_against_oracle(uri: str, disk: images.Disk, tmp_path: Path) -> None:
    """qemu-img compare says the served disk equals the oracle; convert equals the library."""
    oracle = disk.oracle.save(tmp_path / "oracle.raw")
    tools.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", uri, oracle])
    out = tmp_path / "converted.raw"
    tools.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", uri, out])
    with addcow_ref.open_image(str(disk.path), force_share=True) as img:  # it is served
        assert out.read_bytes() == img.read(0, img.virtual_size)
    cli = tmp_path / "addcow-read.raw"
    tools.run([*ADDCOW, "read", "-U", disk.path, "-o", cli])
    assert out.read_bytes() == cli.read_bytes()
    assert out.read_bytes() == bytes(disk.oracle.data)


@pytest.mark.parametrize("backing", ["full", "short", "none"])
def test_compare_convert_info_map(tmp_path: Path, serve: Callable[..., Server],
                                  backing: str) -> None:
    tools.need("qemu-img", "qemu-io", "nbdinfo")
    size = 4 * MiB
    backing_size = {"full": size, "short": 3 * MiB - 3 * 512, "none": 0}[backing]
    disk = images.overlay(tmp_path, size=size, backing_size=backing_size)
    server = serve(disk.path)
    write_some(server.uri, disk)

    info = tools.qemu_img_json("info", "-f", "raw", server.uri)
    assert info["virtual-size"] == size
    check_against_oracle(server.uri, disk, tmp_path)

    expected = library_map(disk.path)
    assert cli_map(disk.path) == expected
    assert qemu_map(server.uri) == expected
    assert nbdinfo_map(server.uri) == expected
    if backing == "none":
        # Only the written clusters are data; everything else is a hole that reads as zeros.
        assert sum(n for _, n, d in expected if d) == 5 * disk.cluster_size  # 9c-10 straddles
    if backing == "short":
        assert expected[-2:][0][2] is False  # the tail past the backing file reads as zeros

    assert server.stop() == 0
    tools.assert_conforming(disk.path)


def test_compare_detects_a_difference(tmp_path: Path, serve: Callable[..., Server]) -> None:
    """The oracle comparison can fail: one flipped byte is reported by qemu-img compare."""
    tools.need("qemu-img")
    disk = images.overlay(tmp_path, size=MiB)
    server = serve(disk.path, readonly=True)
    disk.oracle.data[123457] ^= 0xFF
    proc = tools.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", server.uri,
                      disk.oracle.save(tmp_path / "oracle.raw")], ok=(1,))
    # qemu-img compare reports the first differing sector.
    assert f"offset {123457 // 512 * 512}!" in proc.stdout


def test_two_level_chain(tmp_path: Path, serve: Callable[..., Server]) -> None:
    tools.need("qemu-img", "qemu-io", "nbdinfo")
    disk = images.chain(tmp_path)
    server = serve(disk.path)
    check_against_oracle(server.uri, disk, tmp_path)
    # Writes into the top image over clusters held by the middle image and by the base.
    c = disk.cluster_size
    writes = [(3 * c + 50, 200, 0xC1), (20 * c + 1, 2 * c, 0xC2), (disk.size - 300, 300, 0xC3)]
    tools.qemu_io(server.uri, [f"write -P 0x{b:02x} {o} {n}" for o, n, b in writes])
    for o, n, b in writes:
        disk.oracle.write(o, bytes([b]) * n)
    check_against_oracle(server.uri, disk, tmp_path)
    expected = library_map(disk.path)
    assert qemu_map(server.uri) == expected
    # The base is shorter than the disk: its missing tail reads as zeros where no level wrote.
    assert any(not d for _, _, d in expected)
    assert server.stop() == 0
    for name in ("top", "mid"):
        tools.assert_conforming(tmp_path / f"{name}.add-cow")
    # The middle image was opened read-only as a backing file: untouched by the writes.
    with addcow_ref.open_image(str(tmp_path / "mid.add-cow")) as mid:
        assert mid.read(20 * c, 2 * c) != b"\xc2" * (2 * c)


def test_v1_image_read_only(tmp_path: Path, serve: Callable[..., Server]) -> None:
    tools.need("qemu-img", "qemu-io", "nbdinfo")
    disk = images.v1_image(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    server = serve(disk.path, readonly=True)
    check_against_oracle(server.uri, disk, tmp_path)
    assert qemu_map(server.uri) == library_map(disk.path)
    proc = tools.qemu_io(server.uri, ["write -P 0x77 0 512"], ok=(1,))
    assert "Permission denied" in proc.stderr or "read-only" in proc.stderr, proc.stderr
    tools.qemu_io(server.uri, tools.read_checks(disk.oracle.data, 0, 4 * disk.cluster_size),
                  readonly=True)
    assert server.stop() == 0
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data, f"{name} changed"
