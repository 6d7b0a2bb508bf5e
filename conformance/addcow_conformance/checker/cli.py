"""``addcow-check``: check add-cow images against the spec and say which rules they break.

Exit statuses follow ``qemu-img check`` (0, 1, 2, 3) and sysexits (64); click's own usage-error
status 2 would read as "errors found", so it is remapped to 64 here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from addcow_conformance.checker.context import CheckOptions, confine_root
from addcow_conformance.checker.engine import check_path
from addcow_conformance.checker.findings import EXIT_USAGE, Report, worst_exit_code
from addcow_conformance.checker.report import CheckDocument, human_lines, json_document
from addcow_ref.clirun import check_output_path, run_click
from addcow_ref.format.rules import DOCS_URL_ENV

__all__ = ["cli", "main"]

EXIT_STATUS_HELP = """\b
Exit status:
  0   conforming: no error and no warning
  1   could not check: missing, unreadable, not a regular file
      (directory, FIFO, ...), I/O or internal error
  2   checked: at least one error
  3   checked: warnings only (2 with --fail-on=warning)
  64  usage error (bad option, no IMAGE, unknown --explain RULE-ID)
With several images the worst status wins, in the order 1 > 2 > 3 > 0.
"""


class _CheckCommand(click.Command):
    """A click command whose usage errors exit with 64 (EX_USAGE), not click's 2."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:
            # click declares exit_code a class variable (2 for every usage error); an instance
            # attribute overrides it for this one error without touching click's classes.
            setattr(e, "exit_code", EXIT_USAGE)  # noqa: B010
            raise


def check_images(paths: Sequence[str], options: CheckOptions, jobs: int = 1) -> list[Report]:
    """Check every image, in parallel processes when ``jobs`` > 1; reports keep the argv order."""
    if jobs <= 1 or len(paths) <= 1:
        return [check_path(p, options) for p in paths]
    from concurrent.futures import ProcessPoolExecutor  # only paid for when used

    reports: list[Report] = []
    with ProcessPoolExecutor(max_workers=min(jobs, len(paths))) as pool:
        futures = [pool.submit(check_path, p, options) for p in paths]
        for path, future in zip(paths, futures, strict=True):
            try:
                reports.append(future.result())
            except Exception as e:  # a worker that died (killed, out of memory): exit 1
                reports.append(Report(path=path, error=f"cannot check {path}: worker failed: "
                                      f"{type(e).__name__}: {e}"))
    return reports


