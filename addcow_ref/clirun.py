"""One way to run a click command as a console script, shared by every tool of the project.

``addcow``, ``addcow-check``, ``addcow-conformance`` and ``addcow-vectors`` promise the same
things about their exit status, so the code that keeps those promises lives here once:

* a usage error (bad option, missing argument, unknown command) exits with 64, sysexits'
  ``EX_USAGE``: click's own 2 would collide with the checker's "errors found" and read as
  "failures" to the harness's callers;
* Ctrl-C exits with 130 (128 + SIGINT, what shells report) after one line on stderr;
* every other outcome keeps the tool's own status: a ``click.ClickException`` its
  ``exit_code``, ``ctx.exit(n)`` and ``sys.exit(n)`` their ``n``, and the tool's own errors
  whatever its ``handle_error`` maps them to;
* ``-h`` is accepted wherever ``--help`` is;
* a bare command that needs arguments (a group without its subcommand) prints its help on
  stderr and exits 64.

The last promise is click 8.2's (``NoArgsIsHelpError``); click 8.1, the oldest the project
supports (Debian 12's), prints that help on stdout and exits 0, so :func:`check_no_args` makes
the same answer on every version before click gets to decide.

:func:`run_click` returns the status instead of exiting, so tests and other tools (the demo of
``addcow``) can call a tool's ``main(argv)`` in-process. This module imports only click and the
standard library, so every layer of the project may use it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

import click

__all__ = [
    "EX_FAILURE",
    "EX_INTERRUPTED",
    "EX_OK",
    "EX_USAGE",
    "HELP_OPTION_NAMES",
    "NoArgsIsHelp",
    "check_no_args",
    "check_output_path",
    "exit_status",
    "run_click",
]

EX_OK = 0
EX_FAILURE = 1
#: sysexits.h EX_USAGE: the command was used incorrectly.
EX_USAGE = 64
#: 128 + SIGINT, what shells report for a command stopped by Ctrl-C.
EX_INTERRUPTED = 130

#: The help options of every tool; a command that uses ``-h`` for something else keeps it
#: (click drops help names another parameter already declares).
HELP_OPTION_NAMES = ["-h", "--help"]

#: Prints a usage error (the default is click's own ``Usage: ... Error: ...`` block).
UsageErrorPrinter = Callable[[click.UsageError], None]
#: Maps one of the tool's own exceptions to an exit status after printing it, or returns None
#: for an exception it does not know (which then propagates as a bug).
ErrorHandler = Callable[[Exception], int | None]


class NoArgsIsHelp(click.UsageError):
    """A command that needs arguments got none: its help is the most useful answer.

    The same text, stream and status as click 8.2's ``NoArgsIsHelpError`` (a subclass of
    ``UsageError`` too), for every click version; raised by :func:`check_no_args`.
    """

    def __init__(self, ctx: click.Context) -> None:
        super().__init__(ctx.get_help(), ctx=ctx)

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), file=file, err=True,
                   color=None if self.ctx is None else self.ctx.color)


#: The errors that mean "show the help": ours, and click's own from 8.2 on (which a
#: subcommand's ``no_args_is_help`` still raises: :func:`check_no_args` does not look into them).
_NO_ARGS_ERRORS: tuple[type[click.UsageError], ...] = (NoArgsIsHelp, *(
    [click.exceptions.NoArgsIsHelpError] if hasattr(click.exceptions, "NoArgsIsHelpError")
    else []))


def check_no_args(command: click.Command, args: Sequence[str] | None, *, prog_name: str | None,
                  complete_var: str | None = None, **extra: Any) -> None:
    """Raise :class:`NoArgsIsHelp` when ``command`` would show its help for lacking arguments.

    ``args``, ``prog_name`` and ``extra`` are those of ``command.main``. The help is rendered by
    a context made as ``main`` makes it (the command's ``context_settings`` under ``extra``),
    without parsing anything, as click 8.2 does; no parameter callback runs.
    """
    if (sys.argv[1:] if args is None else args) or not command.no_args_is_help:
        return
    complete_var = complete_var or (
        f"_{(prog_name or '').replace('-', '_').replace('.', '_')}_COMPLETE".upper())
    if os.environ.get(complete_var):  # shell completion calls the bare program: let click answer
        return
    settings = {**command.context_settings, **extra}
    raise NoArgsIsHelp(command.context_class(command, info_name=prog_name, **settings))


def _status_of_system_exit(e: SystemExit) -> int:
    """The status Python itself would exit with for ``e`` (``None`` is 0, a message is 1)."""
    if e.code is None:
        return EX_OK
    if isinstance(e.code, int):
        return e.code
    click.echo(str(e.code), err=True)
    return EX_FAILURE


def exit_status(
    invoke: Callable[[], Any],
    *,
    prog_name: str,
    show_usage_error: UsageErrorPrinter | None = None,
    handle_error: ErrorHandler | None = None,
) -> int:
    """Call ``invoke`` (a click ``main`` in non-standalone mode) and return the exit status.

    This is the mapping the module docstring describes. ``invoke``'s return value is the
    status when it is an int (``ctx.exit(n)`` returns ``n`` in non-standalone mode), else 0.
    """
    try:
        rv = invoke()
    except _NO_ARGS_ERRORS as e:
        e.show()  # the help, not a usage error message: a tool's printer would mangle it
        return EX_USAGE
    except click.UsageError as e:
        if show_usage_error is None:
            e.show()
        else:
            show_usage_error(e)
        return EX_USAGE
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo(f"{prog_name}: interrupted", err=True)
        return EX_INTERRUPTED
    except SystemExit as e:
        return _status_of_system_exit(e)
    except Exception as e:
        code = None if handle_error is None else handle_error(e)
        if code is None:
            raise
        return code
    return rv if isinstance(rv, int) else EX_OK


def run_click(
    command: click.Command,
    argv: Sequence[str] | None = None,
    *,
    prog_name: str,
    show_usage_error: UsageErrorPrinter | None = None,
    handle_error: ErrorHandler | None = None,
) -> int:
    """Run ``command`` with ``argv`` (default ``sys.argv[1:]``) and return its exit status.

    The console-script ``main`` of every tool is this call; see :func:`exit_status` for the
    mapping and the module docstring for why.
    """
    args = list(sys.argv[1:] if argv is None else argv)

    def invoke() -> Any:
        check_no_args(command, args, prog_name=prog_name, help_option_names=HELP_OPTION_NAMES)
        return command.main(args=args, prog_name=prog_name, standalone_mode=False,
                            help_option_names=HELP_OPTION_NAMES)

    return exit_status(
        invoke,
        prog_name=prog_name,
        show_usage_error=show_usage_error,
        handle_error=handle_error,
    )


def check_output_path(option: str, path: str | os.PathLike[str] | None) -> None:
    """Refuse, as a usage error before any work is done, an output file whose directory does
    not exist or is not a directory: a long run must not end in a traceback because the report
    it produced has nowhere to go (``--report-json out/r.json`` with no ``out/``)."""
    if path is None:
        return
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(parent):
        raise OutputPathError(f"{option} {os.fspath(path)}: directory {parent} does not exist")


class OutputPathError(click.UsageError):
    """A usage error shown as one line (``PROG: message``): the option's value names the file,
    so the usage synopsis click prints above other usage errors adds nothing."""

    def show(self, file: Any = None) -> None:
        prog = self.ctx.find_root().info_name if self.ctx is not None else None
        click.echo(f"{prog or 'error'}: {self.format_message()}", err=True)
