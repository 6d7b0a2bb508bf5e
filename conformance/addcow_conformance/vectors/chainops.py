"""Commit and rebase vectors (spec: "Committing and rebasing"): the operations that move data
between an image and its backing file, or change which backing file it has.

Each is an ``op`` vector built by ``ops.op_vector`` from the oracle (``Disk.commit`` and
``Disk.rebase`` in ``model.py``): the backing file's bytes after a commit and the names after a
rebase are the spec's, never the reference's. What the spec leaves to the writer is not
compared: the image file after a commit that empties the image (it may be punched), a raw
backing file's length past the committed data (it reads zeros up to the disk's end either way),
and after a rebase where the names and the bitmap go in the add-cow file. A safe rebase may
allocate more than the clusters that differ, so each safe rebase here makes every unallocated
cluster differ, and the bits after it are pinned.
"""

from __future__ import annotations

from addcow_conformance.vectors.builder import AddCow
from addcow_conformance.vectors.common import pattern, producer
from addcow_conformance.vectors.core import File, Vector
from addcow_conformance.vectors.ops import (
    AddCowBacking,
    op_vector,
    refused_op_vector,
    unknown_autoclear,
)

#: 512-byte clusters keep every file of these vectors a few KiB.
CS = 512


def _image(tag: str, size: int) -> bytes:
    return pattern(f"chainops/{tag}:image", size)


def _overlay(clusters: int, bits: set[int]) -> AddCow:
    return AddCow(virtual_size=clusters * CS, cluster_bits=9, backing_name=b"backing.raw",
                  bits=bits)


def _mid(tag: str, size: int, cluster_bits: int, bits: set[int],
         base: bytes | None = None) -> AddCowBacking:
    """mid.add-cow, the add-cow backing image of :func:`_over_mid`: image file mid.raw, and
    over base.raw when ``base`` is given."""
    return AddCowBacking(
        "mid.add-cow", AddCow(virtual_size=size, cluster_bits=cluster_bits, image_name=b"mid.raw",
                              backing_name=b"base.raw" if base is not None else None,
                              bits=bits), pattern(f"chainops/{tag}:mid", size), base)


def _over_mid(size: int, bits: set[int], cluster_bits: int = 9) -> AddCow:
    """An image over mid.add-cow (:func:`_mid`)."""
    return AddCow(virtual_size=size, cluster_bits=cluster_bits, backing_name=b"mid.add-cow",
                  backing_format="add-cow", bits=bits)


