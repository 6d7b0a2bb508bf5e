"""Write the vector directory: files, manifest.json, schema, SHA256SUMS, lists/ and README.

Everything is a pure function of the vector list: sorted iteration, canonical JSON (UTF-8,
2-space indent, the schema's key order, trailing newline), no clocks, so two runs on any two
machines write the same bytes and a test can compare them with what is committed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import addcow_ref
from addcow_conformance.protocol import REQUIREMENTS
from addcow_conformance.records import FlagInfo, ManifestDoc, RuleInfo
from addcow_conformance.vectors.core import Vector
from addcow_conformance.vectors.history import (
    check_current,
    expectation_digest,
    load_history,
    provenance,
    render_changelog,
    retired_ids,
)
from addcow_conformance.vectors.schema import build_schema
from addcow_ref.format.rules import all_rules

__all__ = [
    "AREAS",
    "FEATURES",
    "FLAGS",
    "GENERATED_TOP",
    "all_vectors",
    "build_manifest",
    "canonical_json",
    "generate",
    "schema_text",
    "vector_digests",
]

MANIFEST_VERSION = "1.0.0"

#: Area modules, in the order their producers run (the output is sorted by id anyway).
AREAS = ("header", "features", "names", "bitmap", "read", "ops", "writers", "chainops", "chains",
         "files", "legacy", "limits", "big")

#: Top-level entries of the output directory that the generator owns and rewrites.
GENERATED_TOP = ("v1", "v2", "lists", "manifest.json", "manifest.schema.json", "SHA256SUMS",
                 "README.md", "CHANGELOG.md", ".gitattributes")

FLAGS: dict[str, FlagInfo] = {
    "multi-violation": {
        "description": "The vector breaks more than one rule because the broken value makes "
                       "another rule unsatisfiable (e.g. a bitmap_offset below 4096 cannot be a "
                       "non-zero multiple of 4096). A reader may cite any of them.",
        "policy_choices": ["refuse"],
    },
    "trailing-data": {
        "description": "Bytes follow the bitmap. Readers must ignore them (BMP-TRAILING); a "
                       "checker warns.",
        "policy_choices": ["accept"],
    },
    "unknown-compatible-bit": {
        "description": "A compatible feature bit that 2.0 does not define is set. Readers must "
                       "ignore it; a checker warns.",
        "policy_choices": ["accept"],
    },
    "unknown-autoclear-bit": {
        "description": "An autoclear feature bit that 2.0 does not define is set. Readers "
                       "ignore it; a writer that modifies the image must clear it; a checker "
                       "warns.",
        "policy_choices": ["accept"],
    },
    "padding-bits-set": {
        "description": "Padding bits of the last bitmap byte (past cluster_count) are set, the "
                       "trace of an interrupted grow or shrink. Readers must ignore them "
                       "(BMP-PADDING, reader duty ignore); a checker warns.",
        "policy_choices": ["accept"],
    },
    "image-file-longer": {
        "description": "The image file is longer than virtual_size. Readers must ignore the "
                       "bytes past the end (IMG-LENGTH, reader duty ignore); a checker warns.",
        "policy_choices": ["accept"],
    },
    "name-not-confined": {
        "description": "A name is absolute or climbs above the add-cow file's directory. "
                       "Readers resolve and open it (NAME-CONFINED, reader duty ignore); a "
                       "checker warns.",
        "policy_choices": ["accept"],
    },
    "backing-unchecked-all-allocated": {
        "description": "all_allocated is set and the backing chain is broken. A reader may "
                       "skip the chain and read the image file (READ-BACKING-SKIP) or refuse "
                       "the image (BACK-EXISTS); both conform.",
        "policy_choices": ["accept", "refuse"],
    },
    "unknown-backing-format": {
        "description": "backing_format names a format other than raw or add-cow. A reader that "
                       "does not support it must refuse; one that does may open it (every "
                       "cluster is allocated, so the guest contents are still defined).",
        "policy_choices": ["accept", "refuse"],
    },
}

#: What a vector's ``requires`` may name: the adapter protocol's capability flags and features.
FEATURES: dict[str, str] = REQUIREMENTS


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def schema_text() -> str:
    return canonical_json(build_schema(sorted(FLAGS), sorted(FEATURES)))


def all_vectors() -> list[Vector]:
    """Every vector of every area module, sorted by id; ids must be unique."""
    out: list[Vector] = []
    for area in AREAS:
        mod = importlib.import_module(f"{__package__}.{area}")
        for name in sorted(vars(mod)):
            fn = getattr(mod, name)
            if callable(fn) and getattr(fn, "is_producer", False) and fn.__module__ == mod.__name__:
                out.extend(fn())
    ids = Counter(v.id for v in out)
    dup = sorted(i for i, n in ids.items() if n > 1)
    if dup:
        raise ValueError(f"duplicate vector ids: {', '.join(dup)}")
    return sorted(out, key=lambda v: v.id)


def _rules_map() -> dict[str, RuleInfo]:
    return {
        r.id: {
            "title": r.title,
            "level": r.level,
            "severity": r.severity,
            "applies_to": r.applies_to,
            "anchor": r.url_path,
            "spec_since": r.spec_since,
            "testability": r.testability,
            "reader": r.reader,
            "unbreakable": r.unbreakable,
        }
        for r in sorted(all_rules().values(), key=lambda r: r.id)
        if r.status == "active"
    }


def vector_digests(vectors: list[Vector]) -> dict[str, str]:
    """Vector id -> digest of its expectation, as ``history.json`` records them."""
    return {v.id: expectation_digest(v.manifest_entry("0.0.0", "0.0.0")) for v in vectors}


def build_manifest(vectors: list[Vector]) -> ManifestDoc:
    """The manifest of ``vectors``; raises ``HistoryError`` if an expectation differs from the
    latest suite version recorded in ``history.json`` (no silent changes)."""
    kinds = Counter(v.kind for v in vectors)
    results = Counter(v.result for v in vectors)
    history = load_history()
    entries = [v.manifest_entry("0.0.0", "0.0.0") for v in vectors]
    suite = check_current(history, {e["id"]: expectation_digest(e) for e in entries})
    prov = provenance(history)
    for e in entries:
        e["since"], e["changed"] = prov[e["id"]]
    return {
        "schema": "manifest.schema.json",
        "manifest_version": MANIFEST_VERSION,
        "suite_version": suite,
        "spec_versions": ["1", "2.0"],
        "generator": {"name": "addcow-vectors", "version": addcow_ref.__version__},
        "rules": _rules_map(),
        "flags": FLAGS,
        "features": FEATURES,
        "retired": retired_ids(history),
        "counts": {
            "total": len(vectors),
            "kind": {k: kinds.get(k, 0) for k in ("parse", "read", "op")},
            "result": {r: results.get(r, 0) for r in ("valid", "invalid", "acceptable")},
        },
        "vectors": entries,
    }


def _lists(vectors: list[Vector]) -> dict[str, str]:
    out: dict[str, list[str]] = {f"{r}.txt": [] for r in ("valid", "invalid", "acceptable")}
    for v in vectors:
        out[f"{v.result}.txt"].append(v.directory)
        for rule in sorted(set(v.exercises)):
            out.setdefault(f"by-rule/{rule}.txt", []).append(f"{v.directory}\texercises")
        for rule in sorted(set(v.violates)):
            out.setdefault(f"by-rule/{rule}.txt", []).append(f"{v.directory}\tviolates")
    return {k: "".join(line + "\n" for line in sorted(lines)) for k, lines in sorted(out.items())}


def _readme(manifest: ManifestDoc) -> str:
    c = manifest["counts"]
    kinds = ", ".join(f"{n} {k}" for k, n in c["kind"].items())
    results = ", ".join(f"{n} {r}" for r, n in c["result"].items())
    features = "\n".join(f"- `{k}`: {v}" for k, v in manifest["features"].items())
    flags = "\n".join(f"- `{k}` ({', '.join(v['policy_choices'])}): {v['description']}"
                      for k, v in manifest["flags"].items())
    return f"""# add-cow golden test vectors

