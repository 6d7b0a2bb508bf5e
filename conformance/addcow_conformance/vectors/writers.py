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
from addcow_conformance.vectors.core import File, Vector, finding
from addcow_conformance.vectors.model import Disk
from addcow_conformance.vectors.ops import (
    longer_image,
    op_vector,
    refused_op_vector,
    unknown_autoclear,
)

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
        ["FEAT-AUTOCLEAR-UNKNOWN", "RESIZE-GROW"], **unknown_autoclear()))
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


SCS = 512


def _small(tag: str, bits: set[int], clusters: int = 4,
           **kw: object) -> tuple[AddCow, bytes, bytes]:
    """``_base`` with 512-byte clusters, which keeps the committed files small."""
    a = AddCow(virtual_size=clusters * SCS, cluster_bits=9, backing_name=b"backing.raw",
               bits=bits)
    for k, v in kw.items():
        setattr(a, k, v)
    size = clusters * SCS
    return a, pattern(f"writers/{tag}:image", size), pattern(f"writers/{tag}:backing", size)


@producer
def zeroes_discard_ranges() -> list[Vector]:
    """write-zeroes over whole clusters and to the end of the disk; a discard past the end."""
    out = []
    a, image, backing = _small("zeroes-whole", {2, 4, 6}, 7)
    out.append(op_vector(
        "ops/write-zeroes-whole-clusters", "write-zeroes from inside unallocated cluster 1 to "
        "inside unallocated cluster 5: their heads and tails come from the backing file, "
        "allocated clusters 2 and 4 and unallocated cluster 3 read as zeros throughout, and "
        "all five are allocated", a, image, backing,
        [{"op": "write-zeroes", "offset": SCS + 100, "length": 5 * SCS - 200}],
        ["WRITE-ZEROES-ALLOCATE", "WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT"]))
    a = AddCow(virtual_size=3 * 1024 + 512, cluster_bits=10, backing_name=b"backing.raw",
               bits={0, 2})
    image = pattern("writers/zeroes-end:image", 3 * 1024 + 512)
    backing = pattern("writers/zeroes-end:backing", 4 * 1024)
    out.append(op_vector(
        "ops/write-zeroes-to-end-of-disk", "write-zeroes from byte 100 to the end of a disk of "
        "1 KiB clusters whose last cluster holds 512 bytes: cluster 0 keeps its first 100 "
        "bytes, everything after reads as zeros and every cluster is allocated", a, image,
        backing, [{"op": "write-zeroes", "offset": 100, "length": 3 * 1024 + 412}],
        ["WRITE-ZEROES-ALLOCATE", "WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT"]))
    a, image, backing = _small("discard-end", {1, 3})
    out.append(refused_op_vector(
        "ops/discard-past-end-refused", "A discard whose last 100 bytes lie past virtual_size "
        "must be refused whole, not clipped: no file changes", a, image, backing,
        [{"op": "discard", "offset": 4 * SCS - 100, "length": 200}], "WRITE-RANGE",
        ["WRITE-RANGE"]))
    a, image, backing = _small("zeroes-end-refused", {1})
    out.append(refused_op_vector(
        "ops/write-zeroes-past-end-refused", "A write-zeroes that starts one byte before "
        "virtual_size and is 2 bytes long must be refused: no file changes", a, image, backing,
        [{"op": "write-zeroes", "offset": 4 * SCS - 1, "length": 2}], "WRITE-RANGE",
        ["WRITE-RANGE"]))
    return out


