"""Writer-rule vectors of add-cow 2.0: what a write, resize or hydration keeps, clears and
refuses, and the write-zeroes and discard operations.

Each is an ``op`` vector built by ``ops.op_vector`` from the oracle (``model.py``); where the
spec leaves a writer free (a SHOULD, a MAY) the vector does not compare those bytes and its
``after.open`` says what is left open.
"""

from __future__ import annotations

from typing import Any

from addcow_conformance.vectors.builder import AddCow, field_offset
from addcow_conformance.vectors.common import pattern, producer
from addcow_conformance.vectors.core import Vector, finding
from addcow_conformance.vectors.ops import longer_image, op_vector, refused_op_vector

CS = 4096


def _base(tag: str, bits: set[int], size: int = 4 * CS,
          **kw: object) -> tuple[AddCow, bytes, bytes]:
    a = AddCow(virtual_size=size, cluster_bits=12, backing_name=b"backing.raw", bits=bits)
    for k, v in kw.items():
        setattr(a, k, v)
    return a, pattern(f"writers/{tag}:image", size), pattern(f"writers/{tag}:backing", size)


def _unknown_compat() -> dict[str, Any]:
    return {"result": "acceptable", "violates": ["FEAT-COMPAT-UNKNOWN"],
            "flags": ["unknown-compatible-bit"], "reader_duty": "ignore",
            "findings": [finding("FEAT-COMPAT-UNKNOWN", offset=field_offset("compatible_features"),
                                 field="compatible_features")]}


def _unknown_autoclear() -> dict[str, Any]:
    return {"result": "acceptable", "violates": ["FEAT-AUTOCLEAR-UNKNOWN"],
            "flags": ["unknown-autoclear-bit"],
            "findings": [finding("FEAT-AUTOCLEAR-UNKNOWN",
                                 offset=field_offset("autoclear_features"),
                                 field="autoclear_features")]}


@producer
def keeps() -> list[Vector]:
    """Header words and bytes a writer keeps, or clears, when it rewrites the header."""
    out = []
    a, image, backing = _base("compat-write", {0}, compatible_features=1 << 3)
    out.append(op_vector(
        "ops/write-keeps-unknown-compatible-bit", "compatible_features has unknown bit 3: a "
        "write must keep it (a writer keeps unknown compatible bits)", a, image, backing,
        [{"op": "write", "offset": CS + 10, "length": 100, "pattern": 0x21}, {"op": "flush"}],
        ["FEAT-COMPAT-KEEP", "WRITE-COW-HEAD-TAIL"], **_unknown_compat()))
    a, image, backing = _base("compat-grow", {0, 1}, compatible_features=1 << 40)
    out.append(op_vector(
        "ops/resize-keeps-unknown-compatible-bit", "compatible_features has unknown bit 40: a "
        "grow rewrites the header and must keep it", a, image, backing,
        [{"op": "resize", "size": 5 * CS}], ["FEAT-COMPAT-KEEP", "RESIZE-GROW"],
        requires=["big-int"], **_unknown_compat()))
    a, image, backing = _base("autoclear-grow", {0}, autoclear_features=1 << 2)
    out.append(op_vector(
        "ops/resize-clears-unknown-autoclear", "autoclear_features has unknown bit 2: a resize "
        "is a change, so the writer clears the bit (durably, before it changes anything else)",
        a, image, backing, [{"op": "resize", "size": 6 * CS}],
        ["FEAT-AUTOCLEAR-UNKNOWN", "RESIZE-GROW"], **_unknown_autoclear()))
    ext = bytes(range(1, 129))
    a, image, backing = _base("extension", {2}, header_length=256, extension=ext)
    out.append(op_vector(
        "ops/write-keeps-header-extension", "header_length is 256 and bytes 128..255 hold "
        "unknown extension fields: a write and a grow keep header_length and every byte of the "
        "extension", a, image, backing,
        [{"op": "write", "offset": 100, "length": 50, "pattern": 0x31},
         {"op": "resize", "size": 5 * CS}],
        ["HDR-EXTENSION-KEEP", "READ-HEADER-EXTENSION", "RESIZE-GROW"]))
    return out


