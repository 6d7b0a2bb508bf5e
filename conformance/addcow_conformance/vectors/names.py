"""Name area and format-field vectors: placements that are valid and each way to break them."""

from __future__ import annotations

from addcow_conformance.vectors.builder import AddCow, field_offset, fmt, set_field
from addcow_conformance.vectors.common import (
    pattern,
    producer,
    read_vector,
    refusal_vector,
    std_files,
)
from addcow_conformance.vectors.core import File, Vector, finding

VS = 4096


def _data(tag: str) -> tuple[bytes, bytes]:
    return pattern(f"names/{tag}:image", VS), pattern(f"names/{tag}:backing", VS)


#: The disk of the boundary vectors: one 1 KiB cluster, to keep the committed files small.
SVS = 1024


def _small_data(tag: str) -> tuple[bytes, bytes]:
    return pattern(f"names/{tag}:image", SVS), pattern(f"names/{tag}:backing", SVS)


def long_name(prefix: str, total: int) -> bytes:
    """A relative path of about ``total`` bytes whose components stay under 255 bytes."""
    parts: list[str] = []
    length = 0
    i = 0
    while length + 210 < total:
        part = f"{prefix}{i:02d}" + "d" * 190
        parts.append(part)
        length += len(part) + 1
        i += 1
    leaf = f"{prefix}.raw"
    pad = total - length - len(leaf)
    if pad > 0:
        leaf = "x" * pad + leaf
    return "/".join([*parts, leaf]).encode()


@producer
def valid() -> list[Vector]:
    image, backing = _data("long")
    img_name = long_name("image", 2100)
    bak_name = long_name("backing", 2200)
    a = AddCow(virtual_size=VS, cluster_bits=10, image_name=img_name, backing_name=bak_name,
               bitmap_offset=8192, bits={0, 2})
    v = read_vector(
        "names/long-names-8k-area", f"Names of {len(img_name)} and {len(bak_name)} bytes (v1 "
        "allowed 1023): they do not fit below 4096, so bitmap_offset is 8192", a, image, backing,
        exercises=["NAME-BOUNDS", "NAME-LENGTH-LIMIT", "HDR-BITMAP-OFFSET-ALIGN",
                   "HDR-BITMAP-OFFSET-MIN",
                   "NAME-AREA-ZERO", "READ-NAME-RELATIVE"])
    v.files = [File("add-cow", "image.add-cow", a.build()),
               File("image", img_name.decode(), image),
               File("backing", bak_name.decode(), backing)]
    out = [v]
    image, backing = _data("reversed")
    a = AddCow(virtual_size=VS, cluster_bits=10, image_name=b"i", backing_name=b"backing.raw",
               image_name_offset=3000, backing_name_offset=500, bits={1, 3})
    v = read_vector(
        "names/reversed-with-gaps", "A one-byte image name 'i' at 3000 and the backing name at "
        "500: order and gaps are free as long as the gaps are zero", a, image, backing,
        exercises=["NAME-IMAGE-REQUIRED", "NAME-BOUNDS", "NAME-OVERLAP", "NAME-AREA-ZERO"])
    v.files = [*std_files(a.build(), None, backing), File("image", "i", image)]
    out.append(v)
    image, backing = _data("at-end")
    a = AddCow(virtual_size=VS, cluster_bits=10, backing_name=b"backing.raw",
               backing_name_offset=4096 - 11, bits={0})
    out.append(read_vector(
        "names/backing-name-ends-at-bitmap", "The backing name's last byte is byte 4095, right "
        "before the bitmap", a, image, backing, exercises=["NAME-BOUNDS", "NAME-AREA-ZERO"]))
    image, backing = _data("utf8")
    img_name = "disque-é.raw".encode()
    bak_name = "базовый.raw".encode()
    a = AddCow(virtual_size=VS, cluster_bits=10, image_name=img_name, backing_name=bak_name,
               bits={0, 3})
    v = read_vector(
        "names/utf8-names", "Names are bytes: 'disque-é.raw' and a Cyrillic backing name, "
        "stored as UTF-8 and reported as text", a, image, backing,
        exercises=["NAME-NO-NUL", "NAME-BOUNDS", "READ-NAME-RELATIVE"])
    v.files = [File("add-cow", "image.add-cow", a.build()),
               File("image", img_name.decode(), image),
               File("backing", bak_name.decode(), backing)]
    out.append(v)
    image, _ = _data("no-backing")
    a = AddCow(virtual_size=VS, cluster_bits=10, bits={2})
    out.append(read_vector(
        "names/no-backing", "No backing file (offset and length 0, empty backing_format): "
        "unallocated clusters read as zeros, whatever the image file holds there", a, image,
        None, exercises=["NAME-BACKING-PAIR", "FMT-BACKING-PRESENCE", "READ-PAST-BACKING-EOF",
                         "READ-UNALLOCATED-BACKING"]))
    return out


