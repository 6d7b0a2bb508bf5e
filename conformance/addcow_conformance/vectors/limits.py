"""Boundary vectors: smallest and largest cluster sizes, an empty disk, sizes past the limits."""

from __future__ import annotations

from addcow_conformance.vectors.builder import AddCow, field_offset, set_field
from addcow_conformance.vectors.common import (
    pattern,
    producer,
    read_vector,
    refusal_vector,
    std_files,
    twin_of,
)
from addcow_conformance.vectors.core import Vector, finding


@producer
def cluster_sizes() -> list[Vector]:
    out = []
    a = AddCow(virtual_size=1024, cluster_bits=9, backing_name=b"backing.raw", bits={0})
    image, backing = pattern("limits/cb9:image", 1024), pattern("limits/cb9:backing", 1024)
    out.append(read_vector(
        "limits/cluster-bits-9", "cluster_bits 9 (512-byte clusters, the smallest): 2 clusters, "
        "cluster 0 allocated", a, image, backing,
        exercises=["HDR-CLUSTER-BITS", "BMP-BIT-ORDER", "READ-ALLOCATED",
                   "READ-UNALLOCATED-BACKING"], ranges=[(0, 512), (500, 24), (512, 512)]))
    for bits, slug in ((8, "cluster-bits-8"), (22, "cluster-bits-22")):
        buf = bytearray(a.build())
        set_field(buf, "cluster_bits", bits)
        out.append(twin_of("limits/cluster-bits-9", ("cluster_bits",), refusal_vector(
            f"limits/{slug}", f"cluster_bits is {bits}, outside 9..21; the bitmap length (1 "
            "byte) and its padding stay valid", std_files(bytes(buf), image, backing),
            ["HDR-CLUSTER-BITS"],
            [finding("HDR-CLUSTER-BITS", offset=field_offset("cluster_bits"),
                     field="cluster_bits")])))
    cs = 1 << 21
    vs = 2 * cs + 512
    a = AddCow(virtual_size=vs, cluster_bits=21, backing_name=b"backing.raw", bits={1})
    backing = pattern("limits/cb21:backing", 5000)
    out.append(read_vector(
        "limits/cluster-bits-21", "cluster_bits 21 (2 MiB clusters, the largest), 3 clusters "
        "with a 512-byte last one; cluster 1 is allocated (the image file is all zeros and made "
        "sparse), cluster 0 reads the 5000-byte backing file then zeros", a, None, backing,
        image_synth=vs,
        exercises=["HDR-CLUSTER-BITS", "READ-PAST-BACKING-EOF", "READ-ALLOCATED",
                   "BMP-PADDING"],
        ranges=[(4900, 200), (cs - 256, 512), (2 * cs - 256, 768)]))
    return out


@producer
def sizes() -> list[Vector]:
    out = []
    a = AddCow(virtual_size=0, cluster_bits=16)
    out.append(read_vector(
        "limits/zero-size-disk", "virtual_size is 0: no cluster, an empty bitmap, a 4096-byte "
        "add-cow file and an empty image file", a, b"", None,
        exercises=["HDR-VIRTUAL-SIZE-ALIGN", "HDR-VIRTUAL-SIZE-MAX", "BMP-LENGTH", "IMG-SIZE"]))
    a = AddCow(virtual_size=512, cluster_bits=21, backing_name=b"backing.raw")
    out.append(read_vector(
        "limits/one-sector-in-large-cluster", "A 512-byte disk with 2 MiB clusters: one partial "
        "cluster, unallocated, read from a 512-byte backing file", a,
        pattern("limits/one:image", 512), pattern("limits/one:backing", 512),
        exercises=["HDR-CLUSTER-BITS", "READ-UNALLOCATED-BACKING"]))
    big = 1 << 63
    a = AddCow(virtual_size=0, cluster_bits=21)
    buf = bytearray(a.build())
    set_field(buf, "virtual_size", big)
    out.append(refusal_vector(
        "limits/virtual-size-2-63", "virtual_size is 2^63, one past the largest allowed; the "
        "bitmap and image file lengths that follow from it are not judged",
        std_files(bytes(buf), b"", None), ["HDR-VIRTUAL-SIZE-MAX"],
        [finding("HDR-VIRTUAL-SIZE-MAX", offset=field_offset("virtual_size"),
                 field="virtual_size")],
        requires=["big-int"]))
    return out


@producer
def cluster_bits_edges() -> list[Vector]:
    """cluster_bits far past 21, where a cluster is as large as the disk or larger than any
    integer of 64 bits: the field is refused, never used to size the bitmap."""
    a = AddCow(virtual_size=1024, cluster_bits=9, backing_name=b"backing.raw", bits={0})
    image, backing = pattern("limits/cb9:image", 1024), pattern("limits/cb9:backing", 1024)
    out = []
    for bits in (63, 64, 255):
        buf = bytearray(a.build())
        set_field(buf, "cluster_bits", bits)
        out.append(twin_of("limits/cluster-bits-9", ("cluster_bits",), refusal_vector(
            f"limits/cluster-bits-{bits}", f"cluster_bits is {bits}: a cluster of 2^{bits} "
            "bytes would hold the whole disk, so the 1-byte bitmap still fits, but the field is "
            "outside 9..21", std_files(bytes(buf), image, backing), ["HDR-CLUSTER-BITS"],
            [finding("HDR-CLUSTER-BITS", offset=field_offset("cluster_bits"),
                     field="cluster_bits")])))
    return out
