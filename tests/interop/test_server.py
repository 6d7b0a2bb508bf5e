"""The ``addcow serve`` process itself: what it advertises, how it stops, what it refuses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.ops.info import image_info

from . import images, tools
from .conftest import SERVE, Server

pytestmark = pytest.mark.interop

MiB = images.MiB


def nbdinfo(uri: str) -> dict[str, object]:
    doc = json.loads(tools.run(["nbdinfo", "--json", uri]).stdout)
    exports = doc["exports"]
    assert len(exports) == 1
    return {**doc, **exports[0]}


def test_advertised_capabilities(tmp_path: Path, serve: Callable[..., Server]) -> None:
    tools.need("nbdinfo")
    disk = images.overlay(tmp_path, size=3 * MiB)
    server = serve(disk.path)
    info = nbdinfo(server.uri)
    assert info["export-size"] == 3 * MiB
    assert info["is_read_only"] is False
    assert info["can_flush"] is True
    assert info["can_multi_conn"] is True
    assert info["can_trim"] is True  # discard (DISCARD-PUNCH)
    assert info["can_zero"] is True
    assert info["can_fast_zero"] is True
    assert "base:allocation" in info["contexts"]  # type: ignore[operator]
    assert info["block_size_minimum"] == 1
    assert info["block_size_preferred"] == disk.cluster_size
    assert server.stop() == 0

    ro = nbdinfo(serve(disk.path, readonly=True).uri)
    assert ro["is_read_only"] is True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_and_leaves_a_conforming_image(
        tmp_path: Path, serve: Callable[..., Server], sig: int) -> None:
    """After Ctrl-C (or SIGTERM) every acknowledged write is in the image, the bitmap says so,
    and the checker finds nothing wrong, even for a client that never sent a flush."""
    tools.need("qemu-io", "nbdcopy")
    disk = images.overlay(tmp_path, size=2 * MiB)
    server = serve(disk.path)
    c = disk.cluster_size
    tools.qemu_io(server.uri, [f"write -P 0x32 {7 * c + 1} 5"])  # qemu-io flushes on exit
    small = tmp_path / "small.bin"
    small.write_bytes(bytes(range(256)) * 40)  # 10240 bytes into cluster 0
    tools.run(["nbdcopy", small, server.uri])  # no --flush: nbdcopy sends no flush at all
    assert server.stop(sig) == 0
    assert server.socket is not None
    assert not server.socket.exists()
    tools.assert_conforming(disk.path)
    disk.oracle.write(7 * c + 1, b"\x32" * 5)
    disk.oracle.write(0, small.read_bytes())
    with addcow_ref.open_image(str(disk.path)) as img:
        assert img.read(0, disk.size) == bytes(disk.oracle.data)
        assert image_info(img).allocated_clusters == 2


def test_readonly_refuses_writes_and_changes_nothing(
        tmp_path: Path, serve: Callable[..., Server]) -> None:
    tools.need("qemu-io")
    disk = images.overlay(tmp_path, size=MiB)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    server = serve(disk.path, readonly=True)
    # The export is flagged read-only: a client cannot even open it for writing.
    proc = tools.qemu_io(server.uri, ["write -P 0x55 0 4096"], ok=(1,))
    assert "Permission denied" in proc.stderr or "read-only" in proc.stderr, proc.stderr
    tools.qemu_io(server.uri, tools.read_checks(disk.oracle.data, 0, 8192), readonly=True)
    assert server.stop() == 0
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()
             if p.is_file() and p.name in before}
    assert after == before


def test_v1_needs_readonly(tmp_path: Path, sockdir: Path) -> None:
    """A v1 image opened read-write is refused at startup, with the library's reason."""
    tools.need("nbdkit")
    disk = images.v1_image(tmp_path)
    proc = subprocess.run([*SERVE, str(disk.path), "--socket", str(sockdir / "s.sock")],
                          capture_output=True, text=True, timeout=tools.TIMEOUT, check=False)
    assert proc.returncode != 0
    assert proc.stdout == ""  # no URI was announced
    assert "v1" in proc.stderr.lower() or "read-only" in proc.stderr.lower(), proc.stderr


def test_bad_image_fails_at_startup(tmp_path: Path, sockdir: Path) -> None:
    tools.need("nbdkit")
    bad = tmp_path / "bad.add-cow"
    bad.write_bytes(b"NOT AN ADD-COW FILE" * 100)
    proc = subprocess.run([*SERVE, str(bad), "--socket", str(sockdir / "s.sock")],
                          capture_output=True, text=True, timeout=tools.TIMEOUT, check=False)
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "magic" in proc.stderr.lower(), proc.stderr


