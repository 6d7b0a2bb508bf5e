"""How the harness calls an implementation: one process per call, argv without a shell.

``--impl 'CMD ARGS'`` is split like a shell word list (``shlex``) and executed directly, so
quoting never depends on the user's shell (toml-test). ``--impl 'python:MODULE:FUNC ARGS'``
imports ``FUNC(argv: list[str]) -> int`` once and forks a child per call instead of exec'ing a
new interpreter: the same isolation (own process, exit status, signals, timeout), but no
interpreter start-up and no import cost per call, which keeps a full run of the reference and
of every mutant within seconds. Stdout is hashed while it streams through a pipe and only its
first 64 MiB are stored (for JSON and diagnostics), so reading a huge guest costs neither memory
nor disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import hashlib
import importlib
import io
import os
import select
import shlex
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from addcow_conformance.protocol import EXIT_INTERNAL

__all__ = ["CallResult", "Impl", "ImplError", "parse_impl"]

_STDERR_KEEP = 4000


class ImplError(ValueError):
    """The ``--impl`` value cannot be turned into something runnable."""


@dataclasses.dataclass(frozen=True)
class CallResult:
    args: tuple[str, ...]
    exit_code: int | None
    signal: int | None
    timed_out: bool
    stdout_path: Path
    stderr: str
    duration_ms: float
    #: Bytes printed on stdout and their SHA-256, computed while streaming: only the first
    #: ``stdout_kept`` bytes are written to ``stdout_path`` (for JSON and diagnostics).
    stdout_size: int = 0
    stdout_sha256: str = hashlib.sha256(b"").hexdigest()
    stdout_kept: int = 0

    @property
    def status_text(self) -> str:
        if self.timed_out:
            return "timed out"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = str(self.signal)
            return f"killed by signal {name}"
        return f"exit {self.exit_code}"

    def stdout_bytes(self, limit: int = 64 << 20) -> bytes:
        with self.stdout_path.open("rb") as f:
            return f.read(limit)


class Impl:
    """An implementation under test; subclasses say how a call becomes a process."""

    text: str

    def command_line(self, args: Sequence[str]) -> str:
        """A copy-pasteable shell command doing the same call (for reproduction lines)."""
        raise NotImplementedError

    def call(
        self, args: Sequence[str], *, cwd: Path, stdout_path: Path, timeout: float
    ) -> CallResult:
        raise NotImplementedError


def _read_stderr(path: Path) -> str:
    with path.open("rb") as f:
        data = f.read(_STDERR_KEEP + 1)
    text = data[:_STDERR_KEEP].decode("utf-8", "replace")
    return text + ("…" if len(data) > _STDERR_KEEP else "")


#: Stdout beyond this is hashed and counted but not stored: a read of a huge guest costs
#: neither memory nor disk.
KEEP_STDOUT = 64 << 20


@dataclasses.dataclass(frozen=True)
class _Drained:
    size: int
    sha256: str
    kept: int
    timed_out: bool


def _drain(fd: int, path: Path, deadline: float) -> _Drained:
    """Read ``fd`` to EOF (or the deadline), hashing everything, storing the first bytes."""
    keep = KEEP_STDOUT
    h = hashlib.sha256()
    size = kept = 0
    with path.open("wb") as f:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _Drained(size, h.hexdigest(), kept, True)
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return _Drained(size, h.hexdigest(), kept, True)
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return _Drained(size, h.hexdigest(), kept, False)
            h.update(chunk)
            if kept < keep:
                part = chunk[: keep - kept]
                f.write(part)
                kept += len(part)
            size += len(chunk)


#: What a call that never started printed.
_NOTHING = _Drained(0, hashlib.sha256(b"").hexdigest(), 0, False)


def _result(args: Sequence[str], stdout_path: Path, err_path: Path, *, exit_code: int | None,
            sig: int | None, timed_out: bool, duration_ms: float,
            drained: _Drained = _NOTHING) -> CallResult:
    """The record of one finished call (a timed-out call has neither exit status nor signal)."""
    return CallResult(
        args=tuple(args),
        exit_code=None if timed_out else exit_code,
        signal=None if timed_out else sig,
        timed_out=timed_out,
        stdout_path=stdout_path,
        stderr=_read_stderr(err_path),
        duration_ms=duration_ms,
        stdout_size=drained.size,
        stdout_sha256=drained.sha256,
        stdout_kept=drained.kept,
    )


class ProcessImpl(Impl):
    def __init__(self, text: str, argv: list[str]) -> None:
        self.text = text
        self.argv = argv

    def command_line(self, args: Sequence[str]) -> str:
        return shlex.join([*self.argv, *args])

    def call(
        self, args: Sequence[str], *, cwd: Path, stdout_path: Path, timeout: float
    ) -> CallResult:
        err_path = stdout_path.with_name(stdout_path.name + ".stderr")
        start = time.monotonic()
        deadline = start + timeout
        with err_path.open("wb") as err:
            try:
                proc = subprocess.Popen(
                    [*self.argv, *args],
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    start_new_session=True,
                )
            except OSError as e:
                # The command itself cannot be started: the same as a crash on every call.
                err.write(f"cannot run {self.argv[0]!r}: {e.strerror}\n".encode())
                err.flush()
                stdout_path.write_bytes(b"")
                return _result(args, stdout_path, err_path, exit_code=127, sig=None,
                               timed_out=False, duration_ms=0.0)
            assert proc.stdout is not None
            with proc.stdout:
                drained = _drain(proc.stdout.fileno(), stdout_path, deadline)
            timed_out = drained.timed_out
            if not timed_out:
                try:
                    rc = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    timed_out = True
            if timed_out:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
        duration = (time.monotonic() - start) * 1000
        return _result(args, stdout_path, err_path, exit_code=rc if rc >= 0 else None,
                       sig=-rc if rc < 0 else None, timed_out=timed_out, duration_ms=duration,
                       drained=drained)


def _exit_status(code: object) -> int:
    """``SystemExit.code`` to a process exit status, the way the interpreter does it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


