"""The scratch sandbox of one vector: a private copy of its files, and how calls run in it.

Per vector the harness copies the files to a fresh scratch directory (``synth: zeros`` files
created sparse) and runs every call there, so an adapter may write to its copy freely; the
originals are re-hashed afterwards, so an adapter that writes outside its copy is caught. The
adapter runs with its working directory set to the scratch root, not the vector's directory, so
names resolved against the CWD instead of the add-cow file's directory (rule
READ-NAME-RELATIVE) fail. Every call can be redone from a shell: :meth:`Sandbox.reproduce`
prints the line.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from addcow_conformance.harness.impl import CallResult, Impl
from addcow_conformance.harness.manifest import Vector, file_sha256, verify_sums
from addcow_conformance.protocol import CMD_APPLY
from addcow_conformance.records import Operation

__all__ = ["Sandbox", "changed_originals", "check_integrity", "scratch_directory"]

#: Where a reproduction line puts its fresh copy of the vector.
_REPRO = "/tmp/addcow-repro"


def scratch_directory(work: Path, index: int, vector_id: str) -> Path:
    """A new, empty scratch directory for the ``index``-th vector of a run."""
    slug = re.sub(r"[^a-z0-9-]+", "_", vector_id.lower())[:80]
    scratch = work / f"{index:04d}-{slug}"
    scratch.mkdir(parents=True)
    return scratch


def _copy_vector(v: Vector, dest: Path) -> None:
    shutil.copytree(v.directory, dest, copy_function=shutil.copyfile)
    for f in v.files:
        if f.synth is None:
            continue
        if f.synth != "zeros":
            raise ValueError(f"file {f.path}: unknown synth kind {f.synth!r}")
        p = dest / f.path
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("wb") as fh:
            fh.truncate(f.size)  # sparse: no data blocks written


class Sandbox:
    """One vector's scratch directory and the adapter calls made in it."""

    def __init__(self, impl: Impl, vector: Vector, scratch: Path, timeout: float) -> None:
        self.impl = impl
        self.v = vector
        self.scratch = scratch
        self.timeout = timeout
        self.vdir = scratch / "v"
        self.image = self.vdir / vector.entry
        self.ops_path = scratch / "ops.json"
        self._n = 0

    def setup(self) -> None:
        _copy_vector(self.v, self.vdir)

    def write_ops(self, ops: Sequence[Operation]) -> None:
        self.ops_path.write_text(json.dumps(ops, indent=1) + "\n", "utf-8")

    def call(self, args: Sequence[str]) -> CallResult:
        self._n += 1
        out = self.scratch / f"call{self._n:02d}-{args[0]}.out"
        return self.impl.call(args, cwd=self.scratch, stdout_path=out, timeout=self.timeout)

    def reproduce(self, args: Sequence[str]) -> str:
        """A shell line that redoes one call on a fresh copy of the pristine vector."""
        dest = _REPRO
        steps = [f"rm -rf {dest}", f"cp -r {shlex.quote(str(self.v.directory))} {dest}"]
        for f in self.v.files:
            if f.synth == "zeros":
                steps.append(f"truncate -s {f.size} {shlex.quote(dest + '/' + f.path)}")
        applied = self.v.kind == "op" and self.ops_path.exists()
        if applied:
            steps.append(f"cp {shlex.quote(str(self.ops_path))} {dest}.ops.json")
        steps.append("cd /tmp")

        def command(words: Sequence[str]) -> str:
            mapped = []
            for a in words:
                if a == str(self.image):
                    mapped.append(f"{dest}/{self.v.entry}")
                elif a == str(self.ops_path):
                    mapped.append(f"{dest}.ops.json")
                else:
                    mapped.append(a)
            return self.impl.command_line(mapped)

        if applied and args[0] != CMD_APPLY:
            # A check of the state after the operations: redo them first.
            steps.append(command([CMD_APPLY, str(self.image), str(self.ops_path)]))
        steps.append(command(args))
        return " && ".join(steps)

    def reference_opener(self) -> Callable[[], Any]:
        """Open the pristine vector with the reference library, for diagnosing read diffs."""

        def open_reference() -> Any:
            # Optional diagnostics only: the judgement never depends on the reference.
            import addcow_ref

            opener = getattr(addcow_ref, "open_image", None)
            if opener is None:  # pragma: no cover - until the public API re-exports it
                opener = importlib.import_module("addcow_ref.engine.image").open_image

            ref_dir = self.scratch / "reference"
            if not ref_dir.exists():
                _copy_vector(self.v, ref_dir)
            return opener(str(ref_dir / self.v.entry))

        return open_reference


def check_integrity(vectors_dir: Path, vectors: Iterable[Vector]) -> list[str]:
    """Verify the selected vectors against SHA256SUMS and the manifest before running."""
    files = []
    problems = []
    for v in vectors:
        for f in v.files:
            if f.synth is not None:
                continue
            p = v.directory / f.path
            files.append(p)
            if not p.is_file():
                problems.append(f"{v.id}: {f.path} is missing")
            elif f.sha256 is not None and file_sha256(p) != f.sha256:
                # Checked here too, or the re-hash after the run would blame the adapter.
                problems.append(f"{v.id}: {f.path} differs from its manifest sha256")
    problems += verify_sums(vectors_dir, files)
    return problems


def changed_originals(v: Vector) -> list[str]:
    """The vector's committed files that no longer match their manifest hash."""
    changed = []
    for f in v.files:
        if f.synth is None and f.sha256 is not None:
            p = v.directory / f.path
            if not p.is_file() or file_sha256(p) != f.sha256:
                changed.append(f.path)
    return changed
