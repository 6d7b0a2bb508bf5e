"""The ``addcow`` command-line tool: qemu-img's verbs and conventions over the reference library.

Users of add-cow already know ``qemu-img``; the subcommands, their options (``-b``/``-F``/``-o``
of ``create``, ``--output=json`` of ``info`` and ``map``, size suffixes) and the JSON shape of
``map`` follow it, so scripts written for one read the other.

Exit status: 0 success, 1 an error (a broken image, a missing file, a refused request; one line
on stderr naming the file, the byte offset or field and the spec rule ID when one applies),
64 a usage error, 130 interrupted: the statuses every tool of the project shares
(:mod:`addcow_ref.clirun`). User errors never print a traceback (:mod:`addcow_ref.cli.errors`).

``cli`` is the click group (sphinx-click renders the reference from it); ``main(argv)`` is the
console script and returns the exit status instead of exiting, so tests can call it. The
subcommands live in modules of their own (``create_cmd``, ``inspect_cmds``, ``io_cmds``,
``image_cmds``, ``convert_cmd``, ``chain_cmds``, ``compare_cmds``, ``forge``, ``demo``, ``serve``)
that do not import this one; it only names them, and loads one when it is used.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from addcow_ref import __version__
from addcow_ref.cli.errors import PROG, UserError, handle_error, show_usage_error
from addcow_ref.clirun import (
    EX_FAILURE,
    EX_INTERRUPTED,
    EX_OK,
    EX_USAGE,
    HELP_OPTION_NAMES,
    check_no_args,
    exit_status,
    run_click,
)

__all__ = ["EX_FAILURE", "EX_INTERRUPTED", "EX_OK", "EX_USAGE", "UserError", "cli", "main"]


#: Each subcommand's module and attribute: a module is imported only when its command runs (or
#: ``--help`` lists the commands), so ``addcow info`` does not pay for the imports of ``serve``,
#: ``convert`` or ``demo`` (click's "lazily loading subcommands" pattern).
COMMANDS: dict[str, tuple[str, str]] = {
    "create": ("addcow_ref.cli.create_cmd", "create"),
    "info": ("addcow_ref.cli.inspect_cmds", "info"),
    "map": ("addcow_ref.cli.inspect_cmds", "map_"),
    "read": ("addcow_ref.cli.io_cmds", "read"),
    "write": ("addcow_ref.cli.io_cmds", "write"),
    "resize": ("addcow_ref.cli.image_cmds", "resize"),
    "hydrate": ("addcow_ref.cli.image_cmds", "hydrate"),
    "upgrade": ("addcow_ref.cli.image_cmds", "upgrade"),
    "convert": ("addcow_ref.cli.convert_cmd", "convert"),
    "commit": ("addcow_ref.cli.chain_cmds", "commit"),
    "rebase": ("addcow_ref.cli.chain_cmds", "rebase"),
    "compare": ("addcow_ref.cli.compare_cmds", "compare"),
    "measure": ("addcow_ref.cli.compare_cmds", "measure"),
    "inspect": ("addcow_ref.cli.forge", "inspect"),
    "set-field": ("addcow_ref.cli.forge", "set_field"),
    "demo": ("addcow_ref.cli.demo", "demo"),
    "serve": ("addcow_ref.cli.serve", "serve"),
    "check": ("addcow_ref.cli.check_cmd", "check"),
}


class AddCowGroup(click.Group):
    """A click group whose ``main`` keeps the project's exit statuses and one-line errors even
    when called by click's own machinery (``CliRunner``, ``group.main()``), not only through
    :func:`main`; its subcommands load on first use (:data:`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        module, attr = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command), cmd_name
        assert command.name == cmd_name, cmd_name
        self.add_command(command)
        return command

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> int:
        group_main = functools.partial(
            super().main, args, prog_name or PROG, complete_var, standalone_mode=False,
            windows_expand_args=windows_expand_args, **extra)

        def invoke() -> Any:
            check_no_args(self, args, prog_name=prog_name or PROG,  # as click 8.2+
                          complete_var=complete_var, **extra)
            return group_main()

        code = exit_status(
            invoke,
            prog_name=PROG,
            show_usage_error=show_usage_error,
            handle_error=handle_error,
        )
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(cls=AddCowGroup, context_settings={"help_option_names": HELP_OPTION_NAMES})
@click.version_option(__version__, "-V", "--version", prog_name=PROG)
def cli() -> None:
    """Create, inspect and modify add-cow disk images (a raw disk plus a copy-on-write bitmap).

    Sizes and offsets take qemu-img's suffixes (K, M, G, T, P, E; powers of 1024) or 0x hex.

    \b
    Examples:
      addcow demo                                   # a narrated tour on example data
      addcow create -b base.raw -F raw disk.add-cow # overlay of base.raw's size
      addcow write --offset 1M --pattern 0xab --length 4K disk.add-cow
      addcow map --output=json disk.add-cow
      addcow hydrate -p disk.add-cow                # disk.raw then stands alone
      addcow convert -f qcow2 -b base.raw -F raw vm.qcow2 vm.add-cow
      addcow commit disk.add-cow                    # base.raw gets disk's clusters
      addcow compare disk.add-cow vm.qcow2          # exit 0 identical, 1 different

    \b
    Exit status: 0 success, 1 error (one line on stderr, with the spec rule ID
    when a rule is broken), 64 usage error, 130 interrupted.
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``addcow`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit status."""
    return run_click(cli, argv, prog_name=PROG)