def _twin_base(tag: str, **kw: object) -> tuple[AddCow, bytes, bytes]:
    image, backing = _data(tag)
    a = AddCow(virtual_size=VS, cluster_bits=10, backing_name=b"backing.raw", bits={0, 1, 2, 3})
    for k, v in kw.items():
        setattr(a, k, v)
    return a, image, backing


@producer
def invalid() -> list[Vector]:
    out = []
    a, image, backing = _twin_base("img-empty")
    buf = bytearray(a.build())
    set_field(buf, "image_name_length", 0)
    buf[128:137] = bytes(9)
    set_field(buf, "backing_name_offset", 128)
    buf[128:139] = b"backing.raw"
    buf[139:148] = bytes(9)
    out.append(refusal_vector(
        "names/image-name-empty", "image_name_length is 0: the image names no raw file",
        std_files(bytes(buf), image, backing), ["NAME-IMAGE-REQUIRED"],
        [finding("NAME-IMAGE-REQUIRED", offset=field_offset("image_name_length"),
                 field="image_name_length")]))
    for slug, field, value, what in (
            ("backing-offset-without-length", "backing_name_length", 0,
             "backing_name_offset is 137 but backing_name_length is 0"),
            ("backing-length-without-offset", "backing_name_offset", 0,
             "backing_name_length is 11 but backing_name_offset is 0")):
        a, image, backing = _twin_base(slug)
        buf = bytearray(a.build())
        set_field(buf, field, value)
        buf[137:148] = bytes(11)
        out.append(refusal_vector(
            f"names/{slug}", what, std_files(bytes(buf), image, backing),
            ["NAME-BACKING-PAIR"],
            [finding("NAME-BACKING-PAIR", offset=field_offset("backing_name_offset"),
                     field="backing_name_offset")]))
    a, image, backing = _twin_base("outside")
    buf = bytearray(a.build())
    set_field(buf, "backing_name_offset", 8000)
    buf[137:148] = bytes(11)
    out.append(refusal_vector(
        "names/backing-name-past-file-end", "backing_name_offset is 8000, past bitmap_offset "
        "and the end of the file (every cluster is allocated, so the backing file is not needed)",
        std_files(bytes(buf), image, backing), ["NAME-BOUNDS"],
        [finding("NAME-BOUNDS", offset=field_offset("backing_name_offset"),
                 field="backing_name_offset")]))
    a, image, backing = _twin_base("in-header")
    buf = bytearray(a.build())
    set_field(buf, "backing_name_offset", field_offset("backing_format"))
    set_field(buf, "backing_name_length", 3)
    buf[137:148] = bytes(11)
    out.append(refusal_vector(
        "names/backing-name-inside-header", "The backing name points at bytes 96..98 of the "
        "header ('raw', the start of backing_format), before header_length",
        std_files(bytes(buf), image, backing), ["NAME-BOUNDS"],
        [finding("NAME-BOUNDS", offset=field_offset("backing_name_offset"),
                 field="backing_name_offset")]))
    image, backing = _data("overlap")
    a = AddCow(virtual_size=VS, cluster_bits=10, image_name=b"img.raw", backing_name=b"raw",
               backing_name_offset=132, bits={0, 1, 2, 3})
    v = refusal_vector(
        "names/names-overlap", "The backing name 'raw' is the last 3 bytes of the image name "
        "'img.raw' (offsets 132 and 128)", std_files(a.build(), None, None),
        ["NAME-OVERLAP"], [finding("NAME-OVERLAP", offset=field_offset("backing_name_offset"),
                                   field="backing_name_offset")])
    v.files += [File("image", "img.raw", image), File("backing", "raw", backing)]
    out.append(v)
    a, image, backing = _twin_base("nul", backing_name=b"back\0ing.raw")
    nul_at = 128 + 9 + 4
    out.append(refusal_vector(
        "names/backing-name-has-nul", "The backing name holds a NUL byte (names are counted, "
        "not NUL-terminated); a file named 'back', the name up to the NUL, exists too, so a "
        "reader that stops at the NUL finds a backing file and opens the image",
        [*std_files(a.build(), image, backing), File("other", "back", backing)],
        ["NAME-NO-NUL"],
        [finding("NAME-NO-NUL", offset=nul_at, field="backing_name_offset")]))
    a, image, backing = _twin_base("stray")
    buf = bytearray(a.build())
    buf[2000] = 0x01
    out.append(refusal_vector(
        "names/stray-byte-in-area", "Byte 2000 of the name area is 0x01 and belongs to no name",
        std_files(bytes(buf), image, backing), ["NAME-AREA-ZERO"],
        [finding("NAME-AREA-ZERO", offset=2000, field=None)]))
    return out


