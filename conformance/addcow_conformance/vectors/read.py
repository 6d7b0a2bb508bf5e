"""Read vectors: where each guest byte comes from (image, backing, or zeros)."""

from __future__ import annotations

from addcow_conformance.vectors.builder import AddCow
from addcow_conformance.vectors.common import pattern, producer, read_vector
from addcow_conformance.vectors.core import Vector
from addcow_ref.format.constants import MAGIC


@producer
def reads() -> list[Vector]:
    out = []
    cs = 4096
    vs = 3 * cs + 512
    a = AddCow(virtual_size=vs, cluster_bits=12, backing_name=b"backing.raw", bits={0, 2})
    image = pattern("read/mid:image", vs)
    backing = pattern("read/mid:backing", 6000)
    out.append(read_vector(
        "read/backing-ends-mid-cluster", "Clusters 0 and 2 allocated; the backing file ends "
        "inside cluster 1; the last cluster is partial (512 bytes) and unallocated, so it reads "
        "as zeros", a, image, backing,
        exercises=["BMP-BIT-ORDER", "BMP-PADDING", "READ-UNALLOCATED-BACKING",
                   "READ-PAST-BACKING-EOF", "HDR-VIRTUAL-SIZE-ALIGN"],
        ranges=[(5900, 200), (6000 - 100, 4096), (3 * cs, 512), (cs - 1, 2)]))
    a = AddCow(virtual_size=vs, cluster_bits=12, backing_name=b"backing.raw", bits={1})
    out.append(read_vector(
        "read/backing-longer-than-disk", "The backing file is 8 KiB longer than the disk; only "
        "its first virtual_size bytes can show", a, pattern("read/long:image", vs),
        pattern("read/long:backing", vs + 8192), exercises=["READ-UNALLOCATED-BACKING"]))
    a = AddCow(virtual_size=vs, cluster_bits=12, backing_name=b"backing.raw", bits={1, 3})
    out.append(read_vector(
        "read/empty-backing-file", "The backing file is empty: every unallocated cluster reads "
        "as zeros", a, pattern("read/emptyb:image", vs), b"",
        exercises=["READ-PAST-BACKING-EOF", "BACK-EXISTS"]))
    a = AddCow(virtual_size=vs, cluster_bits=12, bits={3})
    out.append(read_vector(
        "read/no-backing-image-has-data", "No backing file; the image file holds non-zero data "
        "in unallocated clusters, which must read as zeros", a, pattern("read/nob:image", vs),
        None, exercises=["READ-PAST-BACKING-EOF", "READ-UNALLOCATED-BACKING"]))
    # READ-NO-PROBE: a raw backing file that looks like an add-cow file.
    fake = AddCow(virtual_size=vs, cluster_bits=12, image_name=b"image.raw").build()
    assert fake.startswith(MAGIC)
    backing = fake + pattern("read/probe:backing", vs - len(fake))
    a = AddCow(virtual_size=vs, cluster_bits=12, backing_name=b"backing.raw", bits={2})
    out.append(read_vector(
        "read/raw-backing-looks-like-add-cow", "backing_format is raw and the backing file "
        "starts with a valid add-cow header: a reader must read its bytes as raw, never probe",
        a, pattern("read/probe:image", vs), backing,
        exercises=["READ-NO-PROBE", "BACK-FORMAT", "FMT-CASE"], ranges=[(0, 512), (4000, 200)]))
    a = AddCow(virtual_size=vs, cluster_bits=12, backing_name=b"backing.raw", bits={0, 3})
    out.append(read_vector(
        "read/past-the-end-refused", "Reads that reach past virtual_size (one byte past, "
        "straddling the end, wholly beyond it) must be refused, never clipped to the disk",
        a, pattern("read/end:image", vs), pattern("read/end:backing", vs),
        exercises=["READ-RANGE"], ranges=[(vs - 512, 512)],
        expect_extra={"refused_reads": [{"offset": vs - 512, "length": 513},
                                        {"offset": vs - 100, "length": 4096},
                                        {"offset": vs, "length": 1},
                                        {"offset": vs + 4096, "length": 512}]}))
    return out


@producer
def multi_byte_reads() -> list[Vector]:
    """Reads and a map over many 512-byte clusters, so that one request covers several
    bitmap bytes, with allocated runs starting and ending inside bytes and on their edges."""
    cs = 512
    vs = 32 * cs
    bits = {0, 1, 2, 7, 8, 9, 15, 16, *range(20, 30), 31}
    a = AddCow(virtual_size=vs, cluster_bits=9, backing_name=b"backing.raw", bits=bits)
    ranges = [(0, vs), (100, 20 * cs), (7 * cs - 1, 2), (8 * cs - 1, 1), (8 * cs, 1),
              (15 * cs + 511, 2), (16 * cs, 4 * cs + 1), (19 * cs + 511, 1), (30 * cs - 1, 2),
              (29 * cs, 3 * cs), (30 * cs + 200, 1), (vs - 1, 1)]
    return [read_vector(
        "read/many-clusters-multi-byte-runs", "32 clusters of 512 bytes, runs of allocated "
        "clusters across bitmap byte boundaries (7..9, 15..16, 20..29) and the last cluster; "
        "the backing file ends in cluster 24: reads of one byte up to the whole disk, each "
        "spanning up to 4 bitmap bytes", a,
        pattern("read/mb:image", vs), pattern("read/mb:backing", 24 * cs + 100), ranges=ranges,
        exercises=["BMP-BIT-ORDER", "READ-ALLOCATED", "READ-UNALLOCATED-BACKING"])]


@producer
def one_byte_of_backing() -> list[Vector]:
    """A backing file that ends one byte into an unallocated cluster: the backing file's part
    of that cluster is a 1-byte piece of the map, which a reader must neither drop nor round
    away (the guest reads that byte from the backing file, the rest of the cluster as zeros)."""
    cs = 512
    vs = 4 * cs
    a = AddCow(virtual_size=vs, cluster_bits=9, backing_name=b"backing.raw", bits={0})
    return [read_vector(
        "read/backing-ends-one-byte-into-cluster", "4 clusters of 512 bytes, cluster 0 "
        "allocated, over a 513-byte backing file: byte 512 comes from the backing file, bytes "
        "513.. read as zeros, and the map's unallocated extent runs from byte 512 to the end",
        a, pattern("read/onebyte:image", vs), pattern("read/onebyte:backing", cs + 1),
        ranges=[(cs - 1, 3), (cs, 1), (cs + 1, 1), (cs, cs)],
        exercises=["READ-UNALLOCATED-BACKING", "READ-PAST-BACKING-EOF"])]
