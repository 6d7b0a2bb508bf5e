"""``python -m addcow_conformance.mutation``: list, run and publish the mutation run.

Exit status: 0 done (``run``: also when survivors are new, unless ``--fail-on-new``); 1 new
survivors under ``--fail-on-new``, a stale docs page under ``render --check``, or ledger
entries that match no mutant (``stale``); 64 usage
error (bad option, unreadable ledger or results); 70 the run could not start.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from addcow_conformance.harness.cli import default_vectors_dir
from addcow_conformance.mutation.ledger import (
    DEFAULT_LEDGER,
    LedgerError,
    load_ledger,
    toml_entry,
    unmatched,
)
from addcow_conformance.mutation.loader import take_snapshot
from addcow_conformance.mutation.render import DEFAULT_PAGE, render_page
from addcow_conformance.mutation.results import (
    MutantResult,
    ResultsError,
    load_results,
    write_results,
)
from addcow_conformance.mutation.run import (
    DEFAULT_MODULES,
    RunConfig,
    RunError,
    choose,
    list_mutants,
    resolve_modules,
    run_mutants,
)
from addcow_ref.clirun import run_click

__all__ = ["DEFAULT_RESULTS", "cli", "main"]

#: The committed results of the latest reviewed run (the docs page is rendered from it).
DEFAULT_RESULTS = Path(__file__).with_name("results") / "latest.json"

_MARK = {"killed": ".", "timeout": "T", "error": "E"}


class _Internal(click.ClickException):
    exit_code = 70


def _progress(result: MutantResult) -> None:
    mark = _MARK.get(result.outcome) or ("N" if result.is_new_survivor else "s")
    sys.stderr.write(mark)
    sys.stderr.flush()


_modules_option = click.option(
    "--module", "modules", multiple=True, metavar="GLOB",
    help=f"Modules to mutate (default: {', '.join(DEFAULT_MODULES)}).")
_sample_options = [
    click.option("--sample", type=click.IntRange(min=1), default=None,
                 help="Run this many mutants, chosen deterministically by --seed (default: all)."),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample."),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Mutation testing of the reference against the conformance vectors."""


@cli.command("list")
@_modules_option
@_sample_options[0]
@_sample_options[1]
def list_command(modules: tuple[str, ...], sample: int | None, seed: int) -> None:
    """Print the mutants (id, line, the line and its mutation) without running them."""
    snapshot = take_snapshot()
    try:
        names = resolve_modules(snapshot, modules or DEFAULT_MODULES)
    except RunError as e:
        raise click.UsageError(str(e)) from None
    for spec in choose(list_mutants(snapshot, names), sample, seed):
        click.echo(f"{spec.id}  line {spec.line}: {spec.original}  =>  {spec.mutated}")


@cli.command("run")
@_modules_option
@_sample_options[0]
@_sample_options[1]
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=2, show_default=True,
              help="Mutants run at once.")
@click.option("--vectors", "vectors_dir", type=click.Path(path_type=Path, file_okay=False),
              default=None, help="Vectors directory with manifest.json (default: vectors/).")
@click.option("--ledger", "ledger_path", type=click.Path(path_type=Path, dir_okay=False),
              default=DEFAULT_LEDGER, show_default=True, help="Reviewed ledger of survivors.")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False),
              default=DEFAULT_RESULTS, show_default=True, help="Write the JSON results here.")
@click.option("--call-timeout", type=click.FloatRange(min=0, min_open=True), default=5.0,
              show_default=True, help="Seconds per adapter call (the harness's --timeout).")
@click.option("--mutant", "mutant_globs", multiple=True, metavar="GLOB",
              help="Only mutants whose id matches (before --sample).")
@click.option("--run", "vector_globs", multiple=True, metavar="GLOB",
              help="Only vectors whose id matches.")
