"""``addcow serve``: export an add-cow image over NBD through nbdkit and its Python plugin.

No QEMU release can open add-cow, but every QEMU (and libnbd, and the Linux kernel's nbd driver)
can read and write an NBD export. Rather than writing our own NBD server we run nbdkit, a
well-kept one, with ``nbdplugin.py`` (the reference implementation behind nbdkit's callbacks).

The plugin runs inside the Python interpreter nbdkit was built against (Debian: the system
``/usr/bin/python3``), which need not be the interpreter this package is installed in (a venv,
pyenv, pipx...). So the nbdkit process gets a ``PYTHONPATH`` naming the directory that holds
``addcow_ref`` and the site directories of its runtime dependencies, computed from *this*
interpreter (``plugin_pythonpath``). For a Debian-packaged install (``addcow_ref`` and
``python3-construct`` under ``/usr/lib/python3/dist-packages``) those directories are already on
the system interpreter's path and the extra entries change nothing. Both interpreters must share
the same minor version only if a dependency ships compiled code; ours are pure Python.

Before nbdkit starts, the image is opened once here, with the library and in the mode the
server will use, and closed again: a missing, unwritable or malformed image, a backing chain
that loops or names a FIFO, or a v1 image without ``--readonly`` is then refused with the
library's one-line message and exit status 1, rather than after nbdkit has loaded the plugin.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import click

from addcow_ref.cli.errors import UserError, about, handle_error, show_usage_error
from addcow_ref.cli.params import CONFINE
from addcow_ref.clirun import run_click
from addcow_ref.format.text import printable

__all__ = [
    "NBDKIT_PACKAGES",
    "ServeError",
    "ServerCommand",
    "check_image",
    "main",
    "plugin_environment",
    "plugin_path",
    "plugin_pythonpath",
    "serve",
    "server_command",
]

#: What to install on Debian when nbdkit or its Python plugin is missing.
NBDKIT_PACKAGES = "nbdkit nbdkit-plugin-python"

#: How long nbdkit may take to load the plugin, open the image and start listening.
READY_TIMEOUT = 30.0

#: How long nbdkit may take to finish in-flight requests and flush the image after a signal.
STOP_TIMEOUT = 30.0

#: Distributions whose import location must be visible to the plugin, besides the ones this
#: package declares as requirements (found through its metadata when it is installed).
_ALWAYS_NEEDED = ("construct",)


class ServeError(UserError):
    """nbdkit could not be started or did not become ready (one line, exit status 1)."""


def check_image(image: Path, readonly: bool, confine: str | None = None) -> None:
    """Open ``image`` as the server will, and close it: raises the library's error for an
    image the server could not serve (see the module docstring)."""
    from addcow_ref import open_image
    from addcow_ref.format.errors import ReadOnlyError

    with about(str(image)):
        try:
            img = open_image(str(image), "r" if readonly else "r+", confine=confine)
        except ReadOnlyError as e:
            if e.rule_id != "V1-NO-WRITE-OPEN":
                raise
            # The library says what is wrong; only the server knows the way out (--readonly).
            raise ServeError(f"{printable(str(image))}: version 1 images are read-only: serve "
                             "with --readonly, or upgrade the image to version 2 first "
                             "(addcow upgrade) [V1-NO-WRITE-OPEN]") from None
        img.close()


def plugin_path() -> Path:
    """The plugin file nbdkit loads: the module installed next to this one, never a copy, so
    the served code is exactly the installed reference implementation."""
    return Path(__file__).resolve().with_name("nbdplugin.py")


def _dist_dir(name: str) -> Path | None:
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    return Path(str(dist.locate_file(""))).resolve()


def _requirement_names() -> list[str]:
    try:
        requires = importlib.metadata.requires("addcow") or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    names = []
    for req in requires:
        if "extra ==" in req:
            continue
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req)
        if match:
            names.append(match.group(0))
    return names


def plugin_pythonpath() -> list[str]:
    """Directories another interpreter needs on ``sys.path`` to import the plugin's code.

    The first entry is the directory holding the ``addcow_ref`` package as *this* interpreter
    imported it (for an editable install, the source tree); then the site directory of each
    runtime dependency (``construct``, and whatever ``pyproject.toml`` declares). Directories
    are given once each, in that order.
    """
    import construct

    import addcow_ref

    dirs: list[Path] = [Path(addcow_ref.__file__).resolve().parent.parent,
                        Path(construct.__file__).resolve().parent.parent]
    for name in (*_ALWAYS_NEEDED, *_requirement_names()):
        found = _dist_dir(name)
        if found is not None:
            dirs.append(found)
    unique: list[str] = []
    for d in dirs:
        if str(d) not in unique:
            unique.append(str(d))
    return unique


def plugin_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the nbdkit process: ``base`` (default: ours) with
    ``plugin_pythonpath()`` put in front of any ``PYTHONPATH`` it already had.

    Bytecode writing is turned off: the system interpreter must not drop ``.pyc`` files into the
    install tree of another interpreter (or fail to, as another user).
    """
    env = dict(os.environ if base is None else base)
    parts = plugin_pythonpath()
    if env.get("PYTHONPATH"):
        parts += [p for p in env["PYTHONPATH"].split(os.pathsep) if p and p not in parts]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass(frozen=True)
