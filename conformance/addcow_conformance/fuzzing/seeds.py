"""Seed corpora, generated at run time into a scratch corpus directory (nothing is committed):
the add-cow files and the manifest of the golden vectors, plus a few files forged from the
schema that name the scratch directory's own files, so mutations start from images that open.

A vector's add-cow file names its neighbours (``image.raw``, ``backing.raw``, ``mid.add-cow``,
...); the scratch directory (:mod:`~addcow_conformance.fuzzing.common`) holds files of the common
names, so most vector seeds reach the reader's I/O paths and not only its header checks.
"""

from __future__ import annotations

import json
from pathlib import Path

from addcow_conformance.fuzzing.common import BACKING_NAME, IMAGE_NAME, NEIGHBOUR_SIZE

__all__ = [
    "addcow_seeds",
    "forged_seeds",
    "manifest_seeds",
    "vector_addcow_files",
    "vectors_dir",
    "write_seeds",
]


def vectors_dir() -> Path | None:
    """The vectors the harness would use by default, or None when this install has none."""
    from addcow_conformance.packaged import SuiteNotFound, default_vectors_dir

    try:
        return default_vectors_dir()
    except SuiteNotFound:
        return None


def _seed_name(vector_id: str) -> str:
    return vector_id.replace("/", "-")


def vector_addcow_files(root: Path | None = None) -> dict[str, bytes]:
    """Every ``image.add-cow`` (and other add-cow file) of the vectors, by a seed name made of
    the vector's path; duplicate contents are kept once."""
    root = vectors_dir() if root is None else root
    if root is None:
        return {}
    out: dict[str, bytes] = {}
    seen: set[bytes] = set()
    for path in sorted(root.glob("v*/**/*.add-cow")):
        data = path.read_bytes()
        if data in seen:
            continue
        seen.add(data)
        out[_seed_name(path.relative_to(root).as_posix())] = data
    return out


def forged_seeds() -> dict[str, bytes]:
    """Valid v2 files (with a raw backing file; all allocated) and a v1 file, naming the scratch
    directory's files."""
    from addcow_ref.format.forge import forge_v1, forge_v2, name_fields

    image, backing = IMAGE_NAME.encode(), BACKING_NAME.encode()
    seeds: dict[str, bytes] = {}
    h = forge_v2(virtual_size=NEIGHBOUR_SIZE, backing_format=b"raw",
                 **name_fields(image, backing))
    start = int(h.bitmap_offset)
    seeds["forged-v2-backing"] = (h.build() + image + backing).ljust(start, b"\0") + b"\x55\x05"
    h = h.replace(backing_name_offset=0, backing_name_length=0, backing_format=bytes(16),
                  compatible_features=1, cluster_bits=9)
    seeds["forged-v2-all-allocated"] = (h.build() + image).ljust(start, b"\0") + b"\xff" * 256
    v1 = forge_v1(backing_file=backing, image_file=image)
    seeds["forged-v1"] = v1.build() + b"\x0f\x00"
    return seeds


def addcow_seeds(root: Path | None = None) -> dict[str, bytes]:
    """The seeds of the add-cow file targets: forged files, then every vector's add-cow file."""
    return {**forged_seeds(), **vector_addcow_files(root)}


def manifest_seeds(root: Path | None = None, max_len: int | None = None) -> dict[str, bytes]:
    """``manifest.json`` documents: one per vector (the committed manifest with only that
    vector, compact, and without the rule table, which the loader keeps but never reads: with
    it every seed would be 30 KiB), one with no vectors, and one not JSON. Seeds longer than
    ``max_len`` are left out: libFuzzer would cut them into invalid JSON."""
    root = vectors_dir() if root is None else root
    seeds = {"manifest-empty": b'{"vectors": []}', "manifest-not-json": b"{"}
    path = None if root is None else root / "manifest.json"
    if path is None or not path.is_file():
        return seeds
    data = json.loads(path.read_bytes())
    data.pop("rules", None)
    for entry in data.get("vectors", []):
        one = json.dumps({**data, "vectors": [entry]}, separators=(",", ":")).encode()
        if max_len is None or len(one) <= max_len:
            seeds[f"manifest-{_seed_name(str(entry.get('id')))}"] = one
    return seeds


def write_seeds(directory: Path, seeds: dict[str, bytes]) -> int:
    """Write ``seeds`` into ``directory`` (made if missing); return how many were written."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (directory / name).write_bytes(data)
    return len(seeds)
