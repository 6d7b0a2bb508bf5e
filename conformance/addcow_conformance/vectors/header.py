"""Header vectors: one valid base image and its twins, each breaking one header field.

The twins are the base file's bytes with one field rewritten through ``builder.set_field``, so a
pair differs only in the clause under test.
"""

from __future__ import annotations

from addcow_conformance.vectors.builder import AddCow, field_offset, set_field
from addcow_conformance.vectors.common import (
    FILE_RULES,
    pattern,
    producer,
    read_vector,
    refusal_vector,
    twin_of,
)
from addcow_conformance.vectors.core import File, Vector, finding
from addcow_ref.format.constants import MAGIC


def base() -> tuple[AddCow, bytes, bytes]:
    """3 clusters of 1 KiB, clusters 0 and 2 allocated, backing file shorter than the disk."""
    a = AddCow(virtual_size=3072, cluster_bits=10, backing_name=b"backing.raw", bits={0, 2})
    return a, pattern("header/base:image", 3072), pattern("header/base:backing", 2000)


def _twin(vid: str, description: str, field: str, value: int | bytes, rule: str,
          *also: str, image_length: int | None = None) -> Vector:
    """``also``: rules the rewritten value breaks as well. ``image_length``: the image file
    cut to this length, so a rewritten virtual_size leaves it exactly as long as the disk."""
    a, image, backing = base()
    buf = bytearray(a.build())
    set_field(buf, field, value)
    if image_length is not None:
        image = image[:image_length]
    files = [File("add-cow", "image.add-cow", bytes(buf)), File("image", "image.raw", image),
             File("backing", "backing.raw", backing)]
    rules = [rule, *also]
    v = refusal_vector(vid, description, files, rules,
                       [finding(r, offset=field_offset(field), field=field) for r in rules])
    if image_length is None:  # else the image file differs too: not a twin
        v.twin_of, v.twin_fields = "header/base", (field,)
    return v


@producer
def valid() -> list[Vector]:
    a, image, backing = base()
    out = [read_vector(
        "header/base", "The base image of the header twins: 1 KiB clusters, clusters 0 and 2 "
        "allocated, backing file ends inside cluster 1", a, image, backing,
        exercises=[*FILE_RULES, "READ-DUTY", "BMP-BIT-ORDER", "READ-ALLOCATED",
                   "READ-UNALLOCATED-BACKING",
                   "READ-PAST-BACKING-EOF", "READ-NAME-RELATIVE", "READ-NO-PROBE"])]
    ext = pattern("header/extension:ext", 128 - 16)
    a2 = AddCow(virtual_size=3072, cluster_bits=10, backing_name=b"backing.raw", bits={0, 2},
                header_length=256, extension=b"\x00" * 16 + ext)
    out.append(read_vector(
        "header/unknown-extension-bytes", "header_length is 256: bytes 128..255 hold unknown "
        "non-zero extension fields that a reader must skip; names start at 256",
        a2, image, backing,
        exercises=["READ-HEADER-EXTENSION", "HDR-LENGTH-MIN", "HDR-LENGTH-BOUND"]))
    name = b"disk.raw"
    a3 = AddCow(virtual_size=3072, cluster_bits=10, bits={0, 1, 2},
                header_length=4096 - len(name), image_name=name)
    out.append(read_vector(
        "header/header-length-fills-area", "header_length is 4088, a multiple of 8: the name "
        "area holds exactly the 8-byte image name and ends at bitmap_offset", a3, image, None,
        exercises=["READ-HEADER-EXTENSION", "HDR-LENGTH-BOUND", "HDR-LENGTH-MULTIPLE",
                   "NAME-BOUNDS"]))
    return out


@producer
def length_multiple() -> list[Vector]:
    """header_length must be a multiple of 8 (HDR-LENGTH-MULTIPLE); the names start after it."""
    a, image, backing = base()
    a.header_length = 132
    a.image_name_offset = 136
    return [refusal_vector(
        "header/header-length-not-multiple-of-8", "header_length is 132, not a multiple of 8; "
        "the names start at 136, inside the name area", [
            File("add-cow", "image.add-cow", a.build()), File("image", "image.raw", image),
            File("backing", "backing.raw", backing)], ["HDR-LENGTH-MULTIPLE"],
        [finding("HDR-LENGTH-MULTIPLE", offset=field_offset("header_length"),
                 field="header_length")])]


