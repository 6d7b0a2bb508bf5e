"""Typed records of the vectors manifest: what the generator writes and the harness reads.

One definition for both sides, so a key the generator renames is a type error in the harness,
not a silent skip. They mirror ``manifest.schema.json`` (``vectors/schema.py``), which is what
implementations in other languages validate against; the schema stays the contract on the
wire, these records are its Python spelling. The harness reads manifests it did not write, so it
still checks values at run time; the records say what a well-formed manifest holds.
"""

from __future__ import annotations

from typing import NotRequired, Required, TypedDict

from addcow_ref.ops.info import INFO_FIELDS

__all__ = [
    "INFO_KEYS",
    "REQUIRED_INFO_KEYS",
    "AfterBlock",
    "AfterFile",
    "ByteRange",
    "CheckerBlock",
    "Counts",
    "ExpectBlock",
    "ExpectedFinding",
    "Extent",
    "FileEntry",
    "FlagInfo",
    "GeneratorInfo",
    "InfoRecord",
    "ManifestDoc",
    "Operation",
    "Probe",
    "RefusalBlock",
    "RuleInfo",
    "VectorEntry",
    "compared_bytes",
]


class FileEntry(TypedDict):
    """One file of a vector, relative to its directory; ``synth: zeros`` is not committed."""

    role: str
    path: str
    size: int
    sha256: str
    synth: NotRequired[str]


class Extent(TypedDict):
    """One merged run of the map: ``[start, start + length)`` allocated or not."""

    start: int
    length: int
    allocated: bool


class Probe(TypedDict):
    """A read of ``length`` guest bytes at ``offset`` and the SHA-256 it must return."""

    offset: int
    length: int
    sha256: str


class InfoRecord(TypedDict):
    """The decoded header as an implementation's ``info`` reports it: spec field names, names
    as text, None for no backing file. The keys, in manifest order, are ``INFO_KEYS``."""

    version: int
    header_length: int
    incompatible_features: int
    compatible_features: int
    autoclear_features: int
    virtual_size: int
    bitmap_offset: int
    cluster_bits: int
    cluster_size: int
    cluster_count: int
    image_file: str | None
    image_format: str
    backing_file: str | None
    backing_format: str | None
    allocated_clusters: int


#: The info object's keys, in the order the manifest publishes them.
INFO_KEYS: tuple[str, ...] = tuple(InfoRecord.__annotations__)

#: Fields of the reference's info record (``addcow_ref.ops.info.ImageInfo``) that the manifest
#: leaves out: where the files live and how the image was opened depend on the reader, and
#: ``bitmap_length`` and ``all_allocated`` restate other fields.
_NOT_PUBLISHED = frozenset({"filename", "image_path", "backing_path", "readonly",
                            "bitmap_length", "all_allocated"})

if set(INFO_KEYS) != set(INFO_FIELDS) - _NOT_PUBLISHED:  # pragma: no cover - a renamed field
    raise ImportError("the manifest's info object no longer matches addcow_ref.ops.info: "
                      f"{sorted(set(INFO_KEYS) ^ (set(INFO_FIELDS) - _NOT_PUBLISHED))}")

#: The info fields every adapter must print (the interface's "at least" list), in the info
#: record's order: all but ``header_length`` (a reader needs it only to find the name area)
#: and ``cluster_size``/``cluster_count`` (they follow from ``cluster_bits`` and
#: ``virtual_size``).
REQUIRED_INFO_KEYS: tuple[str, ...] = tuple(
    f for f in INFO_FIELDS
    if f in INFO_KEYS and f not in ("header_length", "cluster_size", "cluster_count"))


class Operation(TypedDict, total=False):
    """One entry of an ``apply`` list: a write (``data_hex``, or ``length`` bytes of
    ``pattern``), a write-zeroes or discard of ``length`` bytes at ``offset``, a resize to
    ``size``, a flush, a hydrate, an upgrade of a version 1 image (``{"op": "upgrade"}``, no
    other key), a commit into the backing file (``keep``: leave the image as it is, like
    ``qemu-img commit -d``), or a rebase onto ``backing`` (None: no backing file) of format
    ``backing_format``, ``unsafe`` for the form that changes only the names (``-u``)."""

    op: Required[str]
    offset: int
    data_hex: str
    length: int
    pattern: int
    size: int
    keep: bool
    backing: str | None
    backing_format: str
    unsafe: bool