def test_socket_and_port_are_exclusive(tmp_path: Path) -> None:
    disk = images.overlay(tmp_path, size=MiB, backing_size=0)
    proc = subprocess.run([*SERVE, str(disk.path), "--socket", str(tmp_path / "s"),
                           "--port", "10809"], capture_output=True, text=True,
                          timeout=tools.TIMEOUT, check=False)
    assert proc.returncode == 64  # the addcow CLI's usage-error status (sysexits EX_USAGE)
    assert "mutually exclusive" in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of listening TCP sockets on ``port``, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, hexport = fields[1].rsplit(":", 1)
            if int(hexport, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(addr)
    return found


def test_port_listens_on_loopback_only(tmp_path: Path, serve: Callable[..., Server]) -> None:
    tools.need("nbdinfo")
    disk = images.overlay(tmp_path, size=MiB)
    port = _free_port()
    server = serve(disk.path, port=port)
    assert server.uri == f"nbd://localhost:{port}"
    assert nbdinfo(server.uri)["export-size"] == MiB
    addresses = _listening_addresses(port)
    loopback = {"0100007F", "00000000000000000000000001000000"}
    assert addresses, f"nothing listens on port {port}"
    assert addresses <= loopback, addresses
    assert server.stop() == 0


def test_one_writable_server_per_image(tmp_path: Path, sockdir: Path,
                                       serve: Callable[..., Server]) -> None:
    """Two writers would each cache their own bitmap; a second server is refused while a
    writable one runs, and read-only servers can share an image."""
    disk = images.overlay(tmp_path, size=MiB)
    first = serve(disk.path)
    proc = subprocess.run([*SERVE, str(disk.path), "--socket", str(sockdir / "second.sock"),
                           "--readonly"], capture_output=True, text=True,
                          timeout=tools.TIMEOUT, check=False)
    assert proc.returncode == 1
    assert "is in use (locked by another process)" in proc.stderr  # the library's lock
    assert proc.stdout == ""
    assert first.stop() == 0
    readers = [serve(disk.path, readonly=True) for _ in range(2)]
    assert len({r.uri for r in readers}) == 2


def test_stale_socket_is_replaced_and_live_one_refused(
        tmp_path: Path, sockdir: Path, serve: Callable[..., Server]) -> None:
    disk = images.overlay(tmp_path, size=MiB)
    stale = sockdir / "nbd0.sock"  # the name the fixture gives the first server
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stale))  # bound, never listening, then closed: what a killed server leaves
    server = serve(disk.path, readonly=True)
    assert server.socket == stale
    other = images.overlay(tmp_path, size=MiB, name="other")
    proc = subprocess.run([*SERVE, str(other.path), "--socket", str(stale)],
                          capture_output=True, text=True, timeout=tools.TIMEOUT, check=False)
    assert proc.returncode == 1
    assert "another server is listening" in proc.stderr


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def test_killed_server_takes_nbdkit_along(tmp_path: Path, serve: Callable[..., Server]) -> None:
    """SIGKILL gives ``addcow serve`` no chance to stop nbdkit; ``--exit-with-parent`` does, and
    nbdkit still unloads the plugin cleanly. The socket left behind is replaced on restart."""
    tools.need("qemu-io")
    disk = images.overlay(tmp_path, size=MiB)
    server = serve(disk.path)
    tools.qemu_io(server.uri, ["write -P 0x66 70000 100"])
    (nbdkit_pid,) = _children(server.proc.pid)
    server.proc.kill()
    server.proc.wait(tools.TIMEOUT)
    deadline = time.monotonic() + tools.TIMEOUT
    while Path(f"/proc/{nbdkit_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{nbdkit_pid}").exists(), "nbdkit outlived its parent"
    tools.assert_conforming(disk.path)
    assert server.socket is not None
    assert server.socket.exists()  # left behind by nbdkit
    again = serve(disk.path, readonly=True, name=server.socket.stem)
    assert again.socket == server.socket  # the stale socket was replaced
    tools.qemu_io(again.uri, ["read -P 0x66 70000 100"], readonly=True)


def test_library_errors_reach_the_client_and_the_server_survives(
        tmp_path: Path, serve: Callable[..., Server]) -> None:
    """An image file cut short under the running server (another program truncates it: locks
    are advisory) fails only the reads that need the lost data, as EIO; the connection and the
    server stay usable, and the clusters still there read."""
    tools.need("qemu-io")
    disk = images.overlay(tmp_path, size=MiB)
    with addcow_ref.open_image(str(disk.path), mode="r+") as img:
        img.write(0, b"\x77" * 65536)
        img.write(65536, b"\x66" * 65536)
    server = serve(disk.path)
    os.truncate(tmp_path / "disk.raw", 65536)
    proc = tools.qemu_io(server.uri, ["read 65536 512"], ok=(1,))
    assert "Input/output error" in proc.stdout + proc.stderr
    tools.qemu_io(server.uri, ["read -P 0x77 0 65536"])
    assert "[IMG-SIZE]" in server.messages()  # the typed error, with its rule ID
    assert server.stop() == 0