@producer
def twins() -> list[Vector]:
    out = [
        _twin("header/magic-last-byte-fe", "Magic ends in 0xfe instead of 0xff; everything "
              "else valid", "magic", MAGIC[:7] + b"\xfe", "HDR-MAGIC"),
        _twin("header/magic-qcow2", "Magic is QFI\\xfb (a qcow2 file's signature) padded",
              "magic", b"QFI\xfb\x00\x00\x00\x03", "HDR-MAGIC"),
        _twin("header/version-3", "version is 3, a future version", "version", 3,
              "HDR-VERSION"),
        _twin("header/version-0", "version is 0", "version", 0, "HDR-VERSION"),
        _twin("header/header-length-127", "header_length is 127, one less than the fixed "
              "header and not a multiple of 8 (the name area still starts with a zero byte)",
              "header_length", 127, "HDR-LENGTH-MIN", "HDR-LENGTH-MULTIPLE"),
        _twin("header/reserved1-nonzero", "reserved1 holds 00 00 00 01", "reserved1",
              b"\x00\x00\x00\x01", "HDR-RESERVED"),
        _twin("header/reserved2-nonzero", "The last byte of reserved2 is 0x80", "reserved2",
              bytes(15) + b"\x80", "HDR-RESERVED"),
        _twin("header/virtual-size-unaligned", "virtual_size is 3071, not a multiple of 512 "
              "(same cluster count and bitmap length; the image file is 3071 bytes long too)",
              "virtual_size", 3071, "HDR-VIRTUAL-SIZE-ALIGN", image_length=3071),
    ]
    # bitmap_offset moved to 4608: built with the bitmap really there, so only alignment breaks.
    a, image, backing = base()
    a.bitmap_offset = 4608
    files = [File("add-cow", "image.add-cow", a.build()), File("image", "image.raw", image),
             File("backing", "backing.raw", backing)]
    off = field_offset("bitmap_offset")
    out.append(refusal_vector(
        "header/bitmap-offset-unaligned", "bitmap_offset is 4608 (a multiple of 512, not of "
        "4096); the bitmap is really at 4608", files, ["HDR-BITMAP-OFFSET-ALIGN"],
        [finding("HDR-BITMAP-OFFSET-ALIGN", offset=off, field="bitmap_offset")]))
    a.bitmap_offset = 2048
    files = [File("add-cow", "image.add-cow", a.build()), File("image", "image.raw", image),
             File("backing", "backing.raw", backing)]
    out.append(refusal_vector(
        "header/bitmap-offset-2048", "bitmap_offset is 2048: below 4096, hence also not "
        "aligned; the bitmap is really at 2048", files,
        ["HDR-BITMAP-OFFSET-ALIGN", "HDR-BITMAP-OFFSET-MIN"],
        [finding("HDR-BITMAP-OFFSET-ALIGN", offset=off, field="bitmap_offset"),
         finding("HDR-BITMAP-OFFSET-MIN", offset=off, field="bitmap_offset")]))
    # header_length past bitmap_offset: the name area is empty, so the image name is out of it.
    a, image, backing = base()
    buf = bytearray(a.build())
    set_field(buf, "header_length", 4104)
    files = [File("add-cow", "image.add-cow", bytes(buf)), File("image", "image.raw", image),
             File("backing", "backing.raw", backing)]
    out.append(twin_of("header/base", ("header_length",), refusal_vector(
        "header/header-length-past-bitmap-offset", "header_length is 4104 > bitmap_offset "
        "4096; the name area is empty so neither name lies inside it", files,
        ["HDR-LENGTH-BOUND", "NAME-BOUNDS"],
        [finding("HDR-LENGTH-BOUND", offset=field_offset("header_length"),
                 field="header_length"),
         finding("NAME-BOUNDS", offset=field_offset("image_name_offset"),
                 field="image_name_offset"),
         finding("NAME-BOUNDS", offset=field_offset("backing_name_offset"),
                 field="backing_name_offset")])))
    # Truncated headers.
    full = a.build()
    for n, slug in ((127, "truncated-127-bytes"), (0, "empty-file")):
        files = [File("add-cow", "image.add-cow", full[:n]), File("image", "image.raw", image),
                 File("backing", "backing.raw", backing)]
        out.append(refusal_vector(
            f"header/{slug}", f"The add-cow file is {n} bytes long, shorter than the 128-byte "
            "fixed header", files, ["HDR-COMPLETE"],
            [finding("HDR-COMPLETE", offset=n, field=None)]))
    return out


@producer
def upgrade_refused() -> list[Vector]:
    """An upgrade of a file that is neither version 1 nor version 2: a writer cannot tell what
    it holds, so it must refuse, citing the rule the header breaks, and change nothing."""
    out = []
    for vid, description, field, value, rule in (
            ("header/upgrade-bad-magic-refused", "An upgrade of a file whose magic is QFI\\xfb "
             "(a qcow2 file's signature) padded must be refused: it is not an add-cow file",
             "magic", b"QFI\xfb\x00\x00\x00\x03", "HDR-MAGIC"),
            ("header/upgrade-version-7-refused", "An upgrade of an add-cow file of version 7 "
             "must be refused: only version 1 is upgraded", "version", 7, "HDR-VERSION")):
        v = _twin(vid, description, field, value, rule)
        v.twin_of, v.twin_fields = None, ()
        v.kind = "op"
        v.expect["ops"] = [{"op": "upgrade"}]
        v.requires.append("apply:upgrade")
        out.append(v)
    out.append(_upgrade_short_version())
    return out


def _upgrade_short_version() -> Vector:
    """Version 0x01000001, whose last three bytes alone say 1, in a file that ends after the
    128-byte fixed header (shorter than a 2560-byte version 1 header): only the whole 4-byte
    field says the file is no version 1 image, and an upgrade that reads less of it refuses
    the file as a truncated version 1 header (HDR-COMPLETE) instead. A version field that is
    neither 1 nor 2 leaves no layout to judge the rest by, so HDR-VERSION is the one rule the
    file breaks (the checker reports it alone)."""
    a, image, backing = base()
    buf = bytearray(a.build())
    set_field(buf, "version", 0x01000001)
    files = [File("add-cow", "image.add-cow", bytes(buf[:128])),
             File("image", "image.raw", image), File("backing", "backing.raw", backing)]
    v = refusal_vector(
        "header/upgrade-version-low-bytes-1-refused", "An upgrade of a 128-byte add-cow file "
        "(the fixed header alone) whose version is 0x01000001 must be refused for "
        "HDR-VERSION: the low three bytes say 1, the whole big-endian field does not", files,
        ["HDR-VERSION"], [finding("HDR-VERSION", offset=field_offset("version"),
                                  field="version")])
    v.kind = "op"
    v.expect["ops"] = [{"op": "upgrade"}]
    v.requires.append("apply:upgrade")
    return v
