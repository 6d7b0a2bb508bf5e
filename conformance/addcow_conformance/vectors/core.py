"""The in-memory form of one vector and the helpers that fill in its expectations.

A generator function in an area module returns :class:`Vector` objects; ``manifest.py`` turns
them into files and manifest entries. Expectations (decoded header, extents, guest hashes,
checker findings) are computed here from the generator's own inputs and the oracle in
``model.py``, never by running the reference implementation.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import cast

from addcow_conformance.records import (
    INFO_KEYS,
    AfterFile,
    CheckerBlock,
    ExpectBlock,
    ExpectedFinding,
    FileEntry,
    InfoRecord,
    Probe,
    VectorEntry,
)
from addcow_conformance.vectors.builder import AddCow, V1File
from addcow_conformance.vectors.model import Disk, sha256
from addcow_ref.format.rules import get_rule

__all__ = [
    "File",
    "Vector",
    "finding",
    "info_v1",
    "info_v2",
    "probes",
    "zeros_sha256",
]



def zeros_sha256(size: int) -> str:
    h = hashlib.sha256()
    block = bytes(1 << 20)
    left = size
    while left:
        n = min(left, len(block))
        h.update(block[:n])
        left -= n
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class File:
    """One file of a vector: committed bytes, or ``synth="zeros"`` of ``size`` (made sparse)."""

    role: str
    path: str
    data: bytes | None = None
    size: int = 0
    synth: str | None = None

    @property
    def length(self) -> int:
        return len(self.data) if self.data is not None else self.size

    @property
    def sha256(self) -> str:
        if self.data is not None:
            return sha256(self.data)
        return zeros_sha256(self.size)

    def unchanged(self) -> AfterFile:
        """The ``after.files`` entry of this file left exactly as it was."""
        return {"role": self.role, "path": self.path, "size": self.length,
                "sha256": self.sha256}

    def entry(self) -> FileEntry:
        out: FileEntry = {"role": self.role, "path": self.path, "size": self.length,
                               "sha256": self.sha256}
        if self.synth:
            out["synth"] = self.synth
        return out


@dataclasses.dataclass
class Vector:
    id: str
    description: str
    kind: str
    result: str
    files: list[File]
    expect: ExpectBlock
    findings: list[ExpectedFinding]
    exercises: list[str] = dataclasses.field(default_factory=list)
    violates: list[str] = dataclasses.field(default_factory=list)
    flags: list[str] = dataclasses.field(default_factory=list)
    requires: list[str] = dataclasses.field(default_factory=list)
    spec: str = "2.0"
    entry: str = "image.add-cow"
    generator: str = ""
    #: Provenance for the twin test (not published): the valid vector this one was made from
    #: and the header fields rewritten, the only bytes in which the two may differ.
    twin_of: str | None = None
    twin_fields: tuple[str, ...] = ()

    @property
    def directory(self) -> str:
        return ("v1/" if self.spec == "1" else "v2/") + self.id

    def checker(self) -> CheckerBlock:
        severities = {f["severity"] for f in self.findings}
        code = 2 if "error" in severities else 3 if "warning" in severities else 0
        return {"exit_code": code, "findings": self.findings}

    def manifest_entry(self, since: str, changed: str) -> VectorEntry:
        """The published entry; ``since``/``changed`` come from the suite's history."""
        return {
            "id": self.id,
            "description": self.description,
            "spec": self.spec,
            "kind": self.kind,
            "result": self.result,
            "exercises": sorted(set(self.exercises)),
            "violates": sorted(set(self.violates)),
            "flags": sorted(set(self.flags)),
            "requires": sorted(set(self.requires)),
            "entry": self.entry,
            "files": [f.entry() for f in self.files],
            "expect": self.expect,
            "checker": self.checker(),
            "since": since,
            "changed": changed,
            "generator": self.generator,
        }