Generated by `addcow-vectors generate` (suite {manifest["suite_version"]}, manifest format
{manifest["manifest_version"]}); do not edit by hand: change the generator in
`conformance/addcow_conformance/vectors/` and regenerate. A test fails if these files differ from a
fresh run.

{c["total"]} vectors: {kinds}; {results}.

## Layout

- `manifest.json` holds every expectation; `manifest.schema.json` is its JSON Schema (2020-12).
- A vector's directory is `v2/<id>` (spec "2.0") or `v1/<id>` (spec "1"); all its file paths
  are relative to that directory, so copy the directory as a unit before writing to it.
- Files listed with `"synth": "zeros"` are not committed: create them as sparse files of
  `size` zero bytes (`truncate -s SIZE PATH`) before use; their `sha256` is that of the zeros.
- `SHA256SUMS` lists every committed file (`sha256sum -c SHA256SUMS`).
- `lists/valid.txt`, `lists/invalid.txt`, `lists/acceptable.txt` and `lists/by-rule/RULE.txt`
  list vector directories for shell users.

## Results

- `valid`: a conforming reader opens it and returns exactly `expect`; a checker is silent.
- `invalid`: a conforming reader refuses it; `violates` names the broken rule(s) and
  `expect.refusal.rule` the one to cite; the checker reports exactly those errors.