class ServerCommand:
    """An nbdkit command line and what a client should connect to once it is ready."""

    argv: list[str]
    uri: str
    pidfile: Path


def server_command(
    image: Path,
    *,
    pidfile: Path,
    socket_path: Path | None = None,
    port: int | None = None,
    readonly: bool = False,
    nbdkit: str = "nbdkit",
    threads: int | None = None,
    verbose: bool = False,
    confine: str | None = None,
) -> ServerCommand:
    """Build the nbdkit command that serves ``image`` on a unix socket or a loopback TCP port.

    A TCP server listens on ``localhost`` only (127.0.0.1 and ::1, whatever the name resolves
    to): NBD has no authentication without TLS, so an add-cow disk must not be offered to the
    network by accident. ``--exit-with-parent`` makes nbdkit follow us if we are killed.
    """
    if (socket_path is None) == (port is None):
        raise ValueError("exactly one of socket_path and port is needed")
    argv = [nbdkit, "--foreground", "--exit-with-parent", "--pidfile", str(pidfile)]
    if socket_path is not None:
        argv += ["--unix", str(socket_path)]
        uri = f"nbd+unix:///?socket={socket_path}"
    else:
        argv += ["--ipaddr", "localhost", "--port", str(port)]
        uri = f"nbd://localhost:{port}"
    if readonly:
        argv.append("--readonly")
    if threads is not None:
        argv += ["--threads", str(threads)]
    if verbose:
        argv.append("--verbose")
    argv += ["python", str(plugin_path()), f"image={Path(image).resolve()}",
             f"readonly={'true' if readonly else 'false'}"]
    if confine is not None:
        argv.append(f"confine={Path(confine).resolve()}")
    return ServerCommand(argv=argv, uri=uri, pidfile=pidfile)


