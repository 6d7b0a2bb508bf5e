"""qemu-io write/read patterns through ``addcow serve``, in the style of qemu-iotests.

Each pattern is written by qemu-io over NBD and applied to a raw oracle; then every byte of
every touched cluster (the written bytes and the copied-on-write head and tail around them) is
verified with ``read -P``, once through the live server and once after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import addcow_ref

from . import images, tools
from .conftest import Server


@dataclass(frozen=True)
class Pattern:
    """One qemu-io write: ``command`` is ``write``, ``writev``, ``aio_write`` or ``write -z``."""

    name: str
    offset: int
    length: int
    byte: int
    command: str = "write"

    def qemu_io(self) -> str:
        if self.command == "write -z":
            return f"write -z {self.offset} {self.length}"
        if self.command == "writev":
            half = self.length // 2
            return f"writev -P 0x{self.byte:02x} {self.offset} {half} {self.length - half}"
        return f"{self.command} -P 0x{self.byte:02x} {self.offset} {self.length}"

    def data(self) -> bytes:
        return bytes([0 if self.command == "write -z" else self.byte]) * self.length


def patterns(c: int, size: int) -> list[Pattern]:
    """The patterns for cluster size ``c`` on a ``size``-byte disk (>= 64 clusters)."""
    return [
        Pattern("aligned-one-cluster", 0, c, 0x11),
        Pattern("aligned-three-clusters", 4 * c, 3 * c, 0x12),
        Pattern("unaligned-inside-cluster", 8 * c + 1000 % c, min(3000, c // 2), 0x13),
        Pattern("straddle-two-clusters", 12 * c - 700 % c, 1400 % (2 * c) or c, 0x14),
        Pattern("straddle-three-unaligned", 16 * c + 100, 2 * c + 200, 0x15),
        Pattern("sub-sector", 20 * c + 5, 7, 0x16),
        Pattern("sub-sector-across-sector", 20 * c + 510, 4, 0x17),
        Pattern("one-byte-first-of-cluster", 22 * c, 1, 0x18),
        Pattern("one-byte-last-of-cluster", 23 * c - 1, 1, 0x19),
        Pattern("sector-aligned-in-cluster", 24 * c + 1536 % c, 512, 0x1a),
        Pattern("zeros-over-backing-data", 26 * c + 1024 % c, min(4096, c), 0x00),
        Pattern("write-zeroes-command", 28 * c + 100, 3000, 0x00, "write -z"),
        Pattern("vectored-straddle", 30 * c - 300, 900, 0x1b, "writev"),
        Pattern("overwrite-allocated-partially", c // 2, 100, 0x1c),
        Pattern("allocated-into-unallocated", 6 * c + c // 2, c, 0x1d),
        Pattern("unalloc-alloc-unalloc", 3 * c + 7, 5 * c, 0x1e),
        Pattern("large-unaligned", 36 * c + 333, 5 * c + 77, 0x1f),
        Pattern("aio-a", 44 * c + 10, c // 4, 0x21, "aio_write"),
        Pattern("aio-b", 44 * c + c // 2, c // 4, 0x22, "aio_write"),
        Pattern("aio-c", 44 * c + c - 10, 20, 0x23, "aio_write"),
        Pattern("last-cluster-partial", size - c + min(1000, c // 4), min(700, c // 2), 0x24),
        Pattern("last-byte-of-disk", size - 1, 1, 0x25),
    ]


def touched_range(p: Pattern, c: int, size: int) -> tuple[int, int]:
    """The whole clusters a pattern touches: their untouched bytes are the COW head/tail."""
    return (p.offset // c * c, min(size, -(-(p.offset + p.length) // c) * c))


def write_commands(pats: list[Pattern]) -> list[str]:
    cmds = [p.qemu_io() for p in pats]
    if any(p.command == "aio_write" for p in pats):
        cmds.append("aio_flush")
    cmds.append("flush")
    return cmds


def verify_commands(oracle: bytes | bytearray, pats: list[Pattern], c: int,
                    size: int) -> list[str]:
    ranges = sorted(touched_range(p, c, size) for p in pats)
    merged: list[list[int]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    cmds: list[str] = []
    for lo, hi in merged:
        cmds += tools.read_checks(oracle, lo, hi)
    # And a few untouched clusters: pure backing reads.
    for cl in (2, 48, 60):
        cmds += tools.read_checks(oracle, cl * c, (cl + 1) * c)
    return cmds


@pytest.mark.interop
@pytest.mark.parametrize("cluster_bits", [16, 12, 9])
def test_qemu_io_patterns(tmp_path: Path, serve: Callable[..., Server],
                          cluster_bits: int) -> None:
    tools.need("qemu-io")
    size = 4 * images.MiB if cluster_bits >= 12 else 64 * 512
    disk = images.overlay(tmp_path, size=size, cluster_bits=cluster_bits)
    c = disk.cluster_size
    pats = patterns(c, size)
    for p in pats:
        disk.oracle.write(p.offset, p.data())

    server = serve(disk.path)
    tools.qemu_io(server.uri, write_commands(pats))
    checks = verify_commands(disk.oracle.data, pats, c, size)
    tools.qemu_io(server.uri, checks)
    assert server.stop() == 0

    # The data outlived the server, and a fresh server reads it back the same.
    server = serve(disk.path, readonly=True)
    tools.qemu_io(server.uri, checks, readonly=True)
    with addcow_ref.open_image(str(disk.path)) as img:
        assert img.read(0, size) == bytes(disk.oracle.data)


@pytest.mark.interop
def test_pattern_mismatch_is_detected(tmp_path: Path, serve: Callable[..., Server]) -> None:
    """The verification above can fail: a wrong expected byte makes qemu-io report it."""
    tools.need("qemu-io")
    disk = images.overlay(tmp_path, size=images.MiB)
    server = serve(disk.path)
    tools.qemu_io(server.uri, ["write -P 0x42 1000 100"])
    proc = tools.qemu_io(server.uri, ["read -P 0x43 1000 100"], ok=(0, 1))
    assert "Pattern verification failed" in proc.stdout


def test_patterns_fit_and_differ() -> None:
    """The pattern table itself: inside the disk, distinct names, and they exercise what they
    claim (unaligned starts, cluster-straddling, sub-sector lengths)."""
    for c, size in ((1 << 16, 4 * images.MiB), (1 << 12, 4 * images.MiB), (512, 64 * 512)):
        pats = patterns(c, size)
        assert len({p.name for p in pats}) == len(pats)
        for p in pats:
            assert p.offset >= 0, (c, p)
            assert p.length > 0, (c, p)
            assert p.offset + p.length <= size, (c, p)
        assert any(p.offset % 512 and p.length < 512 for p in pats)
        assert any(p.offset // c != (p.offset + p.length - 1) // c for p in pats)