@producer
def hydrate_variants() -> list[Vector]:
    """Hydration of long bitmaps, without a backing file, over a short or an add-cow one."""
    out = []
    cs = 512
    count = 10000  # 5,120,000 bytes: more than the reference copies in one 4 MiB step
    bits = {0, 1, 2, 3, *range(100, 2001), 8191, 8192, count - 1}
    a = AddCow(virtual_size=count * cs, cluster_bits=9, backing_name=b"backing.raw", bits=bits)
    out.append(op_vector(
        "ops/hydrate-long-bitmap", "Hydrate 10,000 clusters of 512 bytes (a 1250-byte bitmap), "
        "partly allocated, over a 6000-byte backing file: every bit is set, the first clusters "
        "get the backing file's bytes and the rest zeros", a, bytes(count * cs),
        pattern("writers/hydrate-long:backing", 6000), [{"op": "hydrate"}],
        ["HYDRATE-COMPLETE", "FEAT-ALL-ALLOCATED-SET", "READ-PAST-BACKING-EOF"],
        image_synth=True))
    a = AddCow(virtual_size=20 * cs, cluster_bits=9, bits={0, 5, 6, 7, 12})
    out.append(op_vector(
        "ops/hydrate-no-backing-stale-image", "Hydrate an image without a backing file whose "
        "image file holds stale bytes in its unallocated clusters: they must be zeroed, since "
        "the guest read zeros there", a, pattern("writers/hydrate-nob:image", 20 * cs), None,
        [{"op": "hydrate"}], ["HYDRATE-COMPLETE", "READ-PAST-BACKING-EOF"]))
    a, image, _ = _small("hydrate-short", {3})
    out.append(op_vector(
        "ops/hydrate-backing-ends-mid-cluster", "Hydrate 4 clusters of 512 bytes over a "
        "700-byte backing file: cluster 1 gets its last 188 bytes then zeros, cluster 2 only "
        "zeros, whatever stale bytes the image file held", a, image,
        pattern("writers/hydrate-short:backing", 700),
        [{"op": "hydrate"}], ["HYDRATE-COMPLETE", "READ-PAST-BACKING-EOF"]))
    a, image, backing = _small("hydrate-autoclear", {0}, autoclear_features=1 << 4)
    out.append(op_vector(
        "ops/hydrate-clears-unknown-autoclear", "autoclear_features has unknown bit 4: a "
        "hydration changes the image, so the writer clears the bit", a, image, backing,
        [{"op": "hydrate"}], ["FEAT-AUTOCLEAR-UNKNOWN", "HYDRATE-COMPLETE"],
        **unknown_autoclear()))
    a, image, backing = _small("hydrate-full", {0, 1, 2, 3})
    out.append(op_vector(
        "ops/hydrate-all-bits-already-set", "Hydrate an image whose every bit is already 1 but "
        "all_allocated is clear: nothing is copied, all_allocated is set", a, image, backing,
        [{"op": "hydrate"}], ["HYDRATE-COMPLETE", "FEAT-ALL-ALLOCATED-SET"]))
    base = pattern("writers/hydrate-chain:base", 3 * SCS + 100)
    mid = AddCow(virtual_size=4 * SCS, cluster_bits=9, image_name=b"mid.raw",
                 backing_name=b"base.raw", bits={1})
    mid_image = pattern("writers/hydrate-chain:mid", 4 * SCS)
    mid_guest = Disk(4 * SCS, 9, bytearray(mid_image), {1}, base).guest()
    top = AddCow(virtual_size=4 * SCS, cluster_bits=9, backing_name=b"mid.add-cow",
                 backing_format="add-cow", bits={2})
    out.append(op_vector(
        "ops/hydrate-over-add-cow-backing", "Hydrate image.add-cow over mid.add-cow over "
        "base.raw: cluster 1 comes from mid.raw, clusters 0 and 3 from base.raw (zeros past its "
        "end), cluster 2 stays; the backing files are unchanged", top,
        pattern("writers/hydrate-chain:top", 4 * SCS), None, [{"op": "hydrate"}],
        ["HYDRATE-COMPLETE", "READ-UNALLOCATED-BACKING"], backing_view=mid_guest,
        extra_files=[File("backing", "mid.add-cow", mid.build()),
                     File("backing-image", "mid.raw", mid_image),
                     File("backing", "base.raw", base)], requires=["backing-chain"]))
    return out


@producer
def second_bit_of_byte() -> list[Vector]:
    """A write whose first cluster is bit 1 of a bitmap byte: setting its bits must leave bit
    0, the unallocated cluster before the write, clear (a writer that rounds the start of the
    range down to its byte allocates that cluster, which then reads the image file's zeros
    instead of the backing file)."""
    cs = 512
    a = AddCow(virtual_size=16 * cs, cluster_bits=9, backing_name=b"backing.raw")
    return [op_vector(
        "ops/write-from-bit-1-of-bitmap-byte", "A write of clusters 1..9 of 16 clusters of 512 "
        "bytes, none allocated, over a 1024-byte backing file: bits 1..9 are set, bit 0 stays "
        "clear, so cluster 0 still reads the backing file", a, bytes(16 * cs),
        pattern("writers/bit1:backing", 2 * cs),
        [{"op": "write", "offset": cs, "length": 9 * cs, "pattern": 0x5C}],
        ["WRITE-SET-BIT", "BMP-BIT-ORDER", "READ-UNALLOCATED-BACKING"], image_synth=True)]
