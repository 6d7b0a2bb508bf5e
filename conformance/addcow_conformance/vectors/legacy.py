"""Legacy version 1 vectors (the 2012 v9 layout): read-only, fixed 64 KiB clusters."""

from __future__ import annotations

from typing import cast

from addcow_conformance.records import INFO_KEYS, AfterBlock, AfterFile, InfoRecord, Operation
from addcow_conformance.vectors.builder import V1File, field_offset
from addcow_conformance.vectors.common import pattern, producer, refusal_vector
from addcow_conformance.vectors.core import File, Vector, finding, info_v1, read_expect
from addcow_conformance.vectors.model import Disk, sha256
from addcow_conformance.vectors.names import long_name
from addcow_conformance.vectors.ops import unchanged_after

CB = 16


def _read(vid: str, description: str, v: V1File, image: bytes | None, backing: bytes | None,
          exercises: list[str], image_synth: int | None = None) -> Vector:
    img = image if image is not None else bytes(image_synth or 0)
    disk = Disk(v.virtual_size, CB, bytearray(img), set(v.bits), backing)
    files = [File("add-cow", "image.add-cow", v.build())]
    if image_synth is not None:
        files.append(File("image", v.image_name.decode(), None, image_synth, "zeros"))
    else:
        files.append(File("image", v.image_name.decode(), image))
    if backing is not None:
        files.append(File("backing", v.backing_name.decode(), backing))
    return Vector(id=vid, description=description, kind="read", result="valid", files=files,
                  expect=read_expect(info_v1(v), disk), findings=[], exercises=exercises,
                  requires=["info", "read", "map", "v1"], spec="1")


@producer
def valid() -> list[Vector]:
    image = pattern("legacy/nob:image", 70000)
    v = V1File(image_length=70000, bits={0})
    out = [_read("legacy/no-backing", "v1 image of 70000 bytes: virtual size 69632 (rounded down "
                 "to 512), 2 clusters of 64 KiB, cluster 0 allocated, cluster 1 reads as zeros",
                 v, image, None, ["V1-BITMAP-LENGTH", "V1-NAME-PADDING", "V1-IMAGE-NAME",
                                  "V1-RESERVED", "READ-PAST-BACKING-EOF", "READ-ALLOCATED"])]
    v = V1File(image_length=2 * 65536, backing_name=b"backing.raw", bits={1})
    out.append(_read(
        "legacy/with-backing", "v1 with a 70000-byte raw backing file: cluster 0 reads the "
        "backing file, cluster 1 (allocated) the all-zero image file", v, None,
        pattern("legacy/wb:backing", 70000),
        ["V1-BITMAP-LENGTH", "BMP-BIT-ORDER", "READ-UNALLOCATED-BACKING", "V1-BACKING-RAW"],
        image_synth=2 * 65536))
    v = V1File(image_length=66000, bits={0})
    out.append(_read(
        "legacy/image-length-unaligned", "The v1 image file is 66000 bytes: the virtual size is "
        "65536 and the 464 extra bytes are not guest data", v,
        pattern("legacy/unal:image", 66000), None, ["V1-BITMAP-LENGTH", "READ-ALLOCATED"]))
    name = long_name("image", 1023)
    assert len(name) == 1023
    v = V1File(image_length=65536, image_name=name, bits={0})
    vec = _read("legacy/image-name-1023-bytes", "image_file holds a 1023-byte relative path, the "
                "longest v1 allows, then one NUL byte", v, None, None,
                ["V1-NAME-PADDING", "V1-IMAGE-NAME", "READ-NAME-RELATIVE"], image_synth=65536)
    out.append(vec)
    return out


def _base() -> V1File:
    return V1File(image_length=65536, bits={0})


def _twin(vid: str, description: str, v: V1File, rule: str, offset: int | None,
          field: str | None, data: bytes | None = None) -> Vector:
    built = v.build() if data is None else data
    files = [File("add-cow", "image.add-cow", built),
             File("image", "image.raw", None, v.image_length, "zeros")]
    return refusal_vector(vid, description, files, [rule],
                          [finding(rule, offset=offset, field=field)], requires=["v1"], spec="1")


