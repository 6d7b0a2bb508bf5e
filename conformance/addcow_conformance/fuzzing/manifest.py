"""Fuzz target ``manifest``: the harness's loader
(:func:`addcow_conformance.harness.manifest.load_manifest`) reads any ``manifest.json`` into its
typed records, or refuses it with its documented ``ManifestError``; any other exception is a
finding (the harness would show a traceback instead of one line naming the manifest).

The scratch directory holds an empty directory for every vector of the committed manifest
(``v2/<id>``), so a fuzzed entry naming a real vector gets past the directory lookup and the
loader's later steps (duplicate ids, the suite-level fields) are reached too.
"""

from __future__ import annotations

import json
from pathlib import Path

from addcow_conformance.fuzzing.common import Target, rewrite, scratch
from addcow_conformance.fuzzing.dictionary import manifest_tokens
from addcow_conformance.fuzzing.seeds import manifest_seeds, vectors_dir, write_seeds

__all__ = ["MAX_LEN", "TARGET", "load_bytes", "one_input"]

#: Several vectors' entries (a one-vector manifest seed is 1-3 KiB).
MAX_LEN = 16384


class _Prepared:
    directory: Path | None = None


def _directory() -> Path:
    """The scratch directory, with the committed vectors' directories made once."""
    if _Prepared.directory is None:
        directory = scratch("manifest")
        root = vectors_dir()
        if root is not None and (root / "manifest.json").is_file():
            data = json.loads((root / "manifest.json").read_bytes())
            for entry in data.get("vectors", []):
                spec = str(entry.get("spec", "2.0"))
                (directory / f"v{spec.split('.')[0]}" / str(entry["id"])).mkdir(
                    parents=True, exist_ok=True)
        _Prepared.directory = directory
    return _Prepared.directory


def load_bytes(data: bytes) -> object:
    """Load ``data`` as the scratch directory's ``manifest.json``; return the manifest (typed
    ``object``: the harness is imported only when called, under the runner's instrumentation)."""
    from addcow_conformance.harness.manifest import load_manifest

    directory = _directory()
    rewrite(directory / "manifest.json", data)
    return load_manifest(directory)


def one_input(data: bytes) -> None:
    from addcow_conformance.harness.manifest import Manifest, ManifestError

    try:
        manifest = load_bytes(data)
    except ManifestError:
        return
    assert isinstance(manifest, Manifest)
    for vector in manifest.vectors:
        vector.rules  # noqa: B018 -- the one derived property of a loaded vector


def _warm_up() -> None:
    import addcow_conformance.harness.manifest  # noqa: F401


def _write_seeds(directory: Path) -> int:
    return write_seeds(directory, manifest_seeds(max_len=MAX_LEN))


TARGET = Target(
    name="manifest",
    one_input=one_input,
    max_len=MAX_LEN,
    warm_up=_warm_up,
    write_seeds=_write_seeds,
    dictionary=lambda: manifest_tokens(vectors_dir()),
)