@producer
def commits() -> list[Vector]:
    out = []
    a = _overlay(8, {0, 2, 3, 6})
    out.append(op_vector(
        "ops/commit-into-raw-backing", "Commit 8 clusters of 512 bytes (0, 2, 3 and 6 "
        "allocated) into a raw backing file that ends inside cluster 5: the backing file gets "
        "the four clusters and grows to the end of cluster 6 (zeros before it, where the guest "
        "read zeros past the old end); the image is emptied and still reads the same", a,
        _image("raw", 8 * CS), pattern("chainops/raw:backing", 5 * CS + 256),
        [{"op": "commit"}], ["COMMIT-COMPLETE", "READ-PAST-BACKING-EOF"]))
    a = AddCow(virtual_size=3 * 1024 + CS, cluster_bits=10, backing_name=b"backing.raw",
               bits={1})
    out.append(op_vector(
        "ops/commit-after-writes", "In one apply, 1 KiB clusters: a write across clusters 1 "
        "and 2, a write into the 512-byte last cluster 3, then a commit into a raw backing "
        "file longer than the disk: bytes 0..3583 of the backing file become the guest disk, "
        "its 1416 bytes past the disk's end stay as they were", a,
        _image("writes", 3 * 1024 + CS), pattern("chainops/writes:backing", 5000),
        [{"op": "write", "offset": 2 * 1024 - 100, "length": 300, "pattern": 0x5A},
         {"op": "write", "offset": 3 * 1024 + 100, "length": 10, "pattern": 0xA5},
         {"op": "commit"}],
        ["COMMIT-COMPLETE", "WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT"]))
    a = _overlay(6, {1, 4})
    out.append(op_vector(
        "ops/commit-keep", "Commit with keep (qemu-img commit -d): the raw backing file gets "
        "clusters 1 and 4, the image is left exactly as it was", a, _image("keep", 6 * CS),
        pattern("chainops/keep:backing", 6 * CS), [{"op": "commit", "keep": True}],
        ["COMMIT-COMPLETE"]))
    mid = _mid("chain", 8 * CS, 10, {2}, pattern("chainops/chain:base", 3000))
    a = _over_mid(8 * CS, {1, 5, 6})
    out.append(op_vector(
        "ops/commit-into-add-cow-backing", "Commit image.add-cow (512-byte clusters 1, 5 and 6 "
        "allocated) into mid.add-cow (1 KiB clusters, cluster 2 allocated) over base.raw: "
        "mid's cluster 0 is allocated with its head from base.raw, cluster 2 takes bytes "
        "2560..3071 in place, cluster 3 is allocated with its tail from base.raw (zeros past its "
        "end); base.raw is unchanged and the emptied image still reads the same", a,
        _image("chain", 8 * CS), None, [{"op": "commit"}],
        ["COMMIT-COMPLETE", "WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT"], lower=mid,
        requires=["backing-chain"]))
    mid = _mid("end", 4 * CS, 10, {0}, pattern("chainops/end:base", 4 * CS))
    a = _over_mid(4 * CS, {1, 3})
    out.append(op_vector(
        "ops/commit-into-add-cow-backing-to-its-end", "Commit image.add-cow (512-byte clusters "
        "1 and 3, the last, allocated) into mid.add-cow of the same size: the committed data "
        "reaches the backing image's last byte, which a commit must still write", a,
        _image("end", 4 * CS), None, [{"op": "commit"}],
        ["COMMIT-COMPLETE", "WRITE-RANGE", "WRITE-COW-HEAD-TAIL"], lower=mid,
        requires=["backing-chain"]))
    short = _mid("short", 3 * CS, 9, {0})
    a = _over_mid(4 * CS, {0, 3})
    out.append(refused_op_vector(
        "ops/commit-into-shorter-add-cow-backing-refused", "Commit image.add-cow (4 clusters, "
        "0 and 3 allocated) into mid.add-cow of 3 clusters: cluster 3 has no place there (its "
        "write would break WRITE-RANGE), so the commit is refused before it writes cluster 0, "
        "and no file changes", a, _image("short", 4 * CS), None, [{"op": "commit"}],
        "WRITE-RANGE", ["COMMIT-COMPLETE", "WRITE-RANGE"], lower=short,
        requires=["backing-chain"]))
    a = AddCow(virtual_size=4 * CS, cluster_bits=9, bits={0, 2})
    out.append(refused_op_vector(
        "ops/commit-without-backing-refused", "Commit an image that has no backing file "
        "(backing_name_offset and backing_name_length 0; clusters 0 and 2 allocated): there is "
        "nothing to commit into, so the commit is refused, as qemu-img commit refuses it, and "
        "no file changes", a, _image("solo", 4 * CS), None, [{"op": "commit"}],
        "COMMIT-NEEDS-BACKING", ["COMMIT-NEEDS-BACKING"]))
    a = AddCow(virtual_size=4 * CS, cluster_bits=9, backing_name=b"backing.raw", bits={1},
               autoclear_features=1 << 5)
    out.append(op_vector(
        "ops/commit-clears-unknown-autoclear", "autoclear_features has unknown bit 5: a commit "
        "that empties the image changes it, so the writer clears the bit with all_allocated "
        "and the bits", a, _image("autoclear", 4 * CS),
        pattern("chainops/autoclear:backing", 4 * CS), [{"op": "commit"}],
        ["COMMIT-COMPLETE", "FEAT-AUTOCLEAR-UNKNOWN"], **unknown_autoclear()))
    return out


def _differing(old: bytes, size: int) -> bytes:
    """A new backing file that differs from ``old`` in every unallocated cluster of the safe
    rebase vectors (clusters 0, 2, 3 and 5 of 6): one byte of cluster 0, all of cluster 2, the
    last byte of cluster 3, and it ends 100 bytes into cluster 5."""
    new = bytearray(old[:size])
    new[100] ^= 0xFF
    new[2 * CS:3 * CS] = pattern("chainops/new:cluster2", CS)
    new[4 * CS - 1] ^= 0x01
    return bytes(new[:5 * CS + 100])