@click.command(cls=_CheckCommand, epilog=EXIT_STATUS_HELP,
               context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("images", nargs=-1, metavar="IMAGE...")
@click.option("--output", type=click.Choice(["human", "json"]), default="human",
              show_default=True, help="Report format on standard output.")
@click.option("--report-json", "report_json", type=click.Path(dir_okay=False, writable=True),
              help="Also write the JSON report to this file.")
@click.option("--no-follow", is_flag=True,
              help="Check the metadata file alone: do not open the image or backing files.")
@click.option("--confine", metavar="DIR", type=click.Path(file_okay=False),
              help="Check an untrusted upload: every file the image names must resolve, after "
              "symlinks, inside DIR; a name that does not is an error (NAME-CONFINED) and is "
              "never opened.")
@click.option("-U", "--force-share", is_flag=True,
              help="Read the add-cow files without a shared lock, even while a writer has "
              "them open (the verdict may then be wrong).")
@click.option("-p", "--progress", is_flag=True, help="Show progress of bitmap scans on stderr.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Check this many images at once.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; only the exit status tells.")
@click.option("--fail-on", type=click.Choice(["error", "warning"]), default="error",
              show_default=True, help="'warning' makes warnings exit with 2 instead of 3.")
@click.option("--max-per-rule", type=click.IntRange(min=0), default=10, show_default=True,
              help="Human output: at most this many findings per rule and image (0: all).")
@click.option("--docs-url", metavar="BASE", envvar=DOCS_URL_ENV,
              help="Root of the docs that clause links point into: a URL or a local "
              "build directory such as docs/_build/html (default: $ADDCOW_DOCS_URL, else "
              "the published site of the spec version the rules come from).")
@click.option("--explain", "explain_id", metavar="RULE-ID",
              help="Explain one rule, offline, and exit: its text, level, reader duty, field "
              "and bytes, how to fix a file, and its vectors.")
@click.option("--repair", type=click.Choice(["leaks", "all"]),
              help="First repair what the spec leaves no choice about, then check the result: "
              "'leaks' only cuts bytes nobody reads, 'all' makes every mechanical repair.")
@click.pass_context
def cli(ctx: click.Context, images: tuple[str, ...], output: str, report_json: str | None,
        no_follow: bool, confine: str | None, force_share: bool, progress: bool, jobs: int,
        quiet: bool, fail_on: str,
        max_per_rule: int, docs_url: str | None, explain_id: str | None,
        repair: str | None = None) -> None:
    """Check add-cow IMAGE files against the add-cow specification.

    Every finding names the rule it breaks (its ID, a link to the clause and the command that
    explains it), the byte offset and the header field. Nothing is written to the images but
    the repairs that --repair asks for.
    """
    if explain_id is not None:
        _explain(ctx, explain_id, docs_url)
    if not images:  # not required=True: --explain needs none
        raise _usage_error("Missing argument 'IMAGE...'.", ctx)
    check_output_path("--report-json", report_json)
    options = CheckOptions(follow=not no_follow, progress=progress and not quiet,
                           fail_on_warning=fail_on == "warning", force_share=force_share,
                           confine=None if confine is None else confine_root(confine))
    failed: list[int] = []
    if repair is not None:  # the reports below are then the fresh check of the result
        from addcow_conformance.repair import parse_level, repair_images

        failed = repair_images(list(images), parse_level(repair), options, echo=None if quiet
                               else lambda line: click.echo(line, err=output == "json"))
    reports = check_images(list(images), options, jobs)
    document: CheckDocument | None = None
    if output == "json" or report_json:
        document = json_document(reports, docs_url)
    if report_json:
        assert document is not None
        try:
            with open(report_json, "w", encoding="utf-8") as f:
                json.dump(document, f, indent=2)
                f.write("\n")
        except OSError as e:
            raise click.ClickException(
                f"--report-json {report_json}: cannot write the report: {e.strerror}") from None
    if not quiet:
        if output == "json":
            click.echo(json.dumps(document, indent=2))
        else:
            for report in reports:
                out, err = human_lines(report, max_per_rule=max_per_rule,
                                       follow=options.follow, docs_url=docs_url)
                for line in out:
                    click.echo(line)
                for line in err:
                    click.echo(line, err=True)
        if output == "json":
            for report in reports:
                if report.error is not None:
                    click.echo(f"{report.path}: {report.error}", err=True)
    ctx.exit(worst_exit_code([r.exit_code for r in reports] + failed))


def _usage_error(message: str, ctx: click.Context | None = None) -> click.UsageError:
    """A usage error that exits 64 in click's standalone mode too (see :class:`_CheckCommand`)."""
    e = click.UsageError(message, ctx)
    setattr(e, "exit_code", EXIT_USAGE)  # noqa: B010
    return e


def _explain(ctx: click.Context, rule_id: str, docs_url: str | None) -> None:
    """``--explain``: print the rule and exit 0, or one line naming close matches (exit 64)."""
    from addcow_conformance.explain import UnknownRule, explain  # only paid for when used

    try:
        text = explain(rule_id, docs_url)
    except UnknownRule as e:
        click.echo(f"addcow-check: {e}", err=True)
        ctx.exit(EXIT_USAGE)
    click.echo(text, nl=False)
    ctx.exit(0)


def _report_os_error(e: Exception) -> int | None:
    if isinstance(e, OSError):  # e.g. --report-json into a missing directory
        click.echo(f"addcow-check: {e}", err=True)
        return 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: returns the exit status instead of raising SystemExit
    (usage errors 64 and Ctrl-C 130 as every tool of the project, :mod:`addcow_ref.clirun`)."""
    return run_click(cli, argv, prog_name="addcow-check", handle_error=_report_os_error)


if __name__ == "__main__":
    sys.exit(main())