@producer
def grows() -> list[Vector]:
    a, _, backing = _base("grow-longer", {0}, size=2 * CS)
    image = pattern("writers/grow-longer:image", 6 * CS)
    return [op_vector(
        "ops/resize-grow-over-longer-image-file", "The image file is 6 clusters long and the "
        "disk 2; growing to 4 clusters must zero the image file over the new part (its stale "
        "bytes there never show); past the new end, the file is the writer's business",
        a, image, backing, [{"op": "resize", "size": 4 * CS}], ["RESIZE-GROW"],
        **longer_image())]


@producer
def ranges() -> list[Vector]:
    """Writes past virtual_size are refused, never clipped, and change no file."""
    out = []
    a, image, backing = _base("past-end", {1})
    out.append(refused_op_vector(
        "ops/write-past-end-refused", "A write that starts at virtual_size must be refused; "
        "no file changes", a, image, backing,
        [{"op": "write", "offset": 4 * CS, "length": 16, "pattern": 0x41}], "WRITE-RANGE",
        ["WRITE-RANGE"]))
    a, image, backing = _base("straddle-end", {1})
    out.append(refused_op_vector(
        "ops/write-straddling-end-refused", "A 200-byte write whose last 100 bytes lie past "
        "virtual_size must be refused whole, not clipped to the disk: no file changes",
        a, image, backing,
        [{"op": "write", "offset": 4 * CS - 100, "length": 200, "pattern": 0x42}],
        "WRITE-RANGE", ["WRITE-RANGE"]))
    return out


@producer
def zeroes_discard_hydrate() -> list[Vector]:
    out = []
    a, image, backing = _base("zeroes", {3})
    out.append(op_vector(
        "ops/write-zeroes-allocates", "write-zeroes of 1000 bytes across clusters 0 and 1 "
        "(unallocated, over backing data): both clusters are allocated like a write of zeros, "
        "head and tail copied from the backing file", a, image, backing,
        [{"op": "write-zeroes", "offset": CS - 500, "length": 1000}],
        ["WRITE-ZEROES-ALLOCATE", "WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT"]))
    a, image, backing = _base("discard", {0, 2})
    out.append(op_vector(
        "ops/discard-keeps-bits", "Discard of clusters 0..2 (0 and 2 allocated, 1 not): no bit "
        "changes and cluster 1 still reads the backing file; what clusters 0 and 2 read is left "
        "open (a discard may punch holes)", a, image, backing,
        [{"op": "discard", "offset": 0, "length": 3 * CS}],
        ["DISCARD-KEEP-BITS", "DISCARD-PUNCH"]))
    a, image, backing = _base("hydrate", {1}, size=3 * CS + 512)
    out.append(op_vector(
        "ops/hydrate", "Hydrate a disk of 3 clusters + 512 bytes with cluster 1 allocated: "
        "every cluster is copied from the backing file into the image file, every bit is set "
        "and all_allocated is set last", a, image, backing, [{"op": "hydrate"}],
        ["HYDRATE-COMPLETE", "FEAT-ALL-ALLOCATED-SET", "FEAT-ALL-ALLOCATED"]))
    a, _, backing = _base("hydrate-longer", {0}, size=2 * CS)
    out.append(op_vector(
        "ops/hydrate-image-file-longer", "Hydrate an image whose image file is 3 clusters "
        "longer than the disk: the guest data are pinned, the image file's length after "
        "hydration is a SHOULD (exactly virtual_size)", a,
        pattern("writers/hydrate-longer:image", 5 * CS), backing, [{"op": "hydrate"}],
        ["HYDRATE-COMPLETE", "FEAT-ALL-ALLOCATED-SET"], **longer_image()))
    return out
