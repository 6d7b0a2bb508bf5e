"""Vectors with long bitmaps: more clusters than a reader handles in one piece.

Implementations cut a long bitmap into pieces (the reference caches it in 64 KiB chunks, maps
the disk 2^19 clusters at a time and searches ranges of 4096 bits or more word by word), and a
bug at a piece boundary shows only on a bitmap that has one. These vectors have 524,421
clusters of 512 bytes (a 65,553-byte bitmap, so one full 64 KiB chunk and a 17-byte one), with
runs that cross byte boundaries, bit 4096, the chunk boundary at cluster 524,288 and the end of
the bitmap. The image file is all zeros (a sparse ``synth`` file of 256 MiB) and the backing
file covers only the first 24 clusters, so the committed files stay small: guest data differ
between allocated and unallocated clusters only there, and the map pins every other bit.

The smaller ones (4097 to 8600 clusters, no backing file) are for the reference's search of
ranges of 4096 clusters or more 64 bits at a time: a range that ends inside a 64-bit word, or
one cluster into a word, one that starts inside a word, words with a single change of bit, and
runs whose first and last lengths differ.
"""

from __future__ import annotations

from addcow_conformance.records import Operation
from addcow_conformance.vectors.builder import AddCow
from addcow_conformance.vectors.common import pattern, producer, read_vector
from addcow_conformance.vectors.core import Vector
from addcow_conformance.vectors.ops import op_vector

CB = 9
CS = 1 << CB
#: Bits per 64 KiB of bitmap: the reference's cache chunk and map window.
CHUNK = 1 << 19
COUNT = CHUNK + 8 * 16 + 5
VS = COUNT * CS
BACKING_LEN = 24 * CS - 100


def _bits() -> set[int]:
    """Runs across every kind of boundary a reader may cut the bitmap at."""
    bits = {0, 1, 2, 3}  # part of the first byte
    bits |= set(range(5, 201))  # many whole bytes, starting and ending mid-byte
    bits |= {1000, 1007, 1008, 1023}  # single bits on either side of byte boundaries
    bits |= set(range(4090, 4110))  # across bit 4096
    bits |= set(range(8192, 8192 + 8 * 40))  # 40 whole 0xff bytes
    bits |= set(range(300001, 300002 + 8 * 300))  # a long run, unaligned at both ends
    bits |= set(range(CHUNK - 12, CHUNK + 20))  # across the chunk and map-window boundary
    bits |= {CHUNK + 100, COUNT - 1}  # the last cluster, just before the padding bits
    return bits


def _big(bits: set[int] | None = None) -> AddCow:
    return AddCow(virtual_size=VS, cluster_bits=CB, backing_name=b"backing.raw",
                  bits=_bits() if bits is None else bits)


def _backing(tag: str) -> bytes:
    return pattern(f"big/{tag}:backing", BACKING_LEN)


@producer
def reads() -> list[Vector]:
    a = _big()
    ranges = [(0, 1), (4 * CS - 1, 2), (4 * CS, 1), (4 * CS + 100, 1), (0, 210 * CS),
              (23 * CS - 50, 2 * CS), (1007 * CS - 3, 3 * CS), (4089 * CS, 30 * CS),
              (300000 * CS, 10 * CS), ((CHUNK - 13) * CS, 40 * CS), ((CHUNK - 1) * CS + 511, 2),
              (VS - CS - 1, CS + 1), (VS - 1, 1)]
    out = [read_vector(
        "big/bitmap-over-cache-chunk", f"{COUNT} clusters of 512 bytes: a 65,553-byte bitmap "
        "with runs across byte boundaries, bit 4096, cluster 524,288 (64 KiB of bitmap) and "
        "the last cluster; the map and reads must follow every bit", a, None,
        _backing("read"), image_synth=VS, ranges=ranges,
        exercises=["BMP-BIT-ORDER", "BMP-LENGTH", "BMP-PADDING", "READ-ALLOCATED",
                   "READ-UNALLOCATED-BACKING", "READ-PAST-BACKING-EOF"])]
    return out