@producer
def rebases() -> list[Vector]:
    out = []
    old = pattern("chainops/rebase:backing", 6 * CS)
    new = File("other", "new.raw", _differing(old, 6 * CS))
    a = _overlay(6, {1, 4})
    out.append(op_vector(
        "ops/rebase-safe", "Safe rebase onto new.raw, which differs from backing.raw in one "
        "byte of cluster 0, all of cluster 2, the last byte of cluster 3 and ends 100 bytes into "
        "cluster 5: those four unallocated clusters are copied into the image from the old "
        "backing file before the name changes, so the guest disk is unchanged", a,
        _image("safe", 6 * CS), old,
        [{"op": "rebase", "backing": "new.raw", "backing_format": "raw"}],
        ["REBASE-COMPLETE", "READ-PAST-BACKING-EOF"], extra_files=[new]))
    out.append(op_vector(
        "ops/rebase-unsafe", "Unsafe rebase onto new.raw (differing data): only the names "
        "change; no bit and no byte of the image file, so the unallocated clusters now read "
        "new.raw", a, _image("unsafe", 6 * CS), old,
        [{"op": "rebase", "backing": "new.raw", "backing_format": "raw", "unsafe": True}],
        ["REBASE-COMPLETE"], extra_files=[new]))
    a = _overlay(4, {1})
    out.append(op_vector(
        "ops/rebase-to-no-backing", "Safe rebase to no backing file: every unallocated cluster "
        "reads backing data, so each is copied into the image, then the backing name and "
        "format are dropped", a, _image("none", 4 * CS),
        pattern("chainops/none:backing", 4 * CS),
        [{"op": "rebase", "backing": None}], ["REBASE-COMPLETE"]))
    out.append(op_vector(
        "ops/rebase-unsafe-to-no-backing", "Unsafe rebase to no backing file: the names go, "
        "nothing is copied, and the unallocated clusters now read as zeros", a,
        _image("none-unsafe", 4 * CS), pattern("chainops/none-unsafe:backing", 4 * CS),
        [{"op": "rebase", "backing": None, "unsafe": True}],
        ["REBASE-COMPLETE", "READ-PAST-BACKING-EOF"]))
    base = pattern("chainops/drop:base", 8 * CS)
    mid = _mid("drop", 8 * CS, 10, {0, 2}, base)
    a = _over_mid(8 * CS, {1, 3}, cluster_bits=10)
    out.append(op_vector(
        "ops/rebase-drop-middle-layer", "Safe rebase of image.add-cow from mid.add-cow (over "
        "base.raw) onto base.raw: clusters 0 and 2, where mid.add-cow's own data shows, are "
        "copied into the image; the backing files are unchanged", a, _image("drop", 8 * CS),
        None, [{"op": "rebase", "backing": "base.raw", "backing_format": "raw"}],
        ["REBASE-COMPLETE", "READ-UNALLOCATED-BACKING"], lower=mid,
        requires=["backing-chain"]))
    base = pattern("chainops/layers:base", 6 * CS)
    mid = _mid("layers", 6 * CS, 9, {3, 4}, base)
    a = _over_mid(6 * CS, {0, 2})
    out.append(op_vector(
        "ops/rebase-safe-across-layers", "Safe rebase of image.add-cow (clusters 0 and 2 "
        "allocated) from mid.add-cow (clusters 3 and 4 allocated, over base.raw) onto new.raw, "
        "which differs everywhere: cluster 1 reads base.raw alone, clusters 3..5 read two "
        "layers in one unbroken range after it, and every one of them is copied", a,
        _image("layers", 6 * CS), None,
        [{"op": "rebase", "backing": "new.raw", "backing_format": "raw"}],
        ["REBASE-COMPLETE", "READ-UNALLOCATED-BACKING"], lower=mid,
        extra_files=[File("other", "new.raw", pattern("chainops/layers:new", 6 * CS))],
        requires=["backing-chain"]))
    a = _overlay(4, {2})
    out.append(refused_op_vector(
        "ops/rebase-nul-in-name-refused", "Unsafe rebase onto the name 'new\\u0000.raw': names "
        "must not hold a NUL byte, so the rebase is refused and no file changes", a,
        _image("nul", 4 * CS), pattern("chainops/nul:backing", 4 * CS),
        [{"op": "rebase", "backing": "new\u0000.raw", "backing_format": "raw", "unsafe": True}],
        "NAME-NO-NUL", ["REBASE-COMPLETE", "NAME-NO-NUL"]))
    out.append(refused_op_vector(
        "ops/rebase-safe-missing-refused", "Safe rebase onto missing.raw, which does not "
        "exist: the safe form must read it, so the rebase is refused and no file changes", a,
        _image("missing", 4 * CS), pattern("chainops/missing:backing", 4 * CS),
        [{"op": "rebase", "backing": "missing.raw", "backing_format": "raw"}], "BACK-EXISTS",
        ["REBASE-COMPLETE", "BACK-EXISTS"]))
    out.append(refused_op_vector(
        "ops/rebase-unknown-format-refused", "Rebase onto backing.raw declared as qcow2, a "
        "format add-cow does not define: refused rather than guessed, and no file changes", a,
        _image("format", 4 * CS), pattern("chainops/format:backing", 4 * CS),
        [{"op": "rebase", "backing": "backing.raw", "backing_format": "qcow2"}],
        "READ-NO-PROBE", ["REBASE-COMPLETE", "READ-NO-PROBE"]))
    a = AddCow(virtual_size=6 * CS, cluster_bits=9, backing_name=b"backing.raw", bits={1, 4},
               header_length=256, extension=pattern("chainops/extension:header", 128))
    out.append(op_vector(
        "ops/rebase-keeps-header-extension", "Unsafe rebase of an image whose header_length is "
        "256, with 128 bytes of header extension: the new names go after the extension, which "
        "is kept byte for byte with header_length (HDR-EXTENSION-KEEP)", a,
        _image("extension", 6 * CS), old,
        [{"op": "rebase", "backing": "new.raw", "backing_format": "raw", "unsafe": True}],
        ["REBASE-COMPLETE", "HDR-EXTENSION-KEEP"], extra_files=[new]))
    # A name area full to the bitmap: header extension to 3992, the image name (9 bytes) and a
    # 95-byte backing name end at 4096; after the rename to new.raw its last 88 bytes are
    # padding, which must be zero (NAME-AREA-ZERO) whatever the old name left there.
    full = "full-" * 17 + "name-a.raw"
    a = AddCow(virtual_size=6 * CS, cluster_bits=9, backing_name=full.encode(), bits={1, 4},
               header_length=3992, extension=pattern("chainops/full:header", 3992 - 128))
    assert 3992 + 9 + len(full) == 4096
    out.append(op_vector(
        "ops/rebase-from-a-full-name-area", "Unsafe rebase onto new.raw of an image whose names "
        "fill the name area up to the bitmap at 4096: the shorter new name leaves padding "
        "before the bitmap, which must be zero, and every bit is kept", a,
        _image("full", 6 * CS), None,
        [{"op": "rebase", "backing": "new.raw", "backing_format": "raw", "unsafe": True}],
        ["REBASE-COMPLETE", "NAME-AREA-ZERO"],
        extra_files=[File("backing", full, old), new]))
    # Names that outgrow the name area: a header extension up to byte 3992 leaves 104 bytes
    # before the bitmap at 4096, and the new name alone takes 115.
    moved = "moved-" * 18 + "new.raw"
    a = AddCow(virtual_size=6 * CS, cluster_bits=9, backing_name=b"backing.raw", bits={1, 4},
               header_length=3992, extension=pattern("chainops/outgrow:header", 3992 - 128))
    out.append(op_vector(
        "ops/rebase-name-outgrows-name-area", f"Unsafe rebase onto a {len(moved)}-byte name "
        "of an image whose header extension ends at byte 3992: image name and new backing "
        "name no longer fit before the bitmap at 4096, so the writer moves the bitmap (where "
        "to is its choice) and keeps every bit and the extension", a,
        _image("outgrow", 6 * CS), old,
        [{"op": "rebase", "backing": moved, "backing_format": "raw", "unsafe": True}],
        ["REBASE-COMPLETE", "HDR-EXTENSION-KEEP", "NAME-BOUNDS"],
        extra_files=[File("other", moved, _differing(old, 6 * CS))]))
    return out