@producer
def formats() -> list[Vector]:
    out = []
    cases: list[tuple[str, str, str, bytes, str, dict[str, object]]] = [
        ("image-format-garbage-after-nul", "image_format is 'raw', NUL, then 'x'",
         "image_format", b"raw\0x" + bytes(11), "FMT-PADDING", {}),
        ("image-format-qcow2", "image_format is 'qcow2': 2.0 image files are raw",
         "image_format", fmt("qcow2"), "FMT-IMAGE", {}),
        ("image-format-empty", "image_format is empty", "image_format", fmt(""), "FMT-IMAGE", {}),
        ("image-format-upper-case-raw", "image_format is 'RAW': format names compare byte for "
         "byte and case-sensitively, so RAW is an unknown format", "image_format", fmt("RAW"),
         "FMT-IMAGE", {}),
        ("backing-format-without-backing", "backing_format is 'raw' but there is no backing "
         "file", "backing_format", fmt("raw"), "FMT-BACKING-PRESENCE", {"no_backing": True}),
        ("backing-format-empty-with-backing", "There is a backing file but backing_format is "
         "empty", "backing_format", fmt(""), "FMT-BACKING-PRESENCE", {}),
        ("backing-format-garbage-after-nul", "backing_format is 'raw', NUL bytes, and 0x01 in "
         "its last byte", "backing_format", b"raw" + bytes(12) + b"\x01", "FMT-PADDING", {}),
    ]
    for slug, what, field, value, rule, opt in cases:
        image, backing = _data(slug)
        if opt.get("no_backing"):
            a = AddCow(virtual_size=VS, cluster_bits=10, bits={0, 1, 2, 3})
            files = std_files(b"", image, None)
        else:
            a = AddCow(virtual_size=VS, cluster_bits=10, backing_name=b"backing.raw",
                       bits={0, 1, 2, 3})
            files = std_files(b"", image, backing)
        buf = bytearray(a.build())
        set_field(buf, field, value)
        files[0] = File("add-cow", "image.add-cow", bytes(buf))
        out.append(refusal_vector(f"names/{slug}", what, files, [rule],
                                  [finding(rule, offset=field_offset(field), field=field)]))
    image, backing = _data("nonprintable")
    a = AddCow(virtual_size=VS, cluster_bits=10, backing_name=b"backing.raw", bits={0, 1, 2, 3})
    buf = bytearray(a.build())
    set_field(buf, "image_format", b"ra\x01w" + bytes(12))
    out.append(refusal_vector(
        "names/image-format-non-printable-byte", "image_format is 'ra', 0x01, 'w': a format "
        "name is printable ASCII (0x21..0x7e) followed by NUL bytes; the name is also unknown",
        [File("add-cow", "image.add-cow", bytes(buf)), *std_files(b"", image, backing)[1:]],
        ["FMT-PADDING", "FMT-IMAGE"],
        [finding(r, offset=field_offset("image_format"), field="image_format")
         for r in ("FMT-PADDING", "FMT-IMAGE")]))
    image, backing = _data("upper-raw")
    a = AddCow(virtual_size=VS, cluster_bits=10, backing_name=b"backing.raw",
               backing_format="RAW", bits={0, 1, 2, 3})
    out.append(read_vector(
        "names/backing-format-upper-case-raw", "backing_format is 'RAW', which is not 'raw': "
        "format names are case-sensitive, so this names an unknown format (every cluster is "
        "allocated, as for any unknown backing format)", a, image, backing, result="acceptable",
        violates=["FMT-BACKING-KNOWN"], flags=["unknown-backing-format"],
        findings=[finding("FMT-BACKING-KNOWN", offset=field_offset("backing_format"),
                          field="backing_format")],
        expect_extra={"refusal": {"rule": "FMT-BACKING-KNOWN"}}))
    image, backing = _data("vmdk")
    a = AddCow(virtual_size=VS, cluster_bits=10, backing_name=b"backing.raw",
               backing_format="vmdk", bits={0, 1, 2, 3})
    out.append(read_vector(
        "names/backing-format-unknown", "backing_format is 'vmdk'; every cluster is allocated, "
        "so a reader that does not support vmdk refuses and one that does reads the image file",
        a, image, backing, result="acceptable", violates=["FMT-BACKING-KNOWN"],
        flags=["unknown-backing-format"],
        findings=[finding("FMT-BACKING-KNOWN", offset=field_offset("backing_format"),
                          field="backing_format")],
        expect_extra={"refusal": {"rule": "FMT-BACKING-KNOWN"}}))
    return out