@producer
def writes() -> list[Vector]:
    out = []
    ops: list[Operation] = [
        # From allocated cluster 3 into unallocated 4, then allocated 5..: several bitmap bytes.
        {"op": "write", "offset": 3 * CS + 500, "length": 3 * CS, "pattern": 0x5A},
        # From allocated 199 and 200 into unallocated 201..261: 8 bitmap bytes at once, past
        # the backing file's end.
        {"op": "write", "offset": 199 * CS + 7, "length": 62 * CS, "pattern": 0x6B},
        # Across the chunk boundary, starting in the allocated run and ending past it.
        {"op": "write", "offset": (CHUNK + 10) * CS - 3, "length": 20 * CS, "pattern": 0x7C},
        # The unallocated clusters either side of the long run (one bitmap byte each end).
        {"op": "write", "offset": 300000 * CS, "length": (8 * 300 + 3) * CS, "pattern": 0x01},
        {"op": "flush"},
    ]
    out.append(op_vector(
        "big/write-across-bitmap-bytes-and-chunks", "Writes over a 65,553-byte bitmap: from an "
        "allocated cluster into unallocated ones, over 8 bitmap bytes at once, across the 64 "
        "KiB chunk boundary, and a 2403-cluster write that fills both ends of a long run",
        _big(), bytes(VS), _backing("write"), ops,
        ["WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT", "BMP-BIT-ORDER", "READ-PAST-BACKING-EOF"],
        image_synth=True))
    return out


@producer
def one_run() -> list[Vector]:
    """A map that the reference computes in two windows (2^19 clusters each) and must merge:
    one run of unallocated clusters from cluster 0 to 8 clusters past the window boundary."""
    count = CHUNK + 8
    a = AddCow(virtual_size=count * CS, cluster_bits=CB, bits=set())
    ranges = [(0, CS), ((CHUNK - 1) * CS + 500, 2 * CS), ((count - 1) * CS, CS)]
    return [read_vector(
        "big/map-one-run-across-map-window", f"{count} clusters of 512 bytes, none allocated, "
        "no backing file: the map is one unallocated extent over the whole disk, although it "
        "crosses cluster 524,288 (64 KiB of bitmap), where a reader may cut the bitmap", a,
        None, None, image_synth=count * CS, ranges=ranges,
        exercises=["BMP-BIT-ORDER", "BMP-LENGTH", "READ-PAST-BACKING-EOF"])]


#: Clusters of :func:`mid_word_map`: 4100, so the last 64-bit word of the bitmap holds 4 of
#: them (bits 4096..4099) and the first padding bit, 4100, shares their word.
MID_WORD_COUNT = 4100


@producer
def mid_word_map() -> list[Vector]:
    """A bitmap that a reader searching it 64 bits at a time must cut at the disk's end inside
    a word, where the 1 -> 0 change from the allocated last cluster to the padding bits is no
    boundary of the disk; and whose every other change of bit is the only one in its word,
    with cluster 0 unallocated, so that no word of the search holds two."""
    count = MID_WORD_COUNT
    bits = set(range(1000, 2000)) | set(range(4000, count))
    a = AddCow(virtual_size=count * CS, cluster_bits=CB, bits=bits)
    ranges = [(999 * CS, 2 * CS), (1999 * CS, 2 * CS), (3999 * CS, 2 * CS),
              ((count - 1) * CS, CS)]
    return [read_vector(
        "big/map-last-run-ends-mid-word", f"{count} clusters of 512 bytes, no backing file; "
        "clusters 1000..1999 and 4000..4099 allocated: the map ends with the allocated run at "
        "the disk's end, inside the bitmap's last 64-bit word whose next bit (4100, padding) "
        "is 0, and no 64-bit word holds more than one change of bit", a, None, None,
        image_synth=count * CS, ranges=ranges,
        exercises=["BMP-BIT-ORDER", "BMP-LENGTH", "BMP-PADDING", "READ-ALLOCATED"])]