@producer
def invalid() -> list[Vector]:
    off = field_offset("image_file", v1=True)
    v = _base()
    v.image_name = b"image.raw\0x"
    out = [_twin("legacy/name-garbage-after-nul", "image_file is 'image.raw', NUL, 'x': a "
                 "non-NUL byte follows the padding", v, "V1-NAME-PADDING", off, "image_file")]
    v = _base()
    v.image_name = long_name("image", 1024)
    out.append(_twin("legacy/image-name-1024-bytes", "image_file is 1024 non-NUL bytes: no room "
                     "for the terminating NUL", v, "V1-NAME-PADDING", off, "image_file"))
    v = _base()
    v.image_name = b""
    out.append(_twin("legacy/image-name-empty", "image_file is all NUL bytes", v,
                     "V1-IMAGE-NAME", off, "image_file"))
    v = _base()
    v.reserved = bytes(499) + b"\x01"
    out.append(_twin("legacy/reserved-nonzero", "The last reserved byte is 0x01", v,
                     "V1-RESERVED", field_offset("reserved", v1=True), "reserved"))
    v = _base()
    out.append(_twin("legacy/bitmap-missing", "The file ends at byte 2560: the one-byte bitmap "
                     "is missing", v, "V1-BITMAP-LENGTH", 2560, None, data=v.build()[:2560]))
    return out


@producer
def padding() -> list[Vector]:
    """Set padding bits in v1: readers ignore them as in 2.0 (BMP-PADDING), a checker warns."""
    v = V1File(image_length=70000, bits={0}, backing_name=b"backing.raw")
    v.bitmap = bytes([0x01 | 0x80])
    image = pattern("legacy/pad:image", 70000)
    backing = pattern("legacy/pad:backing", 70000)
    disk = Disk(v.virtual_size, CB, bytearray(image), {0}, backing)
    files = [File("add-cow", "image.add-cow", v.build()), File("image", "image.raw", image),
             File("backing", "backing.raw", backing)]
    expect = read_expect(info_v1(v), disk)
    expect["reader_duty"] = "ignore"
    return [Vector(
        id="legacy/padding-bit-set", description="v1 image of 2 clusters with bit 7 of the "
        "one bitmap byte set: readers ignore padding bits, a checker warns", kind="read",
        result="acceptable", files=files, expect=expect,
        findings=[finding("BMP-PADDING", offset=2560, field="bitmap")],
        violates=["BMP-PADDING"], flags=["padding-bits-set"],
        requires=["info", "read", "map", "v1"], spec="1")]


@producer
def read_only() -> list[Vector]:
    v = V1File(image_length=65536, bits=set(), backing_name=b"backing.raw")
    backing = pattern("legacy/ro:backing", 65536)
    image = bytes(65536)
    files = [File("add-cow", "image.add-cow", v.build()),
             File("image", "image.raw", None, 65536, "zeros"),
             File("backing", "backing.raw", backing)]
    ops: list[Operation] = [{"op": "write", "offset": 100, "length": 1000, "pattern": 0x5A}]
    disk = Disk(v.virtual_size, CB, bytearray(image), set(), backing)
    after = unchanged_after(files, disk, info_v1(v))
    return [Vector(
        id="legacy/write-refused", description="A write to a v1 image must be refused: v1 is "
        "read-only; every file stays unchanged", kind="op", result="valid", files=files,
        expect={"info": info_v1(v), "ops": ops, "refusal": {"rule": "V1-NO-WRITE-OPEN"},
                "after": after}, findings=[],
        exercises=["V1-READ-ONLY", "V1-NO-WRITE-OPEN"], requires=["info", "apply:write", "v1"],
        spec="1"), Vector(
        id="legacy/flush-only-refused", description="An apply that only flushes a v1 image "
        "must be refused too: a writer refuses to open v1 for writing, whatever it would "
        "write; every file stays unchanged", kind="op", result="valid", files=files,
        expect={"info": info_v1(v), "ops": [{"op": "flush"}],
                "refusal": {"rule": "V1-NO-WRITE-OPEN"}, "after": after}, findings=[],
        exercises=["V1-NO-WRITE-OPEN", "V1-READ-ONLY"], requires=["info", "apply:flush", "v1"],
        spec="1")]