class ForkImpl(Impl):
    """``python:MODULE:FUNC``: FUNC runs in a forked child with fds 0/1/2 redirected."""

    def __init__(self, text: str, target: str, func: Callable[[list[str]], int], prefix: list[str]):
        self.text = text
        self.target = target
        self.func = func
        self.prefix = prefix

    def command_line(self, args: Sequence[str]) -> str:
        module, _, func = self.target.partition(":")
        code = f"import sys, {module} as m; sys.exit(m.{func}(sys.argv[1:]))"
        return shlex.join([sys.executable, "-c", code, *self.prefix, *args])

    def _child(self, args: list[str], cwd: Path, out_fd: int, err_fd: int) -> None:
        code = EXIT_INTERNAL
        try:
            os.setsid()
            os.chdir(cwd)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
            sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)))
            sys.stderr = io.TextIOWrapper(
                io.BufferedWriter(io.FileIO(2, "w", closefd=False)), line_buffering=True
            )
            if faulthandler.is_enabled():
                # Inherited from the harness (pytest enables it): report into the call's stderr.
                faulthandler.enable(file=sys.stderr)
            sys.argv = [self.target, *args]
            try:
                code = _exit_status(self.func(args))
            except SystemExit as e:
                code = _exit_status(e.code)
            except BaseException:
                traceback.print_exc()
                code = 1
        finally:
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def call(
        self, args: Sequence[str], *, cwd: Path, stdout_path: Path, timeout: float
    ) -> CallResult:
        full = [*self.prefix, *args]
        err_path = stdout_path.with_name(stdout_path.name + ".stderr")
        err_fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        read_fd, out_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        start = time.monotonic()
        deadline = start + timeout
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns about forking a threaded process; the child only runs the
                # adapter function and exits, and calls are never made from two threads at once.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, which never returns
                os.close(read_fd)
                self._child(full, cwd, out_fd, err_fd)
        finally:
            os.close(out_fd)
            os.close(err_fd)
        try:
            drained = _drain(read_fd, stdout_path, deadline)
        finally:
            os.close(read_fd)
        timed_out = drained.timed_out
        delay = 0.0005
        while True:
            wpid, status = os.waitpid(pid, os.WNOHANG)
            if wpid and not timed_out:
                break
            if timed_out or time.monotonic() >= deadline:
                timed_out = True
                # The child may not have reached setsid() yet: kill it and its group.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                if not wpid:
                    _, status = os.waitpid(pid, 0)
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        duration = (time.monotonic() - start) * 1000
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        return _result(args, stdout_path, err_path, exit_code=code, sig=sig,
                       timed_out=timed_out, duration_ms=duration, drained=drained)


def parse_impl(text: str) -> Impl:
    """Turn an ``--impl`` value into an :class:`Impl`."""
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ImplError(f"--impl {text!r}: {e}") from None
    if not words:
        raise ImplError("--impl is empty")
    head = words[0]
    if head.startswith("python:"):
        target = head.removeprefix("python:")
        module_name, sep, func_name = target.partition(":")
        if not sep or not module_name or not func_name:
            raise ImplError(f"--impl {text!r}: expected python:MODULE:FUNCTION")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ImplError(f"--impl {text!r}: cannot import {module_name}: {e}") from None
        func = getattr(module, func_name, None)
        if not callable(func):
            raise ImplError(f"--impl {text!r}: {module_name} has no function {func_name}")
        return ForkImpl(text, target, func, words[1:])
    return ProcessImpl(text, words)