def _wait_ready(proc: subprocess.Popen[bytes], pidfile: Path, timeout: float) -> None:
    """Wait until nbdkit writes its pidfile, which it does only once it accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServeError(
                f"nbdkit exited with status {proc.returncode} before serving the image "
                "(its messages are above)")
        with contextlib.suppress(OSError):
            if pidfile.read_text().strip():
                return
        time.sleep(0.02)
    raise ServeError(f"nbdkit was not ready after {timeout:.0f} s")


@contextlib.contextmanager
def _forwarded_signals(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """Pass SIGINT/SIGTERM/SIGHUP on to nbdkit instead of dying: nbdkit then finishes the
    requests in flight and unloads the plugin, which flushes and closes the image. Dying first
    would leave nbdkit to ``--exit-with-parent``, which is also clean but unordered."""

    def forward(signum: int, frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, forward) for s in sigs}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_server(
    image: Path,
    *,
    socket_path: Path | None = None,
    port: int | None = None,
    readonly: bool = False,
    threads: int | None = None,
    verbose: bool = False,
    confine: str | None = None,
) -> int:
    """Serve ``image`` until nbdkit exits (normally after a signal); returns its exit status."""
    nbdkit = shutil.which("nbdkit")
    if nbdkit is None:
        raise ServeError(f"nbdkit is not installed (Debian: apt-get install {NBDKIT_PACKAGES})")
    check_image(image, readonly, confine)
    with tempfile.TemporaryDirectory(prefix="addcow-serve-") as private:
        if socket_path is None and port is None:
            socket_path = Path(private) / "nbd.sock"
        elif socket_path is not None:
            socket_path = socket_path.resolve()
            _clear_stale_socket(socket_path)
        cmd = server_command(image, pidfile=Path(private) / "nbdkit.pid",
                             socket_path=socket_path, port=port, readonly=readonly,
                             nbdkit=nbdkit, threads=threads, verbose=verbose, confine=confine)
        with _image_lock(image, readonly):
            return _supervise(cmd, socket_path)
    raise AssertionError("unreachable")  # pragma: no cover


def _supervise(cmd: ServerCommand, socket_path: Path | None) -> int:
    """Run nbdkit, announce the URI once it is ready, and wait for it to exit."""
    proc = subprocess.Popen(cmd.argv, env=plugin_environment(), stdin=subprocess.DEVNULL)
    with _forwarded_signals(proc):
        try:
            _wait_ready(proc, cmd.pidfile, READY_TIMEOUT)
            click.echo(cmd.uri)  # stdout holds the URI alone, for scripts
            sys.stdout.flush()
            if sys.stderr.isatty():
                click.echo("addcow serve: ready; Ctrl-C stops the server and closes the image",
                           err=True)
            return proc.wait()
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            _remove_socket(socket_path)


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket left by a server that is gone (nbdkit does not remove its socket and
    refuses to start while the path exists); refuse if a server still answers on it."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ServeError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()
            return
        except OSError:
            return  # let nbdkit report whatever is wrong with the path
    raise ServeError(f"another server is listening on {path}")


def _remove_socket(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(path.lstat().st_mode):
                path.unlink()


@contextlib.contextmanager
def _image_lock(image: Path, readonly: bool) -> Iterator[None]:
    """Hold a ``flock`` on the add-cow file while serving: exclusive for a writable server,
    shared for a read-only one. Two servers writing one image would each cache their own
    bitmap and lose each other's bits; this makes a second ``addcow serve`` refuse instead.
    (Advisory only: the library itself takes no lock, like ``qemu-img`` with ``-U``.)"""
    with about(str(image)):
        fd = os.open(image, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if readonly else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServeError(f"{printable(str(image))} is already served by another addcow "
                             "serve (a writable server excludes every other)") from None
        yield
    finally:
        os.close(fd)


def _free_loopback(port: int) -> None:
    """Fail early, with our own message, when the port is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise ServeError(f"port {port} on localhost is not free: {e.strerror}") from None


@click.command("serve")
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--socket", "socket_path", metavar="PATH",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Listen on this unix socket (default: one in a private temporary directory).")
@click.option("--port", type=click.IntRange(1, 65535), metavar="N",
              help="Listen on this TCP port of localhost (127.0.0.1 and ::1) instead.")
@click.option("--readonly", is_flag=True,
              help="Open the image read-only and refuse writes (needed for v1 images).")
@click.option("--threads", type=click.IntRange(1, 1024), default=None, metavar="N",
              help="nbdkit worker threads per connection (nbdkit's default: 16).")
@click.option("--verbose", is_flag=True, help="Let nbdkit log every request to stderr.")
@CONFINE
def serve(image: Path, socket_path: Path | None, port: int | None, readonly: bool,
          threads: int | None, verbose: bool, confine: str | None) -> None:
    """Serve IMAGE over NBD with nbdkit until interrupted.

    Prints the URI for clients (qemu-img, qemu-io, nbdinfo, nbdcopy, or QEMU's -drive
    file=URI,format=raw) once the server accepts connections. Ctrl-C or SIGTERM stops it
    cleanly: requests in flight complete, the image is flushed and closed, the socket removed.
    One writable server per image at a time. Needs nbdkit and its python plugin (Debian:
    nbdkit nbdkit-plugin-python).

    \b
    Examples:
      addcow serve disk.add-cow --socket /tmp/disk.sock
      qemu-img map -f raw nbd+unix:///?socket=/tmp/disk.sock
      qemu-system-x86_64 -drive file=nbd+unix:///?socket=/tmp/disk.sock,format=raw
      addcow serve --readonly --port 10809 old-v1.add-cow   # nbd://localhost:10809
    """
    if socket_path is not None and port is not None:
        raise click.UsageError("--socket and --port are mutually exclusive")
    if port is not None:
        _free_loopback(port)
    status = run_server(image, socket_path=socket_path, port=port, readonly=readonly,
                        threads=threads, verbose=verbose, confine=confine)
    if status not in (0, -signal.SIGINT, -signal.SIGTERM):
        raise SystemExit(status if status > 0 else 128 - status)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m addcow_ref.cli.serve``: the same command, usable before the CLI registers it,
    with the exit statuses and one-line errors of ``addcow`` itself."""
    return run_click(serve, argv, prog_name="addcow serve", show_usage_error=show_usage_error,
                     handle_error=handle_error)


if __name__ == "__main__":
    sys.exit(main())