@producer
def boundaries() -> list[Vector]:
    """The edges of the name and format-field checks: names that touch but do not overlap,
    names that overlap by one byte, and the printable-ASCII range 0x21..0x7e."""
    out = []
    image, backing = _small_data("touch-reversed")
    a = AddCow(virtual_size=SVS, cluster_bits=10, backing_name=b"backing.raw",
               image_name_offset=139, backing_name_offset=128, bits=set())
    out.append(read_vector(
        "names/backing-name-touches-image-name", "The backing name fills bytes 128..138 and the "
        "image name starts right after it at 139: names that touch do not overlap", a, image,
        backing, exercises=["NAME-OVERLAP", "NAME-BOUNDS", "NAME-AREA-ZERO"]))
    for slug, img_off, bak_off, bak_name, img_name, what in (
            ("names-overlap-one-byte", 128, 136, b"wback.raw", b"image.raw",
             "The backing name 'wback.raw' starts at 136, on the last byte ('w') of the image "
             "name 'image.raw' at 128: one shared byte is an overlap"),
            ("names-overlap-one-byte-reversed", 138, 128, b"backing.raw", b"w.raw",
             "The image name 'w.raw' starts at 138, on the last byte ('w') of the backing name "
             "'backing.raw' at 128: one shared byte is an overlap")):
        image, backing = _small_data(slug)
        a = AddCow(virtual_size=SVS, cluster_bits=10, image_name=img_name,
                   backing_name=bak_name, image_name_offset=img_off,
                   backing_name_offset=bak_off, bits={0})
        v = refusal_vector(
            f"names/{slug}", what, [File("add-cow", "image.add-cow", a.build())],
            ["NAME-OVERLAP"], [finding("NAME-OVERLAP", offset=field_offset("backing_name_offset"),
                                       field="backing_name_offset")])
        v.files += [File("image", img_name.decode(), image),
                    File("backing", bak_name.decode(), backing)]
        out.append(v)
    image, backing = _small_data("space")
    a = AddCow(virtual_size=SVS, cluster_bits=10, backing_name=b"backing.raw", bits={0})
    buf = bytearray(a.build())
    set_field(buf, "image_format", fmt("ra w"))
    out.append(refusal_vector(
        "names/image-format-space", "image_format is 'ra w': a space (0x20) is not printable "
        "in the sense of a format name (0x21..0x7e); the name is also unknown",
        std_files(bytes(buf), image, backing), ["FMT-PADDING", "FMT-IMAGE"],
        [finding(r, offset=field_offset("image_format"), field="image_format")
         for r in ("FMT-PADDING", "FMT-IMAGE")]))
    image, backing = _small_data("del")
    buf = bytearray(a.build())
    set_field(buf, "image_format", fmt(b"raw\x7f"))
    out.append(refusal_vector(
        "names/image-format-del-byte", "image_format is 'raw' then 0x7f (DEL), one past the "
        "printable range; the name is also not raw", std_files(bytes(buf), image, backing),
        ["FMT-PADDING", "FMT-IMAGE"],
        [finding(r, offset=field_offset("image_format"), field="image_format")
         for r in ("FMT-PADDING", "FMT-IMAGE")]))
    image, backing = _small_data("edges")
    a = AddCow(virtual_size=SVS, cluster_bits=10, backing_name=b"backing.raw",
               backing_format="!raw~", bits={0})
    out.append(read_vector(
        "names/backing-format-printable-edges", "backing_format is '!raw~': 0x21 and 0x7e are "
        "the edges of the printable range, so the field is well formed and names an unknown "
        "format (every cluster is allocated): a reader that refuses cites FMT-BACKING-KNOWN, "
        "not FMT-PADDING", a, image, backing, result="acceptable",
        violates=["FMT-BACKING-KNOWN"], flags=["unknown-backing-format"],
        findings=[finding("FMT-BACKING-KNOWN", offset=field_offset("backing_format"),
                          field="backing_format")],
        expect_extra={"refusal": {"rule": "FMT-BACKING-KNOWN"}}))
    return out


