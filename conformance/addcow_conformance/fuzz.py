"""Coverage-guided fuzzing of the conformance kit with atheris:
``python -m addcow_conformance.fuzz [--target checker|reader|manifest|all] [libFuzzer flags]``.

The targets live in :mod:`addcow_conformance.fuzzing` (the checker, the reference reader, the
harness's manifest loader); ``--target all`` (the default, and what ``tox -e fuzz`` runs) fuzzes
each in turn in a child process with the same flags, ``-max_total_time`` applying to each, and
prints a table of executions per target. libFuzzer flags pass through; a corpus directory may be
given with a single target. atheris is imported lazily so the package imports without it.

``check_bytes``, ``test_one_input`` and ``seed_corpus`` are the checker target's, kept under the
names this module always had.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from addcow_conformance.fuzzing import TARGET_NAMES

__all__ = ["check_bytes", "main", "seed_corpus", "test_one_input"]


def check_bytes(data: bytes, name: str = "image.add-cow") -> object:
    """The checker target's report on ``data`` (see :mod:`addcow_conformance.fuzzing.checker`)."""
    from addcow_conformance.fuzzing.checker import check_bytes as check

    return check(data, name)


def test_one_input(data: bytes) -> None:
    """The checker target's one-input function."""
    from addcow_conformance.fuzzing.checker import one_input

    one_input(data)


def seed_corpus(directory: Path) -> None:
    """Write the forged seeds: valid v2 files (with a raw backing file; all allocated) and a v1
    file, each naming the scratch directory's files (the vectors' seeds are the runner's)."""
    from addcow_conformance.fuzzing.seeds import forged_seeds, write_seeds

    write_seeds(directory, forged_seeds())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m addcow_conformance.fuzz",
        description="Fuzz the add-cow checker, reader and manifest loader with atheris; "
                    "other arguments go to libFuzzer (e.g. -max_total_time=60).")
    parser.add_argument("--target", choices=[*TARGET_NAMES, "all"], default="all",
                        help="what to fuzz (default: all, one after the other)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args, libfuzzer_args = _parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    from addcow_conformance.fuzzing.runner import run_all, run_target

    if args.target == "all":
        return run_all(libfuzzer_args)
    return run_target(args.target, libfuzzer_args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
