"""A tiny vector suite, in the manifest schema of STYLE (a), for the harness's own tests.

The harness must be testable without the committed ``vectors/`` (built in parallel by another
generator), so this module writes four vectors by hand: every byte and every expectation is
derived here from the format's rules, never from the reference implementation, so a test that
runs the reference adapter over them checks the reference too.

Geometry: 512-byte clusters (cluster_bits 9), a 2048-byte disk = 4 clusters, bitmap ``0x05``
(clusters 0 and 2 allocated), image.raw = 2048 bytes of 0xa5, backing.raw = 1000 bytes of 0x42
(ends inside cluster 1, so its tail and all of cluster 3 read as zeros).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from addcow_ref.format.constants import MAGIC
from addcow_ref.format.forge import forge_v2, name_fields

CLUSTER = 512
SIZE = 2048
IMAGE_BYTE = 0xA5
BACKING_BYTE = 0x42
BACKING_LEN = 1000
BITMAP = bytes([0x05])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def header(**fields: Any) -> bytes:
    image_name, backing_name = b"image.raw", b"backing.raw"
    values: dict[str, Any] = {"virtual_size": SIZE, "cluster_bits": 9, "backing_format": b"raw",
                              **name_fields(image_name, backing_name)}
    values.update(fields)
    area = bytearray(forge_v2(**values).build().ljust(4096, b"\0"))
    area[128 : 128 + len(image_name)] = image_name
    area[137 : 137 + len(backing_name)] = backing_name
    return bytes(area)


def addcow_file(bitmap: bytes = BITMAP, trailing: bytes = b"", **fields: Any) -> bytes:
    return header(**fields) + bitmap + trailing


def image_bytes() -> bytes:
    return bytes([IMAGE_BYTE]) * SIZE


def backing_bytes() -> bytes:
    return bytes([BACKING_BYTE]) * BACKING_LEN


def guest(bitmap: int, image: bytes, backing: bytes) -> bytes:
    """The guest disk by the spec's read rule, cluster by cluster."""
    out = bytearray()
    for c in range(SIZE // CLUSTER):
        lo, hi = c * CLUSTER, (c + 1) * CLUSTER
        if bitmap >> c & 1:
            out += image[lo:hi]
        else:
            out += backing[lo:hi].ljust(CLUSTER, b"\0")
    return bytes(out)


def extents(bitmap: int) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for c in range(SIZE // CLUSTER):
        alloc = bool(bitmap >> c & 1)
        if runs and runs[-1]["allocated"] == alloc:
            runs[-1]["length"] += CLUSTER
        else:
            runs.append({"start": c * CLUSTER, "length": CLUSTER, "allocated": alloc})
    return runs


def info(bitmap: int, **over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "version": 2,
        "header_length": 128,
        "virtual_size": SIZE,
        "cluster_bits": 9,
        "bitmap_offset": 4096,
        "image_file": "image.raw",
        "backing_file": "backing.raw",
        "image_format": "raw",
        "backing_format": "raw",
        "incompatible_features": 0,
        "compatible_features": 0,
        "autoclear_features": 0,
        "allocated_clusters": bin(bitmap).count("1"),
    }
    d.update(over)
    return d


def _file(role: str, path: str, data: bytes) -> dict[str, Any]:
    return {"role": role, "path": path, "size": len(data), "sha256": sha(data)}


def _vector(
    root: Path,
    vid: str,
    *,
    kind: str,
    result: str,
    files: dict[str, tuple[str, bytes]],
    expect: dict[str, Any],
    exercises: list[str],
    violates: list[str] = (),  # type: ignore[assignment]
    flags: list[str] = (),  # type: ignore[assignment]
    requires: list[str] = ("info",),  # type: ignore[assignment]
) -> dict[str, Any]:
    d = root / vid
    d.mkdir(parents=True)
    entries = []
    for path, (role, data) in files.items():
        (d / path).write_bytes(data)
        entries.append(_file(role, path, data))
    return {
        "id": vid,
        "description": f"harness test vector {vid}",
        "spec": "2.0",
        "kind": kind,
        "result": result,
        "exercises": list(exercises),
        "violates": list(violates),
        "flags": list(flags),
        "requires": list(requires),
        "entry": "image.add-cow",
        "files": entries,
        "expect": expect,
        "since": "1.0.0",
        "generator": "tests.conformance.harness_suite",
    }


WRITE_AT, WRITE_LEN, WRITE_BYTE = 508, 8, 0x11


def after_write() -> tuple[bytes, bytes]:
    """(image.raw, add-cow file) after writing 8 x 0x11 at 508: straddles clusters 0 and 1;
    cluster 1 is unallocated, so its tail is copied from the backing file (zeros past its end)."""
    image = bytearray(image_bytes())
    cow = guest(0x05, image_bytes(), backing_bytes())
    image[CLUSTER : 2 * CLUSTER] = cow[CLUSTER : 2 * CLUSTER]
    image[WRITE_AT : WRITE_AT + WRITE_LEN] = bytes([WRITE_BYTE]) * WRITE_LEN
    return bytes(image), addcow_file(bytes([0x07]))


def build_suite(root: Path, *, sums: bool = True) -> Path:
    """Write the four-vector suite (manifest.json, SHA256SUMS, vector dirs) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    base = {
        "image.raw": ("image", image_bytes()),
        "backing.raw": ("backing", backing_bytes()),
    }
    g = guest(0x05, image_bytes(), backing_bytes())
    new_image, new_cow = after_write()
    new_guest = guest(0x07, new_image, backing_bytes())
    vectors = [
        _vector(
            root,
            "read/backing-ends-mid-cluster",
            kind="read",
            result="valid",
            files={"image.add-cow": ("add-cow", addcow_file()), **base},
            expect={
                "info": info(0x05),
                "extents": extents(0x05),
                "guest_sha256": sha(g),
                "probes": [{"offset": 990, "length": 40, "sha256": sha(g[990:1030])}],
            },
            exercises=["BMP-BIT-ORDER", "READ-PAST-BACKING-EOF"],
            requires=["info", "read", "map"],
        ),
        _vector(
            root,
            "header/magic-last-byte-fe",
            kind="parse",
            result="invalid",
            files={
                "image.add-cow": ("add-cow", addcow_file(magic=MAGIC[:7] + b"\xfe")),
                **base,
            },
            expect={"refusal": {"rule": "HDR-MAGIC"}},
            exercises=[],
            violates=["HDR-MAGIC"],
        ),
        _vector(
            root,
            "ops/write-straddles-clusters",
            kind="op",
            result="valid",
            files={"image.add-cow": ("add-cow", addcow_file()), **base},
            expect={
                "ops": [
                    {"op": "write", "offset": WRITE_AT, "length": WRITE_LEN, "pattern": WRITE_BYTE},
                    {"op": "flush"},
                ],
                "after": {
                    "files": [
                        _file("add-cow", "image.add-cow", new_cow),
                        _file("image", "image.raw", new_image),
                        _file("backing", "backing.raw", backing_bytes()),
                    ],
                    "info": info(0x07),
                    "extents": extents(0x07),
                    "guest_sha256": sha(new_guest),
                },
            },
            exercises=["WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT"],
            requires=["apply:write", "read", "map", "info"],
        ),
        _vector(
            root,
            "bitmap/trailing-bytes",
            kind="parse",
            result="acceptable",
            files={"image.add-cow": ("add-cow", addcow_file(trailing=b"\x01" * 7)), **base},
            expect={"info": info(0x05)},
            exercises=[],
            violates=["BMP-TRAILING"],
            flags=["trailing-bytes"],
        ),
    ]
    manifest = {
        "schema": "manifest.schema.json",
        "manifest_version": "1.0.0",
        "suite_version": "1.0.0",
        "spec_versions": ["2.0"],
        "generator": {"name": "tests.conformance.harness_suite", "version": "0"},
        "rules": {},
        "flags": {
            "trailing-bytes": {
                "description": "bytes after the bitmap",
                "policy_choices": ["accept", "refuse"],
            }
        },
        "features": {},
        "retired": [],
        "counts": {},
        "vectors": vectors,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    if sums:
        lines = sorted(
            f"{sha(p.read_bytes())}  {p.relative_to(root).as_posix()}"
            for p in root.rglob("*")
            if p.is_file() and p.name not in ("manifest.json", "SHA256SUMS")
        )
        (root / "SHA256SUMS").write_text("\n".join(lines) + "\n", "ascii")
    return root