@producer
def other_format_name() -> list[Vector]:
    """A valid add-cow backing file named by another format name."""
    image, _ = _small_data("addcow-upper")
    mid = AddCow(virtual_size=SVS, cluster_bits=10, image_name=b"mid.raw", bits={0})
    a = AddCow(virtual_size=SVS, cluster_bits=10, backing_name=b"mid.add-cow",
               backing_format="ADD-COW", bits={0})
    v = read_vector(
        "names/backing-format-add-cow-upper-case", "backing_format is 'ADD-COW' and the "
        "backing file is a valid add-cow image: format names are case-sensitive, so this is an "
        "unknown format and the file's contents must not make it add-cow (every cluster is "
        "allocated)", a, image, None, result="acceptable", violates=["FMT-BACKING-KNOWN"],
        flags=["unknown-backing-format"],
        findings=[finding("FMT-BACKING-KNOWN", offset=field_offset("backing_format"),
                          field="backing_format")],
        expect_extra={"refusal": {"rule": "FMT-BACKING-KNOWN"}},
        exercises=["FMT-CASE", "READ-NO-PROBE"],
        extra_files=[File("backing", "mid.add-cow", mid.build()),
                     File("backing-image", "mid.raw", pattern("names/addcow-upper:mid", SVS))])
    return [v]
