"""Where the conformance vectors are when no ``--vectors`` is given: the committed suite travels
inside the wheel, so ``pip install addcow`` is enough to test an implementation.

The wheel carries the checkout's ``vectors/`` as ``addcow_conformance/_vectors/`` (hatch's
``force-include`` in ``pyproject.toml``), byte for byte, ``SHA256SUMS`` included; the sparse
``"synth": "zeros"`` files are not in the suite (the harness creates them in each scratch copy),
so the copy costs a few hundred kilobytes compressed. The default suite is, in this order:

1. the ``vectors/`` of the source checkout this kit is imported from (an editable install or the
   test suite): there the committed suite is the one being edited, and the wheel's copy does
   not exist;
2. the packaged copy of the installed kit: the suite its harness and checker were released with.

The working directory is never searched: a stray ``vectors/`` there may be another suite
version, and a verdict must not depend on where the command was typed (``--vectors DIR`` names
any other suite, e.g. one written by ``addcow-vectors extract``).
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from addcow_conformance.harness.manifest import verify_sums

__all__ = [
    "PACKAGED_NAME",
    "SuiteNotFound",
    "checkout_vectors_dir",
    "default_vectors_dir",
    "extract_suite",
    "packaged_vectors_dir",
    "suite_files",
]

#: The directory of the suite inside the installed ``addcow_conformance`` package.
PACKAGED_NAME = "_vectors"
_SUMS = "SHA256SUMS"


class SuiteNotFound(Exception):
    """Neither a checkout's nor the package's suite exists (a wheel built without vectors)."""


def _is_suite(path: Path) -> bool:
    return (path / "manifest.json").is_file()


def checkout_vectors_dir() -> Path | None:
    """``vectors/`` of the source checkout holding this package, if the kit runs from one."""
    candidate = Path(__file__).resolve().parents[2] / "vectors"
    return candidate if _is_suite(candidate) else None


def packaged_vectors_dir() -> Path | None:
    """The suite shipped in the installed package, if it is there and on the file system (the
    harness copies vector files by path; a zipped install has no such directory)."""
    root = resources.files(__package__).joinpath(PACKAGED_NAME)
    return root if isinstance(root, Path) and _is_suite(root) else None


def default_vectors_dir() -> Path:
    """The suite used without ``--vectors``: the checkout's, else the packaged one."""
    for found in (checkout_vectors_dir(), packaged_vectors_dir()):
        if found is not None:
            return found
    raise SuiteNotFound("no vectors: this install has no packaged suite and is not a source "
                        "checkout (point --vectors at a vectors directory)")


def suite_files(root: Path) -> list[str]:
    """Every file of the suite at ``root``, relative POSIX paths: those ``SHA256SUMS`` lists,
    and ``SHA256SUMS`` itself. The list, not a directory walk, says what the suite is, so no
    stray file (a ``__pycache__``, an editor's backup) is ever taken for part of it."""
    sums = root / _SUMS
    if not sums.is_file():
        raise SuiteNotFound(f"{sums}: missing; cannot tell which files make up the suite")
    names = []
    for n, line in enumerate(sums.read_text("utf-8").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise SuiteNotFound(f"{sums}:{n}: not in sha256sum format: {line!r}")
        names.append(name.removeprefix("*").removeprefix("./"))
    return [*names, _SUMS]


def extract_suite(source: Path, dest: Path) -> list[str]:
    """Copy the suite at ``source`` into ``dest`` (created; must be empty if it exists) and
    verify the copy against its ``SHA256SUMS``; return the files written."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"{dest}: exists and is not an empty directory")
    names = suite_files(source)
    for name in names:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)
    problems = verify_sums(dest)
    if problems:
        raise SuiteNotFound(f"{source}: the suite fails its SHA256SUMS: {problems[0]}")
    return names
