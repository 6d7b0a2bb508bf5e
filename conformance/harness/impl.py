"""How the harness calls an implementation: one process per call, argv without a shell.

``--impl 'CMD ARGS'`` is split like a shell word list (``shlex``) and executed directly, so
quoting never depends on the user's shell (toml-test). ``--impl 'python:MODULE:FUNC ARGS'``
imports ``FUNC(argv: list[str]) -> int`` once and forks a child per call instead of exec'ing a
new interpreter: the same isolation (own process, exit status, signals, timeout), but no
interpreter start-up and no import cost per call, which keeps a full run of the reference and
of every mutant within seconds. Output goes to a file, never to memory, so huge reads are hashed
in chunks afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import importlib
import io
import os
import shlex
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

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
        timed_out = False
        with stdout_path.open("wb") as out, err_path.open("wb") as err:
            try:
                proc = subprocess.Popen(
                    [*self.argv, *args],
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            except OSError as e:
                # The command itself cannot be started: the same as a crash on every call.
                err.write(f"cannot run {self.argv[0]!r}: {e.strerror}\n".encode())
                err.flush()
                return CallResult(
                    tuple(args), 127, None, False, stdout_path, _read_stderr(err_path), 0.0
                )
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
        duration = (time.monotonic() - start) * 1000
        return CallResult(
            args=tuple(args),
            exit_code=rc if rc >= 0 and not timed_out else None,
            signal=-rc if rc < 0 and not timed_out else None,
            timed_out=timed_out,
            stdout_path=stdout_path,
            stderr=_read_stderr(err_path),
            duration_ms=duration,
        )


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
        code = 70
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
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        out_fd = os.open(stdout_path, flags, 0o644)
        err_fd = os.open(err_path, flags, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        start = time.monotonic()
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns about forking a threaded process; the child only runs the
                # adapter function and exits, and calls are never made from two threads at once.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, which never returns
                self._child(full, cwd, out_fd, err_fd)
        finally:
            os.close(out_fd)
            os.close(err_fd)
        deadline = start + timeout
        delay = 0.0005
        timed_out = False
        while True:
            wpid, status = os.waitpid(pid, os.WNOHANG)
            if wpid:
                break
            if time.monotonic() >= deadline:
                timed_out = True
                # The child may not have reached setsid() yet: kill it and its group.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        duration = (time.monotonic() - start) * 1000
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        return CallResult(
            args=tuple(args),
            exit_code=None if timed_out else code,
            signal=None if timed_out else sig,
            timed_out=timed_out,
            stdout_path=stdout_path,
            stderr=_read_stderr(err_path),
            duration_ms=duration,
        )


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
