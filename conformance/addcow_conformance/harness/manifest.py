"""The harness's typed view of ``vectors/manifest.json`` and of ``SHA256SUMS``.

The manifest, not the generator's code, is the interface between the suite and the harness, so
the harness reads only the JSON; its records (``addcow_conformance.records``) are the ones the
generator writes. Only the fields the harness acts on are lifted into attributes; the whole
entry stays available as ``raw`` so a newer manifest with extra fields still runs. A manifest
that lacks a field the harness needs is a ``ManifestError``, reported once, not a traceback per
vector.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from addcow_conformance.records import ExpectBlock

__all__ = [
    "Manifest",
    "ManifestError",
    "Vector",
    "VectorFile",
    "file_sha256",
    "load_manifest",
    "verify_sums",
]

_CHUNK = 1 << 20


class ManifestError(Exception):
    """The vectors directory or its manifest cannot be used as a suite."""


@dataclasses.dataclass(frozen=True)
class VectorFile:
    role: str
    path: str
    size: int
    sha256: str | None
    synth: str | None


@dataclasses.dataclass(frozen=True)
class Vector:
    id: str
    description: str
    spec: str
    kind: str
    result: str
    exercises: tuple[str, ...]
    violates: tuple[str, ...]
    flags: tuple[str, ...]
    requires: tuple[str, ...]
    entry: str
    files: tuple[VectorFile, ...]
    expect: ExpectBlock
    directory: Path
    raw: Mapping[str, Any]

    @property
    def rules(self) -> tuple[str, ...]:
        """Every rule the vector is about: what it breaks first, then what it obeys."""
        return self.violates + tuple(r for r in self.exercises if r not in self.violates)


@dataclasses.dataclass(frozen=True)
class Manifest:
    path: Path
    sha256: str
    suite_version: str
    manifest_version: str
    flags: Mapping[str, Any]
    vectors: tuple[Vector, ...]
    raw: Mapping[str, Any]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in chunks so a huge guest never sits in memory."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _strs(entry: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"vector {entry.get('id')!r}: {key!r} must be a list of strings")
    return tuple(value)


def _vector_directory(root: Path, vid: str, spec: str, entry: Mapping[str, Any]) -> Path:
    """Where a vector's files live: ``<root>/<id>``, or ``<root>/v<N>/<id>`` (the generator's
    layout, one directory per major spec version)."""
    candidates: list[Path] = []
    for key in ("dir", "path", "directory"):
        value = entry.get(key)
        if isinstance(value, str):
            candidates.append(root / value)
    candidates += [root / vid, root / f"v{spec.split('.')[0]}" / vid]
    for c in candidates:
        if c.is_dir():
            return c
    looked = ", ".join(map(str, candidates))
    raise ManifestError(f"vector {vid!r}: no directory (looked for {looked})")


def _parse_vector(root: Path, entry: object) -> Vector:
    if not isinstance(entry, Mapping):
        raise ManifestError(f"vector entry {entry!r:.40}: not a JSON object")
    try:
        vid = entry["id"]
        files = tuple(
            VectorFile(
                role=str(f["role"]),
                path=str(f["path"]),
                size=int(f["size"]),
                sha256=f.get("sha256"),
                synth=f.get("synth"),
            )
            for f in entry["files"]
        )
        spec = str(entry.get("spec", "2.0"))
        return Vector(
            id=str(vid),
            description=str(entry.get("description", "")),
            spec=spec,
            kind=str(entry["kind"]),
            result=str(entry["result"]),
            exercises=_strs(entry, "exercises"),
            violates=_strs(entry, "violates"),
            flags=_strs(entry, "flags"),
            requires=_strs(entry, "requires"),
            entry=str(entry.get("entry", "image.add-cow")),
            files=files,
            expect=cast(ExpectBlock, dict(entry.get("expect", {}))),
            directory=_vector_directory(root, str(vid), spec, entry),
            raw=entry,
        )
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as e:
        # OverflowError: ``int(Infinity)``; AttributeError: a nested record that is not an
        # object (``f.get`` on a list). Both are a malformed manifest, not a harness bug.
        raise ManifestError(f"vector {entry.get('id', '?')!r}: malformed entry ({e!r})") from e


def load_manifest(vectors_dir: Path) -> Manifest:
    """Read ``manifest.json`` of a vectors directory."""
    path = vectors_dir / "manifest.json"
    try:
        blob = path.read_bytes()
        data = json.loads(blob)
    except OSError as e:
        raise ManifestError(f"{path}: cannot read the manifest ({e.strerror})") from e
    except (ValueError, RecursionError) as e:
        # RecursionError: nesting deeper than the interpreter's limit (json.loads recurses).
        raise ManifestError(f"{path}: not JSON ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("vectors"), list):
        raise ManifestError(f"{path}: no 'vectors' list")
    if not isinstance(data.get("flags", {}), dict):
        raise ManifestError(f"{path}: 'flags' is not an object")
    vectors = tuple(_parse_vector(vectors_dir, v) for v in data["vectors"])
    ids = [v.id for v in vectors]
    if len(set(ids)) != len(ids):
        raise ManifestError(f"{path}: duplicate vector ids")
    return Manifest(
        path=path,
        sha256=hashlib.sha256(blob).hexdigest(),
        suite_version=str(data.get("suite_version", "0.0.0")),
        manifest_version=str(data.get("manifest_version", "0.0.0")),
        flags=dict(data.get("flags", {})),
        vectors=vectors,
        raw=data,
    )


def _read_sums(path: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise ManifestError(f"{path}:{n}: not in sha256sum format: {line!r}")
        sums[name.removeprefix("*").removeprefix("./")] = digest
    return sums


def verify_sums(vectors_dir: Path, only: Iterable[Path] | None = None) -> list[str]:
    """Problems found checking the suite against ``SHA256SUMS`` (empty list = intact).

    Catches a partial or line-ending-mangled checkout before it turns into a thousand bogus
    failures. ``only`` limits the check to the files of the selected vectors. Without a
    ``SHA256SUMS`` the manifest's own per-file hashes are the only integrity check.
    """
    sums_path = vectors_dir / "SHA256SUMS"
    if not sums_path.is_file():
        return []
    sums = _read_sums(sums_path)
    wanted: set[str] | None = None
    if only is not None:
        wanted = {p.relative_to(vectors_dir).as_posix() for p in only}
    problems = []
    for name, digest in sorted(sums.items()):
        if wanted is not None and name not in wanted:
            continue
        p = vectors_dir / name
        if not p.is_file():
            problems.append(f"{name}: listed in SHA256SUMS but missing")
        elif file_sha256(p) != digest:
            problems.append(f"{name}: SHA-256 differs from SHA256SUMS (mangled checkout?)")
    return problems
