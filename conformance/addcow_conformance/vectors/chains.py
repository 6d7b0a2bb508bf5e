"""Backing chain vectors: add-cow backing files, missing backing files, loops and depth."""

from __future__ import annotations

from addcow_conformance.records import Operation
from addcow_conformance.vectors.builder import AddCow, field_offset
from addcow_conformance.vectors.common import pattern, producer, read_vector, refusal_vector
from addcow_conformance.vectors.core import File, Vector, finding, info_v2, read_expect
from addcow_conformance.vectors.model import Disk
from addcow_conformance.vectors.ops import op_vector, refused_op_vector

CS_BITS = 12
CS = 1 << CS_BITS
BNO = field_offset("backing_name_offset")


def _layer(a: AddCow, image: bytes, below: bytes | None) -> Disk:
    return Disk(a.virtual_size, a.cluster_bits, bytearray(image), set(a.bits), below)


def _chain_vector(vid: str, description: str, top_vs: int, mid_vs: int, base_len: int,
                  top_bits: set[int], mid_bits: set[int], exercises: list[str],
                  mid_cluster_bits: int = CS_BITS, top_cluster_bits: int = CS_BITS,
                  ranges: list[tuple[int, int]] | None = None) -> Vector:
    base = pattern(f"{vid}:base", base_len)
    mid = AddCow(virtual_size=mid_vs, cluster_bits=mid_cluster_bits, image_name=b"mid.raw",
                 backing_name=b"base.raw", bits=mid_bits)
    mid_image = pattern(f"{vid}:mid", mid_vs)
    top = AddCow(virtual_size=top_vs, cluster_bits=top_cluster_bits, backing_name=b"mid.add-cow",
                 backing_format="add-cow", bits=top_bits)
    top_image = pattern(f"{vid}:top", top_vs)
    mid_guest = _layer(mid, mid_image, base).guest()
    disk = _layer(top, top_image, mid_guest)
    files = [File("add-cow", "image.add-cow", top.build()), File("image", "image.raw", top_image),
             File("backing", "mid.add-cow", mid.build()),
             File("backing-image", "mid.raw", mid_image), File("backing", "base.raw", base)]
    return Vector(id=vid, description=description, kind="read", result="valid", files=files,
                  expect=read_expect(info_v2(top), disk, ranges), findings=[],
                  exercises=exercises, requires=["info", "read", "map", "backing-chain"])


@producer
def one_byte_reads() -> list[Vector]:
    """1-byte reads through an add-cow backing file, at and around its cluster boundaries
    and its end, where a reader that clips or rounds short reads goes wrong."""
    cs = 512
    ranges = [(0, 1), (cs - 1, 1), (cs, 1), (cs + 1, 1), (2 * cs - 1, 1), (2 * cs, 1),
              (3 * cs - 1, 1), (3 * cs, 1), (4 * cs + 7, 1), (6 * cs - 1, 1),
              (cs - 1, 2), (3 * cs - 2, 4)]
    return [_chain_vector(
        "chains/one-byte-reads-through-add-cow-backing", "1-byte reads of image.add-cow (6 "
        "clusters of 512 bytes, cluster 4 allocated) over mid.add-cow (3 clusters, cluster 1 "
        "allocated) over base.raw: each byte comes from the right layer, and past mid's end "
        "reads as zeros", 6 * cs, 3 * cs, 2 * cs + 100, {4}, {1},
        ["READ-UNALLOCATED-BACKING", "READ-PAST-BACKING-EOF", "BACK-FORMAT"],
        mid_cluster_bits=9, top_cluster_bits=9, ranges=ranges)]


@producer
def chains() -> list[Vector]:
    return [
        _chain_vector(
            "chains/add-cow-backing-2-levels", "image.add-cow -> mid.add-cow (add-cow) -> "
            "base.raw (raw): cluster 0 from the top image, cluster 1 from mid.raw, clusters 2 "
            "and 3 from base.raw", 4 * CS, 4 * CS, 4 * CS, {0}, {1},
            ["BACK-FORMAT", "BACK-DEPTH", "BACK-LOOP", "READ-UNALLOCATED-BACKING",
             "READ-NO-PROBE"]),
        _chain_vector(
            "chains/add-cow-backing-shorter", "The add-cow backing image is 2.125 clusters long "
            "and its raw backing 6000 bytes: the top's cluster 3 is past the backing's end and "
            "reads as zeros", 4 * CS, 2 * CS + 512, 6000, {1}, {0},
            ["READ-PAST-BACKING-EOF", "BACK-FORMAT"]),
        _chain_vector(
            "chains/mixed-cluster-sizes", "The top image has 4 KiB clusters, its add-cow backing "
            "512-byte ones with clusters 3, 9 and 17 allocated: each layer maps with its own "
            "cluster size", 4 * CS, 4 * CS, 4 * CS, {2}, {3, 9, 17},
            ["READ-UNALLOCATED-BACKING", "BMP-BIT-ORDER"], mid_cluster_bits=9),
    ]