class RefusalBlock(TypedDict, total=False):
    """The image (for op vectors: the operations) must be refused, citing ``rule`` if the
    implementation cites one."""

    rule: str


class ByteRange(TypedDict):
    """``length`` bytes at ``offset`` (of a file, or of the guest disk)."""

    offset: int
    length: int


class AfterFile(TypedDict, total=False):
    """A file after the operations: found by ``path``, or by ``role`` among the vector's
    files. ``sha256`` is of its first ``compare_length`` bytes (all of it when absent, and then
    ``size`` must match too), with every ``ignore`` range zeroed first: where the spec leaves
    bytes to the writer (a SHOULD, a MAY), they are not compared."""

    role: str
    path: str
    size: int
    sha256: str
    compare_length: int
    ignore: list[ByteRange]


def compared_bytes(data: bytes, want: AfterFile) -> bytes:
    """The bytes of a file that the ``after.files`` entry ``want`` compares: the first
    ``compare_length`` (all when absent), with each ``ignore`` range zeroed (clipped to the
    file). The generator hashes these for an expectation and the harness for the file it
    checks, so the two read an entry alike."""
    out = bytearray(data)
    limit = want.get("compare_length")
    if limit is not None:
        del out[int(limit):]
    for rng in want.get("ignore") or []:
        lo = int(rng["offset"])
        hi = min(lo + int(rng["length"]), len(out))
        if lo < hi:
            out[lo:hi] = bytes(hi - lo)
    return bytes(out)


class AfterBlock(TypedDict, total=False):
    """State after an op vector's operations."""

    files: list[AfterFile]
    guest_sha256: str
    extents: list[Extent]
    #: May lack ``compatible_features`` where a writer may or may not set ``all_allocated``.
    info: InfoRecord
    #: Guest reads that must match when the whole guest is not pinned (a discard leaves the
    #: discarded bytes of allocated clusters open).
    probes: list[Probe]
    #: What the spec leaves open after the operations, in words; never compared.
    open: list[str]


class ExpectBlock(TypedDict, total=False):
    """What an implementation must do with a vector; which keys appear depends on its kind and
    result (read vectors: info, extents, guest_sha256, probes; invalid: refusal; op: info,
    ops, after and possibly refusal)."""

    info: InfoRecord
    extents: list[Extent]
    guest_sha256: str
    probes: list[Probe]
    refusal: RefusalBlock
    ops: list[Operation]
    after: AfterBlock
    #: Reads reaching past virtual_size: each must be refused (READ-RANGE), never clipped.
    refused_reads: list[ByteRange]
    #: For acceptable vectors: "ignore" (every reader must open it, whatever its policy) or
    #: "either" (opening and refusing both conform), from the broken rules' reader duties.
    reader_duty: str


class ExpectedFinding(TypedDict):
    """One finding ``addcow-check`` must report on the vector's entry file."""

    rule: str
    severity: str
    file_role: str
    offset: int | None
    field: str | None


class CheckerBlock(TypedDict):
    """What ``addcow-check`` reports on the vector's entry file."""

    exit_code: int
    findings: list[ExpectedFinding]


class VectorEntry(TypedDict):
    """One vector of ``manifest.json``."""

    id: str
    description: str
    spec: str
    kind: str
    result: str
    exercises: list[str]
    violates: list[str]
    flags: list[str]
    requires: list[str]
    entry: str
    files: list[FileEntry]
    expect: ExpectBlock
    checker: CheckerBlock
    since: str
    changed: str
    generator: str


class FlagInfo(TypedDict):
    """What a flag of an ``acceptable`` vector means and which outcomes it allows."""

    description: str
    policy_choices: list[str]


class RuleInfo(TypedDict):
    """A rule of the registry as the manifest publishes it."""

    title: str
    level: str
    severity: str
    applies_to: str
    anchor: str
    spec_since: str
    testability: str
    #: The reader duty of a file rule (refuse, ignore, either); None for other rules.
    reader: str | None
    unbreakable: bool


class GeneratorInfo(TypedDict):
    name: str
    version: str


class Counts(TypedDict):
    total: int
    kind: dict[str, int]
    result: dict[str, int]


class ManifestDoc(TypedDict):
    """The whole of ``manifest.json``."""

    schema: str
    manifest_version: str
    suite_version: str
    spec_versions: list[str]
    generator: GeneratorInfo
    rules: dict[str, RuleInfo]
    flags: dict[str, FlagInfo]
    features: dict[str, str]
    retired: list[str]
    counts: Counts
    vectors: list[VectorEntry]
