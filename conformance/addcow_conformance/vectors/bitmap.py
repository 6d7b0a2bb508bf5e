"""COW bitmap vectors: bit order, partial last byte, padding bits, short and long files."""

from __future__ import annotations

from addcow_conformance.vectors.builder import AddCow
from addcow_conformance.vectors.common import (
    pattern,
    producer,
    read_vector,
    refusal_vector,
    std_files,
)
from addcow_conformance.vectors.core import Vector, finding


def _base(tag: str, clusters: int, bits: set[int]) -> tuple[AddCow, bytes, bytes]:
    vs = clusters * 512
    a = AddCow(virtual_size=vs, cluster_bits=9, backing_name=b"backing.raw", bits=bits)
    return a, pattern(f"bitmap/{tag}:image", vs), pattern(f"bitmap/{tag}:backing", vs)


@producer
def valid() -> list[Vector]:
    a, image, backing = _base("order", 16, {0, 3, 9, 15})
    out = [read_vector(
        "bitmap/bit-order-lsb-first", "16 clusters, bits 0, 3, 9 and 15 set (bytes 0x09 0x82): "
        "cluster i is bit i & 7 of byte i >> 3, least significant bit first", a, image, backing,
        exercises=["BMP-BIT-ORDER", "READ-ALLOCATED", "READ-UNALLOCATED-BACKING"],
        ranges=[(0, 512), (1536, 512), (4608, 512), (7680, 512), (400, 1000)])]
    a, image, backing = _base("partial", 11, {2, 10})
    out.append(read_vector(
        "bitmap/partial-last-byte", "11 clusters: the second bitmap byte uses 3 bits; cluster "
        "10 is allocated and bits 11..15 are zero", a, image, backing,
        exercises=["BMP-PADDING", "BMP-LENGTH", "BMP-BIT-ORDER"]))
    a, image, backing = _base("ones", 8, set(range(8)))
    out.append(read_vector(
        "bitmap/all-ones", "Every cluster allocated (bitmap 0xff): the backing file is never "
        "read", a, image, backing, exercises=["BMP-BIT-ORDER", "READ-ALLOCATED"]))
    a, image, backing = _base("zeros", 8, set())
    out.append(read_vector(
        "bitmap/all-zeros", "No cluster allocated: the image file's bytes must never show",
        a, image, backing, exercises=["BMP-BIT-ORDER", "READ-UNALLOCATED-BACKING"]))
    return out


@producer
def invalid() -> list[Vector]:
    out = []
    # Set padding bits are the trace of an interrupted grow or shrink: readers ignore them.
    for slug, tag, what, last in (
            ("padding-bit-set", "padding", "bit 15 (past the last cluster) of the last bitmap "
             "byte", 0x80),
            ("padding-first-bit-set", "padding-next", "bit 11, the first padding bit,", 0x08)):
        a, image, backing = _base(tag, 11, {2, 10})
        a.bitmap = bytes([0x04, 0x04 | last])
        out.append(read_vector(
            f"bitmap/{slug}", f"11 clusters; {what} is set: readers ignore padding bits and "
            "read the 11 clusters as the other bits say, a checker warns", a, image, backing,
            result="acceptable", violates=["BMP-PADDING"], flags=["padding-bits-set"],
            findings=[finding("BMP-PADDING", offset=4097, field="bitmap")],
            reader_duty="ignore"))
    return [*out, *_short()]


def _short() -> list[Vector]:
    out = []
    a, image, backing = _base("short", 11, {2, 10})
    built = a.build()[:-1]
    out.append(refusal_vector(
        "bitmap/file-one-byte-short", "The file ends one byte before the end of the 2-byte "
        "bitmap", std_files(built, image, backing), ["BMP-LENGTH"],
        [finding("BMP-LENGTH", offset=len(built), field=None)]))
    a, image, backing = _base("no-bitmap", 11, {2, 10})
    built = a.build()[:4096]
    out.append(refusal_vector(
        "bitmap/file-ends-at-bitmap-offset", "The file ends at bitmap_offset: no bitmap at all",
        std_files(built, image, backing), ["BMP-LENGTH"],
        [finding("BMP-LENGTH", offset=len(built), field=None)]))
    a, image, backing = _base("trailing", 11, {2, 10})
    a.trailing = b"\xde\xad\xbe\xef" * 4
    out.append(read_vector(
        "bitmap/trailing-bytes", "16 bytes follow the bitmap: readers ignore them, a checker "
        "warns", a, image, backing, result="acceptable", violates=["BMP-TRAILING"],
        flags=["trailing-data"], findings=[finding("BMP-TRAILING", offset=4098, field=None)],
        reader_duty="ignore"))
    return out