@producer
def merged_backing_tail() -> list[Vector]:
    """A map whose extents from the backing file must merge: mid.add-cow has no backing file
    and is shorter than the top image, so its unallocated last cluster (no data) and the
    range past its end (zeros, no data) are the same status one layer down, one extent."""
    cs = 512
    vid = "chains/add-cow-backing-tail-merges"
    mid = AddCow(virtual_size=3 * cs, cluster_bits=9, image_name=b"mid.raw", bits={1})
    mid_image = pattern(f"{vid}:mid", 3 * cs)
    top = AddCow(virtual_size=4 * cs, cluster_bits=9, backing_name=b"mid.add-cow",
                 backing_format="add-cow", bits={0})
    top_image = pattern(f"{vid}:top", 4 * cs)
    disk = _layer(top, top_image, _layer(mid, mid_image, None).guest())
    files = [File("add-cow", "image.add-cow", top.build()), File("image", "image.raw", top_image),
             File("backing", "mid.add-cow", mid.build()),
             File("backing-image", "mid.raw", mid_image)]
    return [Vector(
        id=vid, description="image.add-cow (4 clusters of 512 bytes, cluster 0 allocated) over "
        "mid.add-cow (3 clusters, cluster 1 allocated, no backing file): mid's unallocated "
        "cluster 2 and the range past mid's end both read zeros with no layer holding them: the "
        "map is cluster 0 allocated, then one unallocated extent to the end",
        kind="read", result="valid", files=files, expect=read_expect(info_v2(top), disk),
        findings=[], exercises=["READ-UNALLOCATED-BACKING", "READ-PAST-BACKING-EOF",
                                "BACK-FORMAT"],
        requires=["info", "read", "map", "backing-chain"])]


def _simple(tag: str, **kw: object) -> tuple[AddCow, bytes, bytes]:
    a = AddCow(virtual_size=2 * CS, cluster_bits=CS_BITS, backing_name=b"backing.raw", bits={0})
    for k, v in kw.items():
        setattr(a, k, v)
    return a, pattern(f"chains/{tag}:image", 2 * CS), pattern(f"chains/{tag}:backing", 2 * CS)


@producer
def broken() -> list[Vector]:
    out = []
    a, image, _ = _simple("missing-ok", backing_name=b"missing.raw", bits={0, 1})
    out.append(refusal_vector(
        "chains/backing-missing-all-allocated", "The backing file missing.raw does not exist "
        "and every bit is 1, but all_allocated is clear: a reader opens the whole chain when it "
        "opens the image and never decides this by scanning the bitmap, so it refuses",
        [File("add-cow", "image.add-cow", a.build()), File("image", "image.raw", image)],
        ["BACK-EXISTS"], [finding("BACK-EXISTS", offset=BNO, field="backing_name_offset")]))
    a, image, _ = _simple("missing-flag", backing_name=b"missing.raw", bits={0, 1},
                          compatible_features=1)
    out.append(read_vector(
        "chains/backing-missing-all-allocated-flag", "The backing file missing.raw does not "
        "exist and all_allocated is set: a reader MAY skip the backing chain, so opening (the "
        "image file holds every byte) and refusing both conform; a checker reports the error",
        a, image, None, result="acceptable", violates=["BACK-EXISTS", "READ-BACKING-SKIP"],
        flags=["backing-unchecked-all-allocated"],
        findings=[finding("BACK-EXISTS", offset=BNO, field="backing_name_offset")],
        reader_duty="either", expect_extra={"refusal": {"rule": "BACK-EXISTS"}}))
    a, image, _ = _simple("missing", backing_name=b"missing.raw")
    out.append(refusal_vector(
        "chains/backing-missing", "The backing file missing.raw does not exist and cluster 1 "
        "is unallocated", [File("add-cow", "image.add-cow", a.build()),
                           File("image", "image.raw", image)], ["BACK-EXISTS"],
        [finding("BACK-EXISTS", offset=BNO, field="backing_name_offset")]))
    a, image, backing = _simple("fmt", backing_format="add-cow")
    out.append(refusal_vector(
        "chains/backing-format-mismatch", "backing_format is add-cow but backing.raw holds raw "
        "data", [File("add-cow", "image.add-cow", a.build()), File("image", "image.raw", image),
                 File("backing", "backing.raw", backing)], ["BACK-FORMAT"],
        [finding("BACK-FORMAT", offset=field_offset("backing_format"), field="backing_format")],
        requires=["backing-chain"]))
    a, image, _ = _simple("self", backing_name=b"image.add-cow", backing_format="add-cow")
    out.append(refusal_vector(
        "chains/self-loop", "The image names itself as its add-cow backing file",
        [File("add-cow", "image.add-cow", a.build()), File("image", "image.raw", image)],
        ["BACK-LOOP"], [finding("BACK-LOOP", offset=BNO, field="backing_name_offset")],
        requires=["backing-chain"]))
    a, image, _ = _simple("two", backing_name=b"other.add-cow", backing_format="add-cow")
    b = AddCow(virtual_size=2 * CS, cluster_bits=CS_BITS, image_name=b"other.raw",
               backing_name=b"image.add-cow", backing_format="add-cow", bits={1})
    out.append(refusal_vector(
        "chains/two-file-loop", "image.add-cow -> other.add-cow -> image.add-cow",
        [File("add-cow", "image.add-cow", a.build()), File("image", "image.raw", image),
         File("backing", "other.add-cow", b.build()),
         File("backing-image", "other.raw", pattern("chains/two:other", 2 * CS))],
        ["BACK-LOOP"], [finding("BACK-LOOP", offset=BNO, field="backing_name_offset")],
        requires=["backing-chain"]))
    return out