- `acceptable`: the file breaks only SHOULD-level or warning rules; `flags` say which outcomes
  (`policy_choices`) are allowed.

`op` vectors list operations in `expect.ops` and the files after applying them in
`expect.after`; when `expect.refusal` is present on an op vector the operation must be refused
and every file left unchanged.

## Requirements and flags

A vector's `requires` lists what an implementation must support to run it; a harness skips
(does not fail) a vector whose requirements the implementation does not declare:

{features}

A vector's `flags` qualify its result, with the outcomes each allows:

{flags}

Run an implementation over every vector with
`addcow-conformance run --impl 'COMMAND' --vectors vectors`.

## Versioning

`suite_version` is semver: major when an expectation changes or a vector is removed, minor when
vectors are added. Ids never change and are never reused (`retired`). Each vector's `since`
is the suite version that introduced it and `changed` the one that last changed its expectation
(equal to `since` if it never changed); `CHANGELOG.md` lists the ids added, changed and retired
by each version.
"""


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def iter_files(root: Path) -> Iterator[Path]:
    for p in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        if p.is_file() and p.name != "SHA256SUMS" and p.relative_to(root).parts[0] in GENERATED_TOP:
            yield p


def generate(root: Path) -> ManifestDoc:
    """(Re)write the generated part of ``root`` and return the manifest."""
    vectors = all_vectors()
    manifest = build_manifest(vectors)
    root.mkdir(parents=True, exist_ok=True)
    for name in GENERATED_TOP:
        p = root / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    for v in vectors:
        d = root / v.directory
        for f in v.files:
            if f.data is None:
                continue
            target = d / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.data)
        d.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(canonical_json(manifest), "utf-8")
    (root / "manifest.schema.json").write_text(schema_text(), "utf-8")
    (root / ".gitattributes").write_text("* -text\n", "utf-8")
    (root / "README.md").write_text(_readme(manifest), "utf-8")
    (root / "CHANGELOG.md").write_text(render_changelog(load_history()), "utf-8")
    for rel, text in _lists(vectors).items():
        p = root / "lists" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, "utf-8")
    sums = "".join(f"{_sha256_file(p)}  {p.relative_to(root).as_posix()}\n"
                   for p in iter_files(root))
    (root / "SHA256SUMS").write_text(sums, "utf-8")
    return manifest
