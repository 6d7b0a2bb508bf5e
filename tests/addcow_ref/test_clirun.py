"""The click runner every console script shares: usage errors 64, Ctrl-C 130, ``-h`` accepted,
and every other status the tool's own.

The first half drives :func:`addcow_ref.clirun.run_click` with small click commands built here,
one per outcome; the second runs the four tools' ``main(argv)`` in-process and their installed
scripts in subprocesses, as a user does.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from addcow_ref import clirun
from addcow_ref.clirun import EX_INTERRUPTED, EX_USAGE, run_click

# --------------------------------------------------------------------------- the runner


def _no_such_option(name: str) -> tuple[str, str]:
    """click's message for an unknown option: 8.2 and later quote it, 8.1 (Debian 12's, the
    oldest supported) does not."""
    return f"No such option '{name}'.", f"No such option: {name}"


def _command(action: object = None) -> click.Command:
    """A fresh command (click caches each command's help option, so tests share none) that
    does ``action``: raise it when it is an exception, else return it."""

    @click.command()
    @click.option("--count", type=int, default=1)
    def tool(count: int) -> object:
        if isinstance(action, BaseException):
            raise action
        return action

    return tool


def test_a_usage_error_exits_64_with_clicks_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_click(_command(), ["--count", "many"], prog_name="tool") == EX_USAGE
    err = capsys.readouterr().err
    assert err.startswith("Usage: tool [OPTIONS]\n")
    assert "Invalid value for '--count': 'many' is not a valid integer." in err


def test_a_tool_can_print_its_usage_errors_its_own_way(
        capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[str] = []

    def one_line(e: click.UsageError) -> None:
        seen.append(e.format_message())

    assert run_click(_command(), ["--bogus"], prog_name="tool",
                     show_usage_error=one_line) == EX_USAGE
    assert seen in [[wording] for wording in _no_such_option("--bogus")], seen
    assert capsys.readouterr().err == ""


def test_no_arguments_to_a_group_prints_its_help_and_exits_64(
        capsys: pytest.CaptureFixture[str]) -> None:
    group = click.Group("tools", commands={"one": _command()})
    called: list[click.UsageError] = []
    assert run_click(group, [], prog_name="tools", show_usage_error=called.append) == EX_USAGE
    assert called == []  # the help is not a usage error message
    assert capsys.readouterr().err.startswith("Usage: tools [OPTIONS] COMMAND [ARGS]...")


def test_no_arguments_to_a_command_that_needs_them_is_the_same_on_every_click(
        capsys: pytest.CaptureFixture[str]) -> None:
    """click 8.1 itself would print this help on stdout and exit 0; the runner answers first,
    with the command's context settings and without running a parameter's callback."""
    called: list[object] = []

    def seen(ctx: click.Context, param: click.Parameter, value: int) -> int:
        called.append(param.name)
        return value

    wide = "a help line wider than 80 columns, kept on one line by the command's settings " * 2

    @click.command(no_args_is_help=True,
                   context_settings={"max_content_width": 250, "terminal_width": 250})
    @click.option("--count", type=int, default=1, callback=seen, help=wide)
    def tool(count: int) -> None:
        called.append(count)

    assert run_click(tool, [], prog_name="tool") == EX_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("Usage: tool [OPTIONS]\n")
    assert re.search(r"^  -h, --help +Show this message and exit\.$", captured.err, re.MULTILINE)
    assert f"{wide.strip()}\n" in captured.err
    assert called == []
    assert run_click(tool, ["--count", "2"], prog_name="tool") == 0
    assert called == ["count", 2]


@pytest.mark.parametrize("argv", [["-h"], ["--help"]])
def test_h_is_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_click(_command(), argv, prog_name="tool") == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: tool [OPTIONS]")
    assert re.search(r"^  -h, --help +Show this message and exit\.$", out, re.MULTILINE)


def test_a_parameter_named_h_keeps_it() -> None:
    @click.command()
    @click.option("-h", "--height", type=int, required=True)
    def tool(height: int) -> int:
        return height

    assert run_click(tool, ["-h", "7"], prog_name="tool") == 7


@pytest.mark.parametrize(("action", "code"), [
    (None, 0),
    (3, 3),
    (click.exceptions.Exit(5), 5),
    (SystemExit(7), 7),
    (SystemExit(None), 0),
    (click.ClickException("refused"), 1),
], ids=["none", "returned-int", "ctx-exit", "sys-exit", "sys-exit-none", "click-exception"])
def test_other_statuses_are_the_tools_own(action: object, code: int) -> None:
    assert run_click(_command(action), [], prog_name="tool") == code


def test_a_click_exception_keeps_its_own_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    class Refused(click.ClickException):
        exit_code = 3

    assert run_click(_command(Refused("no")), [], prog_name="tool") == 3
    assert capsys.readouterr().err == "Error: no\n"


def test_sys_exit_with_a_message_prints_it_and_exits_1(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run_click(_command(SystemExit("gave up")), [], prog_name="tool") == 1
    assert capsys.readouterr().err == "gave up\n"


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), click.Abort()], ids=["ctrl-c", "abort"])
def test_ctrl_c_exits_130_with_one_line(stop: BaseException,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert run_click(_command(stop), [], prog_name="tool") == EX_INTERRUPTED
    # click ends the terminal's "^C" line first (KeyboardInterrupt only), then our one line.
    assert capsys.readouterr().err.lstrip("\n") == "tool: interrupted\n"


def test_the_tools_handler_maps_its_own_errors_and_others_propagate() -> None:
    def handle(e: Exception) -> int | None:
        return 9 if isinstance(e, LookupError) else None

    assert run_click(_command(KeyError("k")), [], prog_name="tool", handle_error=handle) == 9
    with pytest.raises(ZeroDivisionError):
        run_click(_command(ZeroDivisionError()), [], prog_name="tool", handle_error=handle)
    with pytest.raises(LookupError):
        run_click(_command(LookupError()), [], prog_name="tool")


def test_argv_defaults_to_sys_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["tool", "--count", "4"])

    @click.command()
    @click.option("--count", type=int)
    def tool(count: int) -> int:
        return count

    assert run_click(tool, prog_name="tool") == 4


def test_the_runner_imports_only_click_and_the_standard_library() -> None:
    tree = ast.parse(Path(clirun.__file__).read_text(encoding="utf-8"))
    top = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            top |= {a.name.partition(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            top.add((node.module or "").partition(".")[0])
    assert "click" in top
    assert {m for m in top - {"click"} if m not in sys.stdlib_module_names} == set()


# --------------------------------------------------------------------------- the four tools

#: Each console script, its ``main`` and a subcommand to ask for help (None: no subcommands).
TOOLS = {
    "addcow": ("addcow_ref.cli.main", "create"),
    "addcow-check": ("addcow_conformance.checker.cli", None),
    "addcow-conformance": ("addcow_conformance.harness.cli", "run"),
    "addcow-vectors": ("addcow_conformance.vectors.cli", "generate"),
}


def _main(prog: str) -> Callable[[list[str]], int]:
    module = __import__(TOOLS[prog][0], fromlist=["main"])
    main: Callable[[list[str]], int] = module.main
    return main


def _script(prog: str) -> list[str]:
    """The installed console script, or the same entry point through this interpreter."""
    found = shutil.which(prog, path=os.path.dirname(sys.executable))
    if found:
        return [found]
    return [sys.executable, "-c",
            f"import sys; from {TOOLS[prog][0]} import main; sys.exit(main())"]


@pytest.mark.parametrize("prog", TOOLS)
def test_each_tools_usage_errors_exit_64(prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(prog)(["--no-such-option"]) == EX_USAGE
    err = capsys.readouterr().err
    assert any(wording in err for wording in _no_such_option("--no-such-option")), err
    assert "Traceback" not in err


@pytest.mark.parametrize("prog", TOOLS)
def test_each_installed_script_takes_h_and_exits_64_on_a_usage_error(prog: str) -> None:
    """In a subprocess: the state of click's per-command help option cache in this process
    (other tests invoke these commands directly) cannot hide a missing ``-h``."""
    sub = TOOLS[prog][1]
    for argv in (["-h"], [sub, "-h"] if sub else ["--help"]):
        done = subprocess.run([*_script(prog), *argv], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, (argv, done.stderr)
        usage = f"Usage: {prog} {sub} " if sub and sub in argv else f"Usage: {prog} "
        assert done.stdout.startswith(usage), (argv, done.stdout[:200])
        assert "-h, --help" in done.stdout
    done = subprocess.run([*_script(prog), "--no-such-option"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == EX_USAGE, done.stderr
    assert "Traceback" not in done.stderr


def test_a_bare_group_is_a_usage_error_that_shows_its_help(
        capsys: pytest.CaptureFixture[str]) -> None:
    for prog in ("addcow", "addcow-conformance", "addcow-vectors"):
        assert _main(prog)([]) == EX_USAGE, prog
        assert capsys.readouterr().err.startswith(f"Usage: {prog} [OPTIONS] COMMAND"), prog


def test_the_tools_other_statuses_are_unchanged(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = str(tmp_path / "d.add-cow")
    assert _main("addcow")(["create", image, "1M"]) == 0
    assert _main("addcow")(["info", str(tmp_path / "none.add-cow")]) == 1
    assert _main("addcow-check")([image]) == 0
    assert _main("addcow-check")([str(tmp_path / "none.add-cow")]) == 1
    # A report with nowhere to go is a usage error, found before the check runs.
    assert _main("addcow-check")(["--report-json", str(tmp_path / "no" / "r.json"),
                                  image]) == 64
    page = tmp_path / "coverage.rst"
    assert _main("addcow-vectors")(["coverage-page", str(page)]) == 0
    assert page.read_text("utf-8")
    assert _main("addcow-conformance")(["extract", "no/such", str(tmp_path / "x")]) == 64
    capsys.readouterr()


def test_ctrl_c_in_the_checker_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import addcow_conformance.checker.cli as checker_cli

    def interrupted(*args: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(checker_cli, "check_images", interrupted)
    assert checker_cli.main([str(tmp_path / "x.add-cow")]) == EX_INTERRUPTED
    assert capsys.readouterr().err.lstrip("\n") == "addcow-check: interrupted\n"


def test_an_internal_error_of_the_harness_exits_70(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import addcow_conformance.harness.cli as harness_cli

    def broken(vectors_dir: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(harness_cli, "_load_vectors", broken)
    assert harness_cli.main(["extract", "x/y", "out"]) == harness_cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "RuntimeError: boom" in err
    assert err.endswith("addcow-conformance: internal error (exit 70)\n")