def _layers(vid: str, below: int) -> tuple[list[File], bytes]:
    """``below`` add-cow layers l01.add-cow, l02.add-cow, ... over base.raw, every layer 1
    sector and empty: their files, and the bytes of base.raw, which every layer reads."""
    base = pattern(f"{vid}:base", 512)
    files: list[File] = []
    names = [f"l{i:02d}.add-cow" for i in range(1, below + 1)]
    for i, name in enumerate(names):
        nxt = names[i + 1] if i + 1 < len(names) else "base.raw"
        layer = AddCow(virtual_size=512, cluster_bits=9, image_name=name[:3].encode() + b".raw",
                       backing_name=nxt.encode(),
                       backing_format="add-cow" if nxt.endswith(".add-cow") else "raw")
        files.append(File("backing", name, layer.build()))
        files.append(File("backing-image", name[:3] + ".raw", None, 512, "zeros"))
    files.append(File("backing", "base.raw", base))
    return files, base


def _deep(vid: str, below: int) -> tuple[list[File], Disk, AddCow]:
    """A top image over ``below`` add-cow layers over base.raw; every layer is 1 sector."""
    files, base = _layers(vid, below)
    top = AddCow(virtual_size=512, cluster_bits=9, backing_name=b"l01.add-cow",
                 backing_format="add-cow")
    files = [File("add-cow", "image.add-cow", top.build()),
             File("image", "image.raw", None, 512, "zeros"), *files]
    return files, Disk(512, 9, bytearray(512), set(), base), top


@producer
def depth() -> list[Vector]:
    files, disk, top = _deep("chains/depth-64", 64)
    out = [Vector(
        id="chains/depth-64", description="64 add-cow files below the top image (the most "
        "allowed), then a raw base: every read goes through all of them",
        kind="read", result="valid", files=files, expect=read_expect(info_v2(top), disk),
        findings=[], exercises=["BACK-DEPTH", "BACK-LOOP"],
        requires=["info", "read", "map", "backing-chain"])]
    files, _, _ = _deep("chains/depth-65", 65)
    out.append(refusal_vector(
        "chains/depth-65", "65 add-cow files below the top image: one too many", files,
        ["BACK-DEPTH"], [finding("BACK-DEPTH", offset=BNO, field="backing_name_offset")],
        requires=["backing-chain"]))
    return out


@producer
def rebase_depth() -> list[Vector]:
    """A rebase opens the new backing chain as a reader would, counting the image itself: onto
    l01.add-cow with 63 more layers below it the chain holds 64 add-cow files below the image
    (the most allowed); with 64 more it would hold 65, and the file a rebase left would break
    BACK-DEPTH, so the rebase is refused. The unsafe form, which reads nothing, too."""
    a = AddCow(virtual_size=512, cluster_bits=9, backing_name=b"backing.raw")
    op: Operation = {"op": "rebase", "backing": "l01.add-cow", "backing_format": "add-cow",
                     "unsafe": True}
    files, base = _layers("ops/rebase-64", 64)
    out = [op_vector(
        "ops/rebase-onto-a-64-deep-chain", "Unsafe rebase onto l01.add-cow, the top of 64 "
        "empty add-cow layers over base.raw: the chain then holds 64 add-cow files below the "
        "image, the most allowed, and every read goes through all of them to base.raw", a,
        pattern("ops/rebase-64:image", 512), pattern("ops/rebase-64:backing", 512), [op],
        ["REBASE-COMPLETE", "BACK-DEPTH"], extra_files=files, views={"l01.add-cow": base},
        requires=["backing-chain"])]
    files, _ = _layers("ops/rebase-65", 65)
    out.append(refused_op_vector(
        "ops/rebase-onto-a-65-deep-chain-refused", "Unsafe rebase onto l01.add-cow, the top "
        "of 65 empty add-cow layers: the chain would hold 65 add-cow files below the image, "
        "one too many, so the rebase is refused and no file changes", a,
        pattern("ops/rebase-65:image", 512), pattern("ops/rebase-65:backing", 512), [op],
        "BACK-DEPTH", ["REBASE-COMPLETE", "BACK-DEPTH"], extra_files=files,
        requires=["backing-chain"]))
    return out