@producer
def last_word_one_cluster() -> list[Vector]:
    """A disk of 64 * 64 + 1 clusters: the bitmap's last 64-bit word holds one cluster, and
    its bit differs from the one before it, so a reader searching the bitmap word by word
    must not stop a word early."""
    count = 64 * 64 + 1
    a = AddCow(virtual_size=count * CS, cluster_bits=CB, bits=set(range(1000, count - 1)))
    ranges = [(999 * CS, 2 * CS), ((count - 2) * CS, 2 * CS)]
    return [read_vector(
        "big/map-last-cluster-alone-in-word", f"{count} clusters of 512 bytes, no backing "
        "file; clusters 1000..4095 allocated: the last cluster, 4096, is unallocated and alone "
        "in the bitmap's last 64-bit word", a, None, None, image_synth=count * CS,
        ranges=ranges, exercises=["BMP-BIT-ORDER", "BMP-LENGTH", "READ-ALLOCATED"])]


#: Clusters of :func:`long_writes`: two writes of more than 4096 clusters each fit, the second
#: from a cluster that is not the first of a 64-bit word of the bitmap.
LONG_WRITES_COUNT = 8600


@producer
def long_writes() -> list[Vector]:
    """Writes of more than 4096 clusters, the length from which a reader may search the bitmap
    64 bits at a time: one from cluster 0 whose first run (unallocated) is longer than its
    last (allocated), and one from cluster 4500, inside a 64-bit word, whose first cluster is
    allocated. Every unallocated cluster of either must be allocated (WRITE-SET-BIT); no
    backing file, so one that is not reads zeros instead of the written bytes."""
    count = LONG_WRITES_COUNT
    bits = set(range(4100, 4200)) | set(range(4500, 4511)) | set(range(8500, count))
    a = AddCow(virtual_size=count * CS, cluster_bits=CB, bits=bits)
    ops: list[Operation] = [
        # Clusters 0..4199: 4100 unallocated, then the 100 allocated 4100..4199.
        {"op": "write", "offset": 0, "length": 4200 * CS, "pattern": 0x3A},
        # Clusters 4500..8599: 11 allocated (4500 is bit 20 of word 70), 3989 unallocated,
        # then the 100 allocated 8500..8599 that end the disk.
        {"op": "write", "offset": 4500 * CS, "length": (count - 4500) * CS, "pattern": 0x4B},
        {"op": "flush"},
    ]
    return [op_vector(
        "big/write-long-runs-from-mid-word", f"Two writes over {count} clusters of 512 bytes, "
        "no backing file: clusters 0..4199 (4100 unallocated, then 100 allocated) and "
        "4500..8599 (starting inside a 64-bit word of the bitmap: 11 allocated, 3989 "
        "unallocated, 100 allocated); every cluster written is allocated after", a,
        bytes(count * CS), None, ops,
        ["WRITE-SET-BIT", "BMP-BIT-ORDER", "READ-ALLOCATED"], image_synth=True)]


@producer
def long_write_zeroes() -> list[Vector]:
    """A write-zeroes of 4200 clusters whose last run, unallocated, ends inside the range,
    before more unallocated clusters: those past the range must stay unallocated (the
    operation allocates exactly what a write of zeros would, WRITE-ZEROES-ALLOCATE), which a
    reader that measures the last run from the range's start instead of its own does not."""
    count = 4400
    a = AddCow(virtual_size=count * CS, cluster_bits=CB, bits=set(range(100)))
    return [op_vector(
        "big/write-zeroes-long-run-ends-unallocated", f"write-zeroes of clusters 0..4199 of "
        f"{count} clusters of 512 bytes, no backing file, clusters 0..99 allocated: 100..4199 "
        "are allocated after, 4200..4399 stay unallocated", a, bytes(count * CS), None,
        [{"op": "write-zeroes", "offset": 0, "length": 4200 * CS}],
        ["WRITE-ZEROES-ALLOCATE", "WRITE-SET-BIT", "BMP-BIT-ORDER"], image_synth=True)]