@producer
def resize_refused() -> list[Vector]:
    v = V1File(image_length=65536, bits={0})
    files = [File("add-cow", "image.add-cow", v.build()),
             File("image", "image.raw", None, 65536, "zeros")]
    disk = Disk(v.virtual_size, CB, bytearray(65536), {0}, None)
    after = unchanged_after(files, disk, info_v1(v))
    return [Vector(
        id="legacy/resize-refused", description="A resize of a v1 image (a grow by one "
        "cluster) must be refused: v1 is read-only; every file stays unchanged", kind="op",
        result="valid", files=files,
        expect={"info": info_v1(v), "ops": [{"op": "resize", "size": 2 * 65536}],
                "refusal": {"rule": "V1-NO-WRITE-OPEN"}, "after": after}, findings=[],
        exercises=["V1-READ-ONLY", "V1-NO-WRITE-OPEN"], requires=["info", "apply:resize", "v1"],
        spec="1")]


@producer
def chain_ops_refused() -> list[Vector]:
    """A commit or a rebase of a v1 image must be refused before any file changes: a commit
    writes the backing file first, so a writer that notices the version only when it empties
    the image has already changed the backing file."""
    # Two 64 KiB clusters, cluster 1 allocated: a zero (sparse) image file, a short backing.
    v = V1File(image_length=2 * 65536, backing_name=b"backing.raw", bits={1})
    backing = pattern("legacy/chain-refused:backing", 1000)
    files = [File("add-cow", "image.add-cow", v.build()),
             File("image", "image.raw", None, 2 * 65536, "zeros"),
             File("backing", "backing.raw", backing),
             File("other", "new.raw", pattern("legacy/chain-refused:new", 1000))]
    disk = Disk(v.virtual_size, CB, bytearray(2 * 65536), {1}, backing)
    after = unchanged_after(files, disk, info_v1(v))
    out = []
    for name, op, rule, what in (
            ("commit", {"op": "commit"}, "V1-READ-ONLY",
             "a commit (its first step writes the backing file)"),
            ("rebase", {"op": "rebase", "backing": "new.raw", "backing_format": "raw",
                        "unsafe": True}, "V1-NO-WRITE-OPEN",
             "an unsafe rebase onto new.raw (it rewrites the header)")):
        out.append(Vector(
            id=f"legacy/{name}-refused", description=f"{what[0].upper()}{what[1:]} of a v1 "
            "image over a raw backing file must be refused: v1 is read-only; every file, the "
            "backing file too, stays unchanged", kind="op", result="valid", files=files,
            expect={"info": info_v1(v), "ops": [op],  # type: ignore[list-item]
                    "refusal": {"rule": rule}, "after": after}, findings=[],
            exercises=["V1-READ-ONLY", rule] if rule != "V1-READ-ONLY" else ["V1-READ-ONLY"],
            requires=["info", f"apply:{name}", "v1"], spec="1"))
    return out


def _upgraded_info(v: V1File) -> InfoRecord:
    """What ``info`` must say after an upgrade: version 2 with 64 KiB clusters, the same names
    and disk, a raw backing file (v1 has no other). header_length and bitmap_offset are the
    writer's layout and not compared; no feature bit is set (not every bit is 1)."""
    has_backing = bool(v.backing_name)
    info: dict[str, object] = {
        "version": 2,
        "incompatible_features": 0,
        "compatible_features": 0,
        "autoclear_features": 0,
        "virtual_size": v.virtual_size,
        "cluster_bits": CB,
        "cluster_size": 1 << CB,
        "cluster_count": v.cluster_count,
        "image_file": v.image_name.decode(),
        "image_format": "raw",
        "backing_file": v.backing_name.decode() if has_backing else None,
        "backing_format": "raw" if has_backing else None,
        "allocated_clusters": len(v.bits),
    }
    return cast(InfoRecord, {k: info[k] for k in INFO_KEYS if k in info})


