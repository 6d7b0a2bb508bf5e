"""Fixtures that run ``addcow serve`` on a unix socket in ``tmp_path`` and stop it again.

Every test here needs nbdkit with its python plugin; tests that also need a client call
``tools.need(...)``. Missing tools skip with the reason (fail under ADDCOW_REQUIRE_TOOLS=1).
"""

from __future__ import annotations

import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from . import tools


def _addcow() -> str:
    """The ``addcow`` console script of the interpreter running the tests (a venv's or tox's
    bin directory), else the one on PATH."""
    beside = Path(sys.executable).parent / "addcow"
    if beside.exists():
        return str(beside)
    found = shutil.which("addcow")
    if found is None:
        pytest.fail("the addcow console script is not installed", pytrace=False)
    return found


#: The command under test, exactly as a user types it.
SERVE = [_addcow(), "serve"]

#: Bound on how long a server may take to print its URI (nbdkit + plugin import + image open).
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class Server:
    """One running ``addcow serve`` process."""

    def __init__(self, proc: subprocess.Popen[str], uri: str, socket: Path | None,
                 log: Path) -> None:
        self.proc = proc
        self.uri = uri
        self.socket = socket
        self.log = log

    def stop(self, sig: int = signal.SIGINT, timeout: float = STOP_TIMEOUT) -> int:
        """Signal the server and wait for it to exit; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"addcow serve ignored signal {sig} for {timeout} s; log:\n"
                            f"{self.log.read_text()[-2000:]}")
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def messages(self) -> str:
        return self.log.read_text()


def start_server(image: Path, workdir: Path, *, readonly: bool = False,
                 extra: tuple[str, ...] = (), name: str = "nbd",
                 port: int | None = None) -> Server:
    """Start ``addcow serve IMAGE --socket ...`` (or ``--port``) and wait, bounded, for the URI
    it prints once nbdkit accepts connections."""
    sock = None if port is not None else workdir / f"{name}.sock"
    log = workdir / f"{name}.log"
    where = ["--port", str(port)] if port is not None else ["--socket", str(sock)]
    argv = [*SERVE, str(image), *where, *extra]
    if readonly:
        argv.append("--readonly")
    with log.open("w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    line = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline().strip()
            break
        if proc.poll() is not None:
            break
    if not line:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        pytest.fail(f"addcow serve did not print a URI within {READY_TIMEOUT} s "
                    f"(status {proc.returncode}); log:\n{log.read_text()[-3000:]}",
                    pytrace=False)
    return Server(proc, line, sock, log)


#: A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, with its NUL).
_SUN_PATH_ROOM = 100


@pytest.fixture
def sockdir(tmp_path: Path) -> Iterator[Path]:
    """Where the test's unix sockets (and server logs) go: ``tmp_path``, unless a long
    ``TMPDIR`` or test name would make socket paths too long, then a short directory."""
    if len(str(tmp_path / "nbd00.sock")) <= _SUN_PATH_ROOM:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="acnbd-", dir="/tmp"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
def serve(sockdir: Path) -> Iterator[Callable[..., Server]]:
    """A factory: ``serve(image, readonly=False, port=None, name=None)`` -> a running Server
    (on ``sockdir/<name>.sock``), stopped at teardown (SIGINT, as Ctrl-C would)."""
    tools.need("nbdkit")
    servers: list[Server] = []

    def start(image: Path, *, readonly: bool = False, extra: tuple[str, ...] = (),
              port: int | None = None, name: str | None = None) -> Server:
        server = start_server(image, sockdir, readonly=readonly, extra=extra,
                              name=name or f"nbd{len(servers)}", port=port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
