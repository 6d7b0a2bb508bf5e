"""How ``addcow`` reports errors: one line on stderr that names the file, never a traceback.

Every subcommand module and the demo raise :class:`UserError` for a refused request and wrap
their work in :func:`about` so a library error says which file it is about; the group
(:mod:`addcow_ref.cli.main`) prints what reaches it with :func:`show_usage_error` and
:func:`handle_error`. This module imports no command, so any of them (and the demo) can use it.

Every line printed here goes through :func:`addcow_ref.format.text.printable`: a message quotes
file names taken from image headers, and a control byte in one must not reach the terminal.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import click

from addcow_ref.clirun import EX_FAILURE
from addcow_ref.format.errors import AddCowError
from addcow_ref.format.text import printable

if TYPE_CHECKING:
    from addcow_ref.engine.image import AddCowImage

__all__ = [
    "PROG",
    "UserError",
    "about",
    "fail",
    "handle_error",
    "open_named",
    "show_usage_error",
]

PROG = "addcow"


class UserError(click.ClickException):
    """A refused request, reported as one line and exit status 1 (not a usage error)."""

    exit_code = EX_FAILURE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(printable(f"{PROG}: {self.format_message()}"), err=True)


def fail(file: str, message: str, *, offset: int | None = None) -> UserError:
    """The error for a request about ``file`` (at byte ``offset``) that cannot be done."""
    where = file if offset is None else f"{file}: byte 0x{offset:x}"
    return UserError(f"{where}: {message}")


def _os_error_line(e: OSError) -> str:
    text = e.strerror or str(e)
    if e.filename is not None:
        text = f"{os.fsdecode(e.filename)}: {text}"
    if e.filename2 is not None:
        text += f" (-> {os.fsdecode(e.filename2)})"
    return text


def show_usage_error(e: click.UsageError) -> None:
    """A usage error on one line, with the command it is about and where its help is."""
    path = e.ctx.command_path if e.ctx is not None else PROG
    click.echo(printable(f"{path}: {e.format_message()} (see '{path} --help')"), err=True)


def handle_error(e: Exception) -> int | None:
    """Print a library or OS error as the one line a user sees; None for anything else (a bug,
    which keeps its traceback)."""
    if isinstance(e, AddCowError):
        click.echo(printable(f"{PROG}: {e}"), err=True)
        return EX_FAILURE
    if isinstance(e, OSError):
        click.echo(printable(f"{PROG}: {_os_error_line(e)}"), err=True)
        return EX_FAILURE
    return None


@contextlib.contextmanager
def about(path: str) -> Iterator[None]:
    """Name ``path`` in errors raised without a file, so every message says which file."""
    try:
        yield
    except AddCowError as e:
        if e.file is None or e.file.startswith("<"):  # None or a placeholder like "<image>"
            e.file = path
        raise
    except OSError as e:
        if e.filename is None and e.errno != errno.EPIPE:
            e.filename = path
        raise


def open_named(path: str, mode: str = "r", *, force_share: bool = False,
               confine: str | None = None) -> AddCowImage:
    """:func:`addcow_ref.open_image`, with ``path`` named in the errors it raises."""
    from addcow_ref import open_image

    with about(path):
        return open_image(path, mode, force_share=force_share, confine=confine)