@click.option("--fail-on-new", is_flag=True, help="Exit 1 when a survivor is not in the ledger.")
def run_command(modules: tuple[str, ...], sample: int | None, seed: int, jobs: int,
                vectors_dir: Path | None, ledger_path: Path, output: Path, call_timeout: float,
                mutant_globs: tuple[str, ...], vector_globs: tuple[str, ...],
                fail_on_new: bool) -> None:
    """Run every mutant (or a sample) through the harness and write the results."""
    try:
        ledger = load_ledger(ledger_path)
    except LedgerError as e:
        raise click.UsageError(str(e)) from None
    config = RunConfig(vectors_dir=vectors_dir or default_vectors_dir(), ledger=ledger,
                       modules=modules or DEFAULT_MODULES, sample=sample, seed=seed,
                       jobs=jobs, call_timeout=call_timeout, mutant_globs=mutant_globs,
                       vector_globs=vector_globs)
    try:
        record = run_mutants(config, progress=_progress if sys.stderr.isatty() else None)
    except RunError as e:
        raise _Internal(str(e)) from None
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    write_results(record, output)
    failing = {v: o for v, o in record.excluded_vectors.items() if o != "skip"}
    if failing:
        click.echo(f"warning: the unmutated reference does not pass {len(failing)} vectors, "
                   f"left out: {', '.join(f'{v} ({o})' for v, o in failing.items())}", err=True)
    total = record.summaries()[-1]
    click.echo(f"{total.mutants} mutants of {record.candidates} in {record.duration_s / 60:.1f} "
               f"min ({record.mutants_per_minute} per minute): {total.killed} killed, "
               f"{total.timeout} timeout, {total.survived} survived "
               f"({total.survived - total.new} in the ledger, {total.new} new), "
               f"{total.error} errors -> {output}")
    new = [r for r in record.results if r.is_new_survivor]
    for r in new:
        click.echo(f"NEW  {r.spec.id}  line {r.spec.line}: {r.spec.original}  =>  "
                   f"{r.spec.mutated}")
    if new and fail_on_new:
        sys.exit(1)


@cli.command("new-survivors")
@click.option("--results", "results_path", type=click.Path(path_type=Path, dir_okay=False),
              default=DEFAULT_RESULTS, show_default=True)
def new_survivors_command(results_path: Path) -> None:
    """Print ledger lines for the new survivors of RESULTS, to review and fill in."""
    try:
        record = load_results(results_path)
    except ResultsError as e:
        raise click.UsageError(str(e)) from None
    for r in record.results:
        if r.is_new_survivor:
            reach = (f"run by {r.reached_by} vectors" if r.reached_by
                     else "no vector runs this statement")
            click.echo(f"# line {r.spec.line}: {r.spec.original}  =>  {r.spec.mutated}"
                       f"  ({reach})")
            click.echo(toml_entry(r.spec, "REASON", "WHY"))


@cli.command("stale")
@click.option("--ledger", "ledger_path", type=click.Path(path_type=Path, dir_okay=False),
              default=DEFAULT_LEDGER, show_default=True)
def stale_command(ledger_path: Path) -> None:
    """Print the ledger entries that no mutant of the default modules matches any more.

    A ledger entry matches its mutant by id, or by the id without its index when that is
    unique (:meth:`~addcow_conformance.mutation.ledger.Ledger.lookup`); an edit of the mutated
    line changes its digest, so its old entry matches nothing and the new mutant must be
    reviewed again. Exit 1 when there are any, so that a review can drop them."""
    try:
        ledger = load_ledger(ledger_path)
    except LedgerError as e:
        raise click.UsageError(str(e)) from None
    snapshot = take_snapshot()
    stale = unmatched(ledger, list_mutants(snapshot, resolve_modules(snapshot,
                                                                     DEFAULT_MODULES)))
    for key in stale:
        click.echo(key)
    if stale:
        sys.exit(1)


@cli.command("render")
@click.option("--results", "results_path", type=click.Path(path_type=Path, dir_okay=False),
              default=DEFAULT_RESULTS, show_default=True)
@click.option("--ledger", "ledger_path", type=click.Path(path_type=Path, dir_okay=False),
              default=DEFAULT_LEDGER, show_default=True)
@click.option("--page", type=click.Path(path_type=Path, dir_okay=False), default=DEFAULT_PAGE,
              show_default=True, help="The docs page to write.")
@click.option("--check", is_flag=True, help="Only compare: exit 1 if the page is stale.")
def render_command(results_path: Path, ledger_path: Path, page: Path, check: bool) -> None:
    """Write the docs page (scores per module, the ledger per reason) from RESULTS."""
    try:
        text = render_page(load_results(results_path), load_ledger(ledger_path))
    except (ResultsError, LedgerError) as e:
        raise click.UsageError(str(e)) from None
    if check:
        if not page.is_file() or page.read_text("utf-8") != text:
            click.echo(f"{page} is stale; run `python -m addcow_conformance.mutation render`")
            sys.exit(1)
        return
    page.write_text(text, "utf-8")
    click.echo(f"-> {page}")


def main(argv: Sequence[str] | None = None) -> int:
    return run_click(cli, argv, prog_name="python -m addcow_conformance.mutation")
