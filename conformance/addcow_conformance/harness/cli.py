"""``addcow-conformance``: run an implementation over the golden vectors.

Exit status: 0 no unexpected outcome; 1 unexpected failures, crashes, timeouts, unclean
refusals or harness errors on a vector (or xpass under ``--strict-known-failures``); 64 usage
error (bad option, unusable ``--impl``, unreadable known-failures file, empty selection);
70 the harness could not run (corrupt or unreadable suite, internal error).
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from addcow_conformance.harness.impl import ImplError, parse_impl
from addcow_conformance.harness.known_failures import (
    KnownFailures,
    KnownFailuresError,
    load_known_failures,
)
from addcow_conformance.harness.manifest import Manifest, ManifestError, Vector, load_manifest
from addcow_conformance.harness.outcomes import UNEXPECTED
from addcow_conformance.harness.report import to_human, to_json, to_junit
from addcow_conformance.harness.runner import Runner, RunOptions
from addcow_conformance.packaged import SuiteNotFound, default_vectors_dir
from addcow_ref.clirun import check_output_path, run_click

__all__ = ["EXIT_INTERNAL", "EXIT_USAGE", "cli", "default_vectors_dir", "main", "select"]

EXIT_USAGE = 64
EXIT_INTERNAL = 70


class _Internal(click.ClickException):
    exit_code = EXIT_INTERNAL


class _Usage(click.ClickException):
    exit_code = EXIT_USAGE


def _default_root() -> Path:
    """The suite without ``--vectors`` (:func:`addcow_conformance.packaged.default_vectors_dir`:
    the checkout's, else the one packaged in the wheel)."""
    try:
        return default_vectors_dir()
    except SuiteNotFound as e:
        raise _Usage(str(e)) from None


def _load_vectors(vectors_dir: Path | None) -> tuple[Path, Manifest]:
    """The vectors directory (``--vectors`` or the default) and its manifest: a usage error
    when there is no manifest, an internal one when it cannot be read."""
    root = vectors_dir or _default_root()
    if not (root / "manifest.json").is_file():
        raise _Usage(f"{root}: no manifest.json (point --vectors at a vectors directory)")
    try:
        return root, load_manifest(root)
    except ManifestError as e:
        raise _Internal(str(e)) from None


def select(
    vectors: Sequence[Vector],
    run: Sequence[str] = (),
    skip: Sequence[str] = (),
    kinds: Sequence[str] = (),
    rules: Sequence[str] = (),
    specs: Sequence[str] = (),
) -> list[Vector]:
    """Vectors matching any ``run`` glob (all if none), no ``skip`` glob, a kind, a rule glob
    and a spec version."""
    out = []
    for v in vectors:
        if specs and v.spec not in specs:
            continue
        if run and not any(fnmatch.fnmatchcase(v.id, g) for g in run):
            continue
        if any(fnmatch.fnmatchcase(v.id, g) for g in skip):
            continue
        if kinds and v.kind not in kinds:
            continue
        if rules and not any(fnmatch.fnmatchcase(r, g) for r in v.rules for g in rules):
            continue
        out.append(v)
    return out


_MARK = {"pass": ".", "skip": "s", "xfail": "x", "xpass": "X", "fail": "F",
         "refused-unclean": "U", "crash": "C", "timeout": "T", "harness-error": "E"}


def _progress(vector: Vector, outcome: str) -> None:
    """One character per vector on a terminal, as pytest does: long runs show they are alive."""
    sys.stderr.write(_MARK.get(outcome, "?"))
    sys.stderr.flush()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Conformance harness for add-cow implementations.

    Exit status: 0 conforming on the selected vectors; 1 unexpected failures; 64 usage error;
    70 the harness could not run.
    """


@cli.command("run")
@click.option("--impl", "impl_text", required=True, metavar="COMMAND",
              help="Adapter command, split like shell words and run without a shell; or "
              "'python:MODULE:FUNCTION [ARGS]' to fork a Python adapter in-process.")
@click.option("--vectors", "vectors_dir", type=click.Path(path_type=Path, file_okay=False),
              default=None, help="Vectors directory with manifest.json (default: the suite "
              "installed with the kit).")
@click.option("--output", type=click.Choice(["human", "json"]), default="human",
              show_default=True, help="Report on stdout.")
@click.option("--run", "run_globs", multiple=True, metavar="GLOB", help="Only vector ids matching.")
@click.option("--skip", "skip_globs", multiple=True, metavar="GLOB", help="Leave out ids matching.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["parse", "read", "op"]),
              help="Only vectors of this kind (repeatable).")
@click.option("--rules", "rule_globs", multiple=True, metavar="GLOB",
              help="Only vectors about a rule matching (e.g. 'HDR-*').")
@click.option("--spec", "specs", multiple=True, metavar="VERSION",
              help="Only vectors of this spec version ('2.0', '1'; repeatable).")
@click.option("--setup", "setup_text", metavar="COMMAND",
              help="Run once before the vectors (no shell); a non-zero exit aborts the run.")
@click.option("--known-failures", "known_path", type=click.Path(path_type=Path, dir_okay=False),
              help="TOML ledger of expected failures (id or glob = {reason, bug}).")
@click.option("--strict-known-failures", is_flag=True,
              help="A listed vector that passes (xpass) fails the run.")
@click.option("--check-refusal-reason", is_flag=True,
              help="A refusal naming a rule other than the one the vector breaks is a failure.")
@click.option("--lenient-refusal", is_flag=True,
              help="Count any non-zero, non-69 exit on an invalid vector as a refusal.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Seconds per adapter call.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Vectors run in parallel (command adapters only).")
@click.option("--exitfirst", "-x", is_flag=True, help="Stop after the first unexpected outcome.")
@click.option("--report-json", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the JSON results here.")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write JUnit XML here.")
@click.option("--work-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where scratch copies go (default: a new temporary directory).")
@click.option("--keep-scratch", is_flag=True, help="Keep every scratch copy, not only failures.")
@click.option("--verbose", "-v", is_flag=True, help="Also list skips and expected failures.")
def run_command(
    impl_text: str,
    vectors_dir: Path | None,
    output: str,
    run_globs: tuple[str, ...],
    skip_globs: tuple[str, ...],
    kinds: tuple[str, ...],
    rule_globs: tuple[str, ...],
    specs: tuple[str, ...],
    setup_text: str | None,
    known_path: Path | None,
    strict_known_failures: bool,
    check_refusal_reason: bool,
    lenient_refusal: bool,
    timeout: float,
    jobs: int,
    exitfirst: bool,
    report_json: Path | None,
    junit: Path | None,
    work_dir: Path | None,
    keep_scratch: bool,
    verbose: bool,
) -> None:
    """Run COMMAND over the vectors and report per vector and per capability."""
    check_output_path("--report-json", report_json)
    check_output_path("--junit", junit)
    try:
        impl = parse_impl(impl_text)
    except ImplError as e:
        raise _Usage(str(e)) from None
    known = KnownFailures()
    if known_path is not None:
        try:
            known = load_known_failures(known_path)
        except KnownFailuresError as e:
            raise _Usage(str(e)) from None
    root, manifest = _load_vectors(vectors_dir)
    chosen = select(manifest.vectors, run_globs, skip_globs, kinds, rule_globs, specs)
    if not chosen:
        raise _Usage(
            "the selection is empty: no vector matches --run/--skip/--kind/--rules/--spec"
        )
    if setup_text is not None:
        _setup(setup_text, timeout)
    options = RunOptions(
        timeout=timeout,
        jobs=jobs,
        check_refusal_reason=check_refusal_reason,
        lenient_refusal=lenient_refusal,
        strict_known_failures=strict_known_failures,
        exitfirst=exitfirst,
        work_dir=work_dir,
        keep_scratch=keep_scratch,
    )
    progress = _progress if sys.stderr.isatty() and output == "human" else None
    runner = Runner(impl, manifest, root, options, known, progress=progress)
    problems = runner.check_integrity(chosen)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise _Internal(f"the vector suite is not intact; nothing was run:\n  {shown}{more}")
    result = runner.run(chosen)
    if progress is not None:
        sys.stderr.write("\n")
    doc = to_json(result)
    try:
        if report_json is not None:
            report_json.write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
        if junit is not None:
            junit.write_bytes(to_junit(result))
    except OSError as e:
        raise _Internal(f"{e.filename}: cannot write the report: {e.strerror}") from None
    if output == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(to_human(result, verbose=verbose), nl=False)
    sys.exit(result.exit_code)


def _setup(text: str, timeout: float) -> None:
    """``--setup``: build or start what the adapter needs, once; failing aborts the run."""
    try:
        argv = shlex.split(text)
    except ValueError as e:
        raise _Usage(f"--setup {text!r}: {e}") from None
    if not argv:
        raise _Usage("--setup is empty")
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=max(timeout, 60.0), check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise _Internal(f"--setup {text!r} could not run: {e}") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise _Internal(
            f"--setup {text!r} exited {proc.returncode}; nothing was run"
            + ("".join(f"\n  {line}" for line in tail))
        )


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


@cli.command("known-failures")
@click.option("--from", "results_path", required=True,
              type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="JSON results of a run (--report-json or --output=json).")
def known_failures_command(results_path: Path) -> None:
    """Print a known-failures ledger listing every vector that failed in RESULTS.

    Each entry's reason is the first failure message; edit the reasons and add bug links
    before committing it.
    """
    try:
        doc = json.loads(results_path.read_text("utf-8"))
        results = doc["results"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise _Usage(f"{results_path}: not a results document ({e!r})") from None
    first: dict[str, str] = {}
    for r in results:
        if r.get("outcome") in UNEXPECTED - {"harness-error"} or r.get("outcome") == "xfail":
            first.setdefault(r["id"], f"[{r['capability']}] {r['message']}")
    suite = doc.get("suite_version", "?")
    click.echo(f"# Known failures of {doc.get('implementation', {}).get('name', '?')} "
               f"against suite {suite}: {len(first)} vectors.")
    for vid in sorted(first):
        click.echo(f"{_toml_string(vid)} = {{ reason = {_toml_string(first[vid])} }}")


@cli.command("extract")
@click.argument("vector_id")
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False))
@click.option("--vectors", "vectors_dir", type=click.Path(path_type=Path, file_okay=False),
              default=None, help="Vectors directory with manifest.json (default: the suite "
              "installed with the kit).")
def extract_command(vector_id: str, dest: Path, vectors_dir: Path | None) -> None:
    """Copy one vector's files (synthesised ones created sparse) and its manifest entry to DEST."""
    root, manifest = _load_vectors(vectors_dir)
    vector = next((v for v in manifest.vectors if v.id == vector_id), None)
    if vector is None:
        raise _Usage(f"no vector {vector_id!r} in {root / 'manifest.json'}")
    if dest.exists() and any(dest.iterdir()):
        raise _Usage(f"{dest} exists and is not empty")
    shutil.copytree(vector.directory, dest, copy_function=shutil.copyfile, dirs_exist_ok=True)
    for f in vector.files:
        if f.synth == "zeros":
            with (dest / f.path).open("wb") as fh:
                fh.truncate(f.size)
    (dest / "vector.json").write_text(json.dumps(vector.raw, indent=2) + "\n", "utf-8")
    click.echo(f"{vector_id} -> {dest} ({vector.kind}, {vector.result}; entry {vector.entry})")


@cli.command("matrix")
@click.argument("results", nargs=-1, required=True,
                type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--html", "html_out", required=True,
              type=click.Path(path_type=Path, dir_okay=False), help="Write the page here.")
@click.option("--pruned", is_flag=True,
              help="Collapse vectors whose outcome is the same in every implementation.")
@click.option("--vectors", "vectors_dir", type=click.Path(path_type=Path, file_okay=False),
              default=None, help="Vectors directory with manifest.json (default: the suite "
              "installed with the kit).")
def matrix_command(results: tuple[Path, ...], html_out: Path, pruned: bool,
                   vectors_dir: Path | None) -> None:
    """Render RESULTS files (--report-json of several runs) as implementations x vectors and
    x rules, with each implementation's anomalies, as one self-contained HTML page."""
    from addcow_conformance.harness.matrix import MatrixError, load_results, render_matrix

    root = vectors_dir or _default_root()
    manifest = None
    if (root / "manifest.json").is_file():
        try:
            manifest = load_manifest(root)
        except ManifestError as e:
            raise _Internal(str(e)) from None
    elif vectors_dir is not None:
        raise _Usage(f"{root}: no manifest.json (point --vectors at a vectors directory)")
    try:
        impls = load_results(results)
    except MatrixError as e:
        raise _Usage(str(e)) from None
    html_out.write_text(render_matrix(impls, manifest, pruned=pruned), "utf-8")
    click.echo(f"{len(impls)} implementations -> {html_out}")


def _internal_error(e: Exception) -> int:
    traceback.print_exception(e)
    click.echo("addcow-conformance: internal error (exit 70)", err=True)
    return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: usage errors exit 64 (click's 2 would read as "failures" to
    scripts) and Ctrl-C 130, as every tool of the project (:mod:`addcow_ref.clirun`); any
    other exception is an internal error (70)."""
    return run_click(cli, argv, prog_name="addcow-conformance", handle_error=_internal_error)


if __name__ == "__main__":
    sys.exit(main())
