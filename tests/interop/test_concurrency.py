"""Several NBD connections writing disjoint pieces of the same clusters at the same time.

The race this guards against: two first writes into one unallocated cluster each copy the
backing head/tail into the image file; without ordering, one copy lands on the bytes the other
just wrote. The oracle (writes applied in any order; they are disjoint) must equal the result.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import addcow_ref

from . import images, tools
from .conftest import Server

pytestmark = pytest.mark.interop

MiB = images.MiB


def test_parallel_qemu_io_clients_share_clusters(
        tmp_path: Path, serve: Callable[..., Server]) -> None:
    tools.need("qemu-io", "qemu-img")
    clients = 4
    disk = images.overlay(tmp_path, size=4 * MiB)
    c = disk.cluster_size
    piece = c // clients
    server = serve(disk.path)
    procs = []
    for k in range(clients):
        cmds = []
        # Every client writes its quarter (minus a few bytes: the gaps must keep backing data)
        # of the same 24 unallocated clusters, all requests in flight at once.
        for cl in range(8, 32):
            off, n = cl * c + k * piece + 3, piece - 6
            cmds.append(f"aio_write -P 0x{0x80 + k:02x} {off} {n}")
            disk.oracle.write(off, bytes([0x80 + k]) * n)
        cmds += ["aio_flush", "flush"]
        argv = ["qemu-io", "-f", "raw"] + [a for cmd in cmds for a in ("-c", cmd)] + [server.uri]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    for p in procs:
        out, err = p.communicate(timeout=tools.TIMEOUT)
        assert p.returncode == 0, out + err
    oracle = disk.oracle.save(tmp_path / "oracle.raw")
    tools.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", server.uri, oracle])
    assert server.stop() == 0
    tools.assert_conforming(disk.path)
    with addcow_ref.open_image(str(disk.path)) as img:
        assert img.read(0, disk.size) == bytes(disk.oracle.data)


def test_nbdcopy_multi_conn_write_then_read(tmp_path: Path, serve: Callable[..., Server]) -> None:
    """nbdcopy with 4 connections and 16 requests in flight each, in requests a quarter of a
    cluster long: writes a random source into an overlay, then reads it back out."""
    tools.need("nbdcopy", "qemu-img")
    size = 4 * MiB
    disk = images.overlay(tmp_path, size=size, backing_size=size // 2)
    source = tmp_path / "source.raw"
    data = bytearray(random.Random(7).randbytes(size))
    data[MiB:MiB + 200_000] = bytes(200_000)  # a zero run: nbdcopy may send it as zeroes
    source.write_bytes(data)
    server = serve(disk.path)
    opts = ["--connections=4", "--requests=16", f"--request-size={disk.cluster_size // 4}",
            "--flush"]
    tools.run(["nbdcopy", *opts, source, server.uri])
    tools.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", server.uri, source])
    back = tmp_path / "back.raw"
    tools.run(["nbdcopy", *opts[:3], server.uri, back])
    assert back.read_bytes() == bytes(data)
    assert server.stop() == 0
    tools.assert_conforming(disk.path)
    with addcow_ref.open_image(str(disk.path)) as img:
        assert img.read(0, size) == bytes(data)