def _upgrade(vid: str, description: str, v: V1File, image: bytes | None, image_length: int,
             backing: bytes | None, exercises: list[str]) -> Vector:
    """An op vector of ``{"op": "upgrade"}`` on ``v``: the guest, the map and the decoded
    header after it are pinned; the new add-cow file's bytes are not (its layout is the
    writer's), and the image and backing files must be left exactly as they were."""
    assert len(v.bits) < v.cluster_count
    files = [File("add-cow", "image.add-cow", v.build()),
             File("image", v.image_name.decode(), image) if image is not None
             else File("image", v.image_name.decode(), None, image_length, "zeros")]
    if backing is not None:
        files.append(File("backing", v.backing_name.decode(), backing))
    disk = Disk(v.virtual_size, CB, bytearray(image or bytes(image_length)), set(v.bits),
                backing)
    opens = ["the bytes of the new version 2 add-cow file: header_length, bitmap_offset and "
             "where the names go are the writer's layout (the guest, the map and the decoded "
             "header are compared instead)"]
    after_files: list[AfterFile] = [f.unchanged() for f in files if f.role != "add-cow"]
    if image_length != v.virtual_size:
        kept = (image or bytes(image_length))[:v.virtual_size]
        after_files[0] = {"role": "image", "path": v.image_name.decode(),
                          "compare_length": v.virtual_size, "sha256": sha256(kept)}
        opens.append("the image file's bytes past virtual_size and so its length (in version "
                     "2, IMG-LENGTH is a SHOULD)")
    after: AfterBlock = {
        "files": after_files, "guest_sha256": sha256(disk.guest()), "extents": disk.extents(),
        "info": _upgraded_info(v), "open": opens}
    return Vector(
        id=vid, description=description, kind="op", result="valid", files=files,
        expect={"info": info_v1(v), "ops": [{"op": "upgrade"}], "after": after}, findings=[],
        exercises=exercises, requires=["info", "read", "map", "apply:upgrade", "v1"], spec="1")


@producer
def upgrades() -> list[Vector]:
    out = [_upgrade(
        "legacy/upgrade-no-backing", "Upgrade a v1 image of 3 clusters + 4464 bytes (virtual "
        "size 200704, rounded down to 512) with clusters 0 and 3 allocated to version 2: the "
        "same bits, the same guest, the image file's tail still not guest data",
        V1File(image_length=3 * 65536 + 4464, bits={0, 3}), None, 3 * 65536 + 4464,
        None, ["V1-READ-ONLY", "READ-PAST-BACKING-EOF", "READ-ALLOCATED"])]
    out.append(_upgrade(
        "legacy/upgrade-with-backing", "Upgrade a v1 image of 10 clusters with clusters 1, 2 "
        "and 8 allocated (a 2-byte bitmap) over a 3000-byte raw backing file: version 2 with "
        "backing_format raw, the same bits and the same guest", V1File(
            image_length=10 * 65536, backing_name=b"backing.raw", bits={1, 2, 8}), None,
        10 * 65536, pattern("legacy/upb:backing", 3000),
        ["V1-READ-ONLY", "V1-BACKING-RAW", "READ-UNALLOCATED-BACKING", "BMP-BIT-ORDER"]))
    return out


@producer
def upgrade_alternating() -> list[Vector]:
    v = V1File(image_length=16 * 65536, backing_name=b"backing.raw", bits={0, 8})
    assert v.build()[2560:] == b"\x01\x01"
    return [_upgrade(
        "legacy/upgrade-bitmap-bytes-0x01", "Upgrade a v1 image of 16 clusters whose bitmap "
        "bytes are both 0x01 (clusters 0 and 8 allocated, every other cluster not): the new "
        "bitmap keeps exactly those bits (the map pins them); allocated cluster 0 reads the "
        "all-zero image file, cluster 1 the backing file, which ends 4096 bytes into it",
        v, None, 16 * 65536, pattern("legacy/upa:backing", 65536 + 4096),
        ["V1-READ-ONLY", "V1-BACKING-RAW", "BMP-BIT-ORDER", "READ-UNALLOCATED-BACKING"])]