def finding(rule: str, *, offset: int | None = None, field: str | None = None,
            file_role: str = "add-cow") -> ExpectedFinding:
    """One expected checker finding; the severity is the registry's, never chosen here."""
    return {"rule": rule, "severity": get_rule(rule).severity, "file_role": file_role,
            "offset": offset, "field": field}


def _name(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "surrogateescape")


def _fmt_name(raw: str | bytes | None) -> str:
    if raw is None:
        return ""
    b = raw.encode("ascii") if isinstance(raw, str) else raw
    return b.split(b"\0", 1)[0].decode("ascii", "backslashreplace")


def _in_manifest_order(info: InfoRecord) -> InfoRecord:
    """``info`` with its keys in the order of ``records.INFO_KEYS``, the manifest's."""
    return cast(InfoRecord, {k: info[k] for k in INFO_KEYS})  # type: ignore[literal-required]


def info_v2(a: AddCow, allocated: int | None = None) -> InfoRecord:
    """The decoded header as ``info`` reports it, from the generator's inputs."""
    has_backing = a.backing_name is not None
    bfmt = _fmt_name(a.backing_format) if a.backing_format is not None else (
        "raw" if has_backing else "")
    return _in_manifest_order({
        "version": 2,
        "header_length": a.header_length,
        "incompatible_features": a.incompatible_features,
        "compatible_features": a.compatible_features,
        "autoclear_features": a.autoclear_features,
        "virtual_size": a.virtual_size,
        "bitmap_offset": a.bitmap_offset,
        "cluster_bits": a.cluster_bits,
        "cluster_size": 1 << a.cluster_bits,
        "cluster_count": a.cluster_count,
        "image_file": _name(a.image_name),
        "image_format": _fmt_name(a.image_format),
        "backing_file": _name(a.backing_name),
        "backing_format": bfmt or None,
        "allocated_clusters": len(a.bits) if allocated is None else allocated,
    })


def info_v1(v: V1File) -> InfoRecord:
    has_backing = bool(v.backing_name)
    return _in_manifest_order({
        "version": 1,
        "header_length": 2560,
        "incompatible_features": 0,
        "compatible_features": 0,
        "autoclear_features": 0,
        "virtual_size": v.virtual_size,
        "bitmap_offset": 2560,
        "cluster_bits": 16,
        "cluster_size": 65536,
        "cluster_count": v.cluster_count,
        "image_file": _name(v.image_name),
        "image_format": "raw",
        "backing_file": _name(v.backing_name) if has_backing else None,
        "backing_format": "raw" if has_backing else None,
        "allocated_clusters": len(v.bits),
    })


def probes(guest: bytes, ranges: list[tuple[int, int]]) -> list[Probe]:
    out: list[Probe] = []
    for off, length in ranges:
        if off < 0 or length <= 0 or off + length > len(guest):
            raise ValueError(f"probe [{off}, {off + length}) is outside the {len(guest)}-byte disk")
        out.append({"offset": off, "length": length, "sha256": sha256(guest[off:off + length])})
    return out


def read_expect(info: InfoRecord, disk: Disk,
                ranges: list[tuple[int, int]] | None = None) -> ExpectBlock:
    """``expect`` of a read vector: header, extents, guest hash and straddling probes."""
    guest = disk.guest()
    if ranges is None:
        ranges = default_probes(disk)
    return {
        "info": info,
        "extents": disk.extents(),
        "guest_sha256": sha256(guest),
        "probes": probes(guest, ranges),
    }


def default_probes(disk: Disk) -> list[tuple[int, int]]:
    """Reads that straddle each cluster boundary (up to 4) plus the last sector."""
    cs, vs = disk.cluster_size, disk.virtual_size
    out: list[tuple[int, int]] = []
    for c in range(1, min(disk.cluster_count, 5)):
        start = c * cs - 100
        out.append((start, min(200, vs - start)))
    if vs >= 512:
        out.append((vs - 512, 512))
    elif vs:
        out.append((0, vs))
    return out
