"""``addcow-vectors``: write the golden vectors, the coverage page of the docs, or the suite this
install carries (``extract``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from addcow_conformance.vectors.manifest import generate
from addcow_ref.clirun import run_click


@click.group()
def main_group() -> None:
    """Generate the add-cow golden test vectors, or extract the installed suite."""


@main_group.command("generate")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def generate_cmd(directory: Path) -> None:
    """Write every vector, manifest.json, SHA256SUMS and lists/ into DIRECTORY.

    Only the generated entries (v1/, v2/, lists/, manifest.json, manifest.schema.json,
    SHA256SUMS, README.md, CHANGELOG.md, .gitattributes) are replaced; the output is
    byte-identical on every run. Refuses (exit 1) when an expectation differs from the latest
    suite version recorded in conformance/addcow_conformance/vectors/history.json (see
    record-version).
    """
    from addcow_conformance.vectors.history import HistoryError

    try:
        manifest = generate(directory)
    except HistoryError as e:
        raise click.ClickException(str(e)) from None
    c = manifest["counts"]
    click.echo(f"{c['total']} vectors written to {directory} "
               f"({', '.join(f'{n} {k}' for k, n in c['kind'].items())}; "
               f"{', '.join(f'{n} {r}' for r, n in c['result'].items())})")


@main_group.command("extract")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def extract_cmd(directory: Path) -> None:
    """Write the committed vector suite this install carries into DIRECTORY, byte-identical,
    SHA256SUMS included, and verify the copy against it.

    The suite is the one the harness runs without --vectors: a source checkout's vectors/,
    else the copy packaged in the wheel. DIRECTORY must be new or empty. Sparse
    "synth": "zeros" files are not part of the suite; the harness creates them.
    """
    from addcow_conformance.packaged import SuiteNotFound, default_vectors_dir, extract_suite

    try:
        source = default_vectors_dir()
        names = extract_suite(source, directory)
    except (SuiteNotFound, FileExistsError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{len(names)} files of the suite in {source} written to {directory}")


@main_group.command("coverage-page")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
def coverage_cmd(output: Path) -> None:
    """Write the rule x vector coverage page (reStructuredText) to OUTPUT."""
    from addcow_conformance.vectors.coverage import render_coverage
    from addcow_conformance.vectors.history import HistoryError

    try:
        page = render_coverage()
    except HistoryError as e:
        raise click.ClickException(str(e)) from None
    output.write_text(page, "utf-8")
    click.echo(f"coverage page written to {output}")


@main_group.command("record-version")
@click.argument("version")
def record_version_cmd(version: str) -> None:
    """Record the current vectors as suite VERSION in
    conformance/addcow_conformance/vectors/history.json.

    Needed after any change to an expectation (major bump) or any added vector (minor bump);
    until then ``generate`` refuses to write vectors that differ from the latest recorded
    version. Then run ``generate`` to update the manifest and CHANGELOG.md.
    """
    from addcow_conformance.vectors.history import (
        HistoryError,
        load_history,
        record_version,
        write_history,
    )
    from addcow_conformance.vectors.manifest import all_vectors, vector_digests

    try:
        history = record_version(load_history(), version, vector_digests(all_vectors()))
    except HistoryError as e:
        raise click.ClickException(str(e)) from None
    write_history(history)
    click.echo(f"suite {version} recorded ({len(history[-1].vectors)} vectors)")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: returns the exit status (usage errors 64, Ctrl-C 130, ``-h``
    accepted, as every tool of the project: :mod:`addcow_ref.clirun`)."""
    return run_click(main_group, argv, prog_name="addcow-vectors")


if __name__ == "__main__":
    sys.exit(main())
