"""Operation vectors: writes and resizes applied to a copy, with every resulting file's hash.

The expected files are rebuilt from the oracle's state after the operations (image bytes and
allocated set) and the builder: the reference implementation is never asked what it would write.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from addcow_conformance.records import (
    AfterBlock,
    AfterFile,
    ByteRange,
    ExpectBlock,
    ExpectedFinding,
    InfoRecord,
    Operation,
    Probe,
    compared_bytes,
)
from addcow_conformance.vectors.builder import AddCow, field_offset
from addcow_conformance.vectors.common import pattern, producer
from addcow_conformance.vectors.core import File, Vector, finding, info_v2
from addcow_conformance.vectors.model import Disk, sha256


@dataclasses.dataclass
class Effect:
    """What a list of operations did, as far as the expectations depend on it."""

    modified: bool = False
    #: The last resize shrank the disk: the bitmap's padding bits and the add-cow file's
    #: trailing bytes are then the writer's (RESIZE-SHRINK-ORDER is a SHOULD).
    shrunk: bool = False
    #: A resize ran after the last hydration: the image file's length past virtual_size is
    #: open (IMG-LENGTH is a SHOULD).
    sized: bool = False
    hydrated: bool = False
    #: The last operation that decides the image file's length was a hydration: the file is
    #: then exactly virtual_size bytes long, whatever it was before (HYDRATE-ORDER step 3 is
    #: a MUST, and HYDRATE-COMPLETE asks for the image file *read as a raw file* to be the disk).
    cut: bool = False
    #: A commit wrote into the backing file.
    committed: bool = False
    #: A commit emptied the image: every bit is 0 and ``all_allocated`` clear, and what the
    #: image file holds is the writer's (COMMIT-COMPLETE; COMMIT-ORDER lets it punch the file).
    emptied: bool = False
    #: A rebase ran: the names' offsets and lengths and ``bitmap_offset`` are the writer's
    #: (REBASE-COMPLETE), and the backing name and format are ``names``.
    rebased: bool = False
    names: tuple[bytes | None, str | None] = (None, None)


def _rebase_target(op: Operation, files: Mapping[str, bytes],
                   views: Mapping[str, bytes]) -> bytes | None:
    """What the file a rebase names reads as a backing file: a raw file's bytes, from the
    vector's own files (names resolve against the add-cow file's directory, the vector's), or
    an add-cow image's guest disk, which the recipe computed (``views``)."""
    name = op["backing"]
    if name is None:
        return None
    if op["backing_format"] == "add-cow":
        if name not in views:
            raise ValueError(f"rebase onto the add-cow image {name!r}: the recipe gives no "
                             "guest view of it")
        return views[name]
    if op["backing_format"] != "raw":
        raise ValueError(f"rebase onto {name!r}: the oracle models raw and add-cow new backing "
                         "files only (a rebase that must be refused is a refused_op_vector)")
    if name not in files:
        raise ValueError(f"rebase onto {name!r}: no such file in the vector (a rebase that must "
                         "be refused is a refused_op_vector)")
    return files[name]


def apply_ops(disk: Disk, ops: list[Operation],
              files: Mapping[str, bytes] | None = None,
              views: Mapping[str, bytes] | None = None) -> Effect:
    """Run ``ops`` on the oracle and say what they did; ``files`` maps the vector's file paths
    to their bytes, and ``views`` the add-cow images among them to their guest disks, for a
    rebase to find what its new backing file reads."""
    done = Effect()
    for op in ops:
        kind = op["op"]
        changes = kind != "flush"
        if kind == "write":
            data = (bytes.fromhex(op["data_hex"]) if "data_hex" in op
                    else bytes([op["pattern"]]) * op["length"])
            disk.write(op["offset"], data)
        elif kind == "write-zeroes":
            disk.write_zeroes(op["offset"], op["length"])
        elif kind == "discard":
            disk.discard(op["offset"], op["length"])
        elif kind == "resize":
            done.shrunk = op["size"] < disk.virtual_size
            done.sized, done.cut = True, False
            disk.resize(op["size"])
        elif kind == "hydrate":
            disk.hydrate()
            done.hydrated = done.cut = True
            done.sized = False
        elif kind == "commit":
            keep = op.get("keep", False)
            disk.commit(keep)
            done.committed = True
            changes = not keep  # a kept image is left as it was
            if not keep:
                done.emptied, done.hydrated = True, False
        elif kind == "rebase":
            same = disk.rebase(_rebase_target(op, files or {}, views or {}),
                               unsafe=op.get("unsafe", False))
            if same:
                raise ValueError(f"rebase: clusters {sorted(same)} read the same from the old "
                                 "and the new backing file, so whether they are allocated is "
                                 "the writer's; make them differ or allocate them")
            name = op["backing"]
            done.rebased = True
            done.names = ((None, None) if name is None
                          else (name.encode(), op["backing_format"]))
        elif kind != "flush":
            raise ValueError(f"unknown op {kind!r}")
        done.modified = done.modified or changes
    return done


#: The header fields whose values a rebase leaves to the writer (REBASE-COMPLETE): where the
#: names go in the name area, and where the bitmap starts.
_LAYOUT_FIELDS = (("bitmap_offset", 8), ("image_name_offset", 4), ("image_name_length", 4),
                  ("backing_name_offset", 4), ("backing_name_length", 4))


def _after_rebased(after_a: AddCow, compat_open: bool, opens: list[str]) -> AfterFile:
    """After a rebase only the header is compared, without the layout fields: the names and
    the bitmap may move (the decoded names and the bits are pinned by ``info`` and
    ``extents``)."""
    ignore: list[ByteRange] = [{"offset": field_offset(name), "length": size}
                               for name, size in _LAYOUT_FIELDS]
    if compat_open:
        ignore.append({"offset": field_offset("compatible_features") + 7, "length": 1})
    keep = after_a.header_length
    opens.append(f"the add-cow file past its first {keep} bytes, and bitmap_offset and the "
                 "names' offsets and lengths: a rebase places the names and the bitmap as the "
                 "name area rules allow (REBASE-COMPLETE); info and the map pin what they say")
    entry: AfterFile = {"role": "add-cow", "path": "image.add-cow", "sha256": "",
                        "compare_length": keep, "ignore": ignore}
    entry["sha256"] = sha256(compared_bytes(after_a.build(), entry))
    return entry


def _after_addcow(a: AddCow, after_a: AddCow, disk: Disk, done: Effect,
                  opens: list[str]) -> tuple[AfterFile, bool]:
    """The add-cow file after the ops, and whether ``compatible_features`` is left open."""
    compat_open = (disk.cluster_count > 0 and len(disk.bits) == disk.cluster_count
                   and not a.compatible_features & 1 and not done.hydrated)
    if done.rebased:
        if compat_open:
            opens.append("compatible bit 0 (all_allocated): every cluster is allocated after "
                         "the operations (FEAT-ALL-ALLOCATED-SET)")
        return _after_rebased(after_a, compat_open, opens), compat_open
    built = after_a.build()
    entry: AfterFile = {"role": "add-cow", "path": "image.add-cow", "size": len(built),
                        "sha256": sha256(built)}
    if done.shrunk:
        keep = after_a.bitmap_offset + disk.cluster_count // 8
        entry = {"role": "add-cow", "path": "image.add-cow", "sha256": sha256(built[:keep]),
                 "compare_length": keep}
        opens.append(f"the add-cow file past byte {keep}: the padding bits of the last bitmap "
                     "byte and any bytes after the bitmap (RESIZE-SHRINK-ORDER is a SHOULD)")
    if compat_open:
        # Bit 0 is the last bit of the big-endian word.
        entry["ignore"] = [{"offset": field_offset("compatible_features") + 7, "length": 1}]
        opens.append("compatible bit 0 (all_allocated): every cluster is allocated after the "
                     "operations, so a writer may set it or leave it clear "
                     "(FEAT-ALL-ALLOCATED-SET)")
    return entry, compat_open


def _after_image(image: bytes, a: AddCow, disk: Disk, done: Effect,
                 opens: list[str]) -> AfterFile:
    data = bytes(disk.image)
    entry: AfterFile = {"role": "image", "path": "image.raw"}
    if done.cut:
        data = data[:disk.virtual_size].ljust(disk.virtual_size, b"\0")
        entry["size"] = disk.virtual_size
    elif done.sized or len(image) > a.virtual_size:
        data = data[:disk.virtual_size].ljust(disk.virtual_size, b"\0")
        entry["compare_length"] = disk.virtual_size
        opens.append("the image file's bytes past virtual_size and so its length (IMG-LENGTH "
                     "is a SHOULD)")
    else:
        entry["size"] = len(data)
    if disk.open_ranges:
        buf = bytearray(data)
        entry["ignore"] = []
        for lo, hi in disk.open_ranges:
            buf[lo:hi] = bytes(hi - lo)
            entry["ignore"].append({"offset": lo, "length": hi - lo})
        data = bytes(buf)
        opens.append("the discarded bytes of allocated clusters, in the image file and in the "
                     "guest (DISCARD-PUNCH is a MAY)")
    entry["sha256"] = sha256(data)
    return entry


def _open_probes(disk: Disk) -> list[Probe]:
    """One probe per cluster that no discard left open."""
    guest = disk.guest()
    out: list[Probe] = []
    for c in range(disk.cluster_count):
        lo, hi = c * disk.cluster_size, min((c + 1) * disk.cluster_size, disk.virtual_size)
        if any(a < hi and lo < b for a, b in disk.open_ranges):
            continue
        out.append({"offset": lo, "length": hi - lo, "sha256": sha256(guest[lo:hi])})
    return out


@dataclasses.dataclass(frozen=True)
class AddCowBacking:
    """An add-cow backing image of an op vector whose operations write into it (a commit): its
    add-cow file at ``path``, its image file as ``a`` names it, and the raw file ``base`` at
    ``a``'s backing name (None: it has no backing file)."""

    path: str
    a: AddCow
    image: bytes
    base: bytes | None = None

    def disk(self) -> Disk:
        return Disk(self.a.virtual_size, self.a.cluster_bits, bytearray(self.image),
                    set(self.a.bits), self.base)

    def files(self) -> list[File]:
        out = [File("backing", self.path, self.a.build()),
               File("backing-image", self.a.image_name.decode(), self.image)]
        if self.base is not None:
            assert self.a.backing_name is not None
            out.append(File("backing", self.a.backing_name.decode(), self.base))
        return out

    def after(self, lower: Disk, opens: list[str]) -> list[AfterFile]:
        """Its add-cow file and image file after guest writes into it (``Disk.write``): bits
        set, unknown autoclear bits cleared, the image file as long as before."""
        after_a = copy.deepcopy(self.a)
        after_a.bits = set(lower.bits)
        if lower.bits != self.a.bits or bytes(lower.image) != self.image:
            after_a.autoclear_features = 0
        built = after_a.build()
        entry: AfterFile = {"role": "backing", "path": self.path, "size": len(built),
                            "sha256": sha256(built)}
        if len(lower.bits) == lower.cluster_count and not self.a.compatible_features & 1:
            entry["ignore"] = [{"offset": field_offset("compatible_features") + 7, "length": 1}]
            opens.append(f"compatible bit 0 (all_allocated) of {self.path}: every cluster of it "
                         "is allocated after the commit (FEAT-ALL-ALLOCATED-SET)")
        image = bytes(lower.image)
        return [entry, {"role": "backing-image", "path": self.a.image_name.decode(),
                        "size": len(image), "sha256": sha256(image)}]


def _after_emptied_image(virtual_size: int, opens: list[str]) -> AfterFile:
    """The image file after a commit emptied the image: no bit points at it, so its bytes are
    the writer's (punched or left), but it stays at least virtual_size long (IMG-SIZE)."""
    opens.append("the image file's bytes: no bit points at them after the commit, and a writer "
                 "may punch them or leave them (COMMIT-COMPLETE); only its length, at least "
                 "virtual_size (IMG-SIZE), is compared")
    if not virtual_size:
        return {"role": "image", "path": "image.raw", "sha256": sha256(b""),
                "compare_length": 0}
    return {"role": "image", "path": "image.raw", "sha256": sha256(bytes(virtual_size)),
            "compare_length": virtual_size, "ignore": [{"offset": 0, "length": virtual_size}]}


def _after_raw_backing(path: str, old: bytes, new: bytes, virtual_size: int,
                       opens: list[str]) -> AfterFile:
    """A raw backing file after a commit: every byte of ``new`` is pinned; past it, up to the
    disk's end, a writer may have extended the file (it reads zeros there either way)."""
    if len(new) >= virtual_size or new == old:
        return {"role": "backing", "path": path, "size": len(new), "sha256": sha256(new)}
    opens.append(f"{path} past byte {len(new)}: a commit may extend the raw backing file up to "
                 "virtual_size, where it reads zeros either way (COMMIT-COMPLETE)")
    return {"role": "backing", "path": path, "sha256": sha256(new), "compare_length": len(new)}


def _op_inputs(a: AddCow, image: bytes, image_file: File, backing: bytes | None,
               view: bytes | None, lower: AddCowBacking | None,
               extra_files: Iterable[File]) -> tuple[list[File], Disk]:
    """The files of an op vector (the add-cow file, ``image_file``, backing.raw or the add-cow
    backing image ``lower``, then ``extra_files``) and the oracle's disk before the ops, which
    reads ``view`` where a bit is 0."""
    files = [File("add-cow", "image.add-cow", a.build()), image_file]
    if backing is not None:
        files.append(File("backing", "backing.raw", backing))
    if lower is not None:
        files += lower.files()
    files += list(extra_files)
    return files, Disk(a.virtual_size, a.cluster_bits, bytearray(image), set(a.bits), view,
                       lower=None if lower is None else lower.disk())


def op_vector(vid: str, description: str, a: AddCow, image: bytes, backing: bytes | None,
              ops: list[Operation], exercises: Iterable[str], *,
              backing_view: bytes | None = None, extra_files: Iterable[File] = (),
              result: str = "valid", violates: Iterable[str] = (), flags: Iterable[str] = (),
              findings: list[ExpectedFinding] | None = None, open_image: bool = False,
              requires: Iterable[str] = (), image_synth: bool = False,
              reader_duty: str | None = None, lower: AddCowBacking | None = None,
              views: Mapping[str, bytes] | None = None) -> Vector:
    """``open_image``: the image file is left out of ``after.files`` (the guest hash still
    pins its contents). ``image_synth``: ``image`` is all zeros and is listed as a sparse
    ``synth`` file. ``lower``: the backing file is this add-cow image (``backing`` is then
    None), which a commit writes into. ``views``: the guest disk of each add-cow image among
    ``extra_files`` that a rebase may name. What the spec leaves to the writer (a SHOULD or a
    MAY) is never compared: ``after.open`` says what, and the file entries compare around
    it."""
    files, disk = _op_inputs(
        a, image, File("image", "image.raw", None, len(image), "zeros") if image_synth
        else File("image", "image.raw", image), backing,
        backing if backing_view is None else backing_view, lower, extra_files)
    lower_disk = disk.lower
    done = apply_ops(disk, ops, {f.path: f.data for f in files if f.data is not None}, views)
    after_a = copy.deepcopy(a)
    after_a.virtual_size = disk.virtual_size
    after_a.bits = set(disk.bits)
    if done.modified:
        after_a.autoclear_features = 0
    if done.hydrated:
        after_a.compatible_features |= 1
    if done.emptied:
        after_a.compatible_features &= ~1
    if done.rebased:
        after_a.backing_name, after_a.backing_format = done.names
    opens: list[str] = []
    addcow_entry, compat_open = _after_addcow(a, after_a, disk, done, opens)
    after_files = [addcow_entry]
    if done.emptied:
        after_files.append(_after_emptied_image(disk.virtual_size, opens))
    elif not open_image:
        after_files.append(_after_image(image, a, disk, done, opens))
    committed_raw = (a.backing_name.decode() if done.committed and lower is None
                     and a.backing_name is not None else None)
    lower_paths = {f.path for f in lower.files()[:2]} if lower is not None else set()
    for f in files:
        if f.role in ("add-cow", "image") or f.path in lower_paths:
            continue
        if f.path == committed_raw:
            assert f.data is not None
            assert disk.backing is not None
            after_files.append(_after_raw_backing(f.path, f.data, disk.backing,
                                                  disk.virtual_size, opens))
        else:
            after_files.append(f.unchanged())
    if lower is not None:
        assert lower_disk is not None
        after_files += lower.after(lower_disk, opens)
    kinds = {"apply:" + op["op"] for op in ops}
    info = info_v2(after_a)
    if compat_open:
        del info["compatible_features"]  # type: ignore[misc]
    if done.rebased:
        del info["bitmap_offset"]  # type: ignore[misc]
    after: AfterBlock = {"files": after_files, "extents": disk.extents(), "info": info}
    if disk.open_ranges:
        after["probes"] = _open_probes(disk)
    else:
        after["guest_sha256"] = sha256(disk.guest())
    if opens:
        after["open"] = opens
    expect: ExpectBlock = {"info": info_v2(a), "ops": ops, "after": after}
    if reader_duty:
        expect["reader_duty"] = reader_duty
    return Vector(id=vid, description=description, kind="op", result=result, files=files,
                  expect=expect, findings=findings or [],
                  exercises=list(exercises), violates=list(violates), flags=list(flags),
                  requires=["info", "read", "map", *sorted(kinds), *requires])


def unchanged_after(files: Iterable[File], disk: Disk, info: InfoRecord) -> AfterBlock:
    """The ``after`` block of operations that must be refused: every file exactly as it was,
    and the guest, the map and ``info`` of the image as the oracle ``disk`` reads it."""
    return {"files": [f.unchanged() for f in files], "guest_sha256": sha256(disk.guest()),
            "extents": disk.extents(), "info": info}


def refused_op_vector(vid: str, description: str, a: AddCow, image: bytes,
                      backing: bytes | None, ops: list[Operation], rule: str,
                      exercises: Iterable[str], *, requires: Iterable[str] = (),
                      lower: AddCowBacking | None = None,
                      extra_files: Iterable[File] = ()) -> Vector:
    """Operations that must be refused with every file left exactly as it was. ``lower``:
    the backing file is this add-cow image (``backing`` is then None)."""
    files, disk = _op_inputs(a, image, File("image", "image.raw", image), backing, backing,
                             lower, extra_files)
    after = unchanged_after(files, disk, info_v2(a))
    kinds = {"apply:" + op["op"] for op in ops}
    return Vector(id=vid, description=description, kind="op", result="valid", files=files,
                  expect={"info": info_v2(a), "ops": ops, "refusal": {"rule": rule},
                          "after": after}, findings=[], exercises=list(exercises),
                  requires=["info", "read", "map", *sorted(kinds), *requires])


def longer_image() -> dict[str, Any]:
    """The ``op_vector`` arguments of an image whose image file is longer than the disk: a
    warning a reader ignores (IMG-LENGTH)."""
    return {"result": "acceptable", "violates": ["IMG-LENGTH"], "flags": ["image-file-longer"],
            "findings": [finding("IMG-LENGTH", offset=field_offset("virtual_size"),
                                 field="virtual_size")], "reader_duty": "ignore"}


def unknown_autoclear() -> dict[str, Any]:
    """The ``op_vector`` arguments of an image with an unknown autoclear bit: acceptable, and
    a writer that changes the image clears the bit (FEAT-AUTOCLEAR-UNKNOWN)."""
    return {"result": "acceptable", "violates": ["FEAT-AUTOCLEAR-UNKNOWN"],
            "flags": ["unknown-autoclear-bit"],
            "findings": [finding("FEAT-AUTOCLEAR-UNKNOWN",
                                 offset=field_offset("autoclear_features"),
                                 field="autoclear_features")]}


def _hex(tag: str, n: int) -> str:
    return pattern(tag, n).hex()


@producer
def writes() -> list[Vector]:
    cs = 4096
    vs = 4 * cs
    out = []

    def base(tag: str, bits: set[int], backing: bool = True,
             size: int = vs) -> tuple[AddCow, bytes, bytes | None]:
        a = AddCow(virtual_size=size, cluster_bits=12,
                   backing_name=b"backing.raw" if backing else None, bits=bits)
        return (a, pattern(f"ops/{tag}:image", size),
                pattern(f"ops/{tag}:backing", size) if backing else None)

    a, image, backing = base("straddle", set())
    out.append(op_vector(
        "ops/write-straddle-clusters", "A 1400-byte write across the boundary of unallocated "
        "clusters 0 and 1: both get the backing file's head and tail, then both bits are set",
        a, image, backing, [{"op": "write", "offset": cs - 700, "data_hex":
                             _hex("ops/straddle:data", 1400)}, {"op": "flush"}],
        ["WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT"]))
    a, image, backing = base("subsector", {3})
    out.append(op_vector(
        "ops/write-sub-sector", "3 bytes written in the middle of unallocated cluster 1: the "
        "other 4093 bytes of the cluster come from the backing file", a, image, backing,
        [{"op": "write", "offset": cs + 1000, "data_hex": "abcdef"}],
        ["WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT"]))
    a, image, backing = base("alloc", {0, 2})
    out.append(op_vector(
        "ops/write-allocated-cluster", "A write inside allocated cluster 2 changes the image "
        "file only; the bitmap is unchanged", a, image, backing,
        [{"op": "write", "offset": 2 * cs + 100, "length": 300, "pattern": 0x11}],
        ["WRITE-SET-BIT", "READ-ALLOCATED"]))
    a, image, _ = base("nobacking", {0}, backing=False)
    out.append(op_vector(
        "ops/write-no-backing-stale-image", "No backing file; the image file holds stale "
        "non-zero bytes in unallocated cluster 1: a 10-byte write there must zero the rest of "
        "the cluster", a, image, None,
        [{"op": "write", "offset": cs + 4, "length": 10, "pattern": 0xEE}],
        ["WRITE-COW-HEAD-TAIL", "READ-PAST-BACKING-EOF"]))
    a, image, backing = base("partial", set(), size=3 * cs + 512)
    out.append(op_vector(
        "ops/write-partial-last-cluster", "A write into the 512-byte last cluster copies only "
        "up to the end of the disk; the image file keeps its length", a, image, backing,
        [{"op": "write", "offset": 3 * cs + 100, "length": 100, "pattern": 0x22}],
        ["WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT"]))
    a, image, backing = base("multi", {1})
    out.append(op_vector(
        "ops/write-sequence-overlapping", "Three writes: a whole cluster, then two overlapping "
        "ones across clusters 2 and 3, with flushes between", a, image, backing,
        [{"op": "write", "offset": 0, "length": cs, "pattern": 0x33}, {"op": "flush"},
         {"op": "write", "offset": 2 * cs + 4000, "data_hex": _hex("ops/multi:a", 200)},
         {"op": "write", "offset": 2 * cs + 4090, "length": 20, "pattern": 0x44},
         {"op": "flush"}], ["WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT"]))
    a = AddCow(virtual_size=6144, cluster_bits=9, backing_name=b"backing.raw", bits={4})
    out.append(op_vector(
        "ops/write-many-small-clusters", "One 2000-byte write over five 512-byte clusters, one "
        "of them already allocated", a, pattern("ops/small:image", 6144),
        pattern("ops/small:backing", 5000),
        [{"op": "write", "offset": 1100, "data_hex": _hex("ops/small:data", 2000)}],
        ["WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT", "HDR-CLUSTER-BITS"]))
    a, image, backing = base("allalloc", {0, 1, 2, 3})
    a.compatible_features = 1
    out.append(op_vector(
        "ops/write-all-allocated", "A write to an image with all_allocated set: the feature "
        "words are kept (there is no unknown autoclear bit to clear)", a, image, backing,
        [{"op": "write", "offset": 10, "length": 10, "pattern": 0x55}],
        ["FEAT-ALL-ALLOCATED", "FEAT-AUTOCLEAR-UNKNOWN", "WRITE-SET-BIT", "FEAT-COMPAT-KEEP"]))
    a, image, backing = base("autoclear", {0})
    a.autoclear_features = 1 << 7
    out.append(op_vector(
        "ops/write-clears-unknown-autoclear", "autoclear_features has unknown bit 7: the first "
        "write must clear it", a, image, backing,
        [{"op": "write", "offset": 5000, "length": 16, "pattern": 0x66}],
        ["FEAT-AUTOCLEAR-UNKNOWN", "WRITE-COW-HEAD-TAIL"], result="acceptable",
        violates=["FEAT-AUTOCLEAR-UNKNOWN"], flags=["unknown-autoclear-bit"],
        findings=[finding("FEAT-AUTOCLEAR-UNKNOWN", offset=field_offset("autoclear_features"),
                          field="autoclear_features")]))
    a, image, backing = base("tail", {0}, size=3 * cs + 1024)
    out.append(op_vector(
        "ops/write-to-end-of-disk", "A write across clusters 2 and 3 that ends exactly at the "
        "end of the disk (the last cluster holds 1024 bytes)", a, image, backing,
        [{"op": "write", "offset": 3 * cs - 24, "length": 1048, "pattern": 0x88}],
        ["WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT"]))
    big = 1 << 21
    a = AddCow(virtual_size=2 * big, cluster_bits=21, backing_name=b"backing.raw", bits={1})
    out.append(op_vector(
        "ops/write-in-2mib-cluster", "10 bytes written in the middle of an unallocated 2 MiB "
        "cluster over a 5000-byte backing file: the head copies the backing file, then zeros",
        a, bytes(2 * big), pattern("ops/big:backing", 5000),
        [{"op": "write", "offset": big // 2, "length": 10, "pattern": 0x99}],
        ["WRITE-COW-HEAD-TAIL", "HDR-CLUSTER-BITS", "READ-PAST-BACKING-EOF"],
        image_synth=True))
    return out


@producer
def chain_write() -> list[Vector]:
    cs = 4096
    base = pattern("ops/chain:base", 4 * cs)
    mid = AddCow(virtual_size=4 * cs, cluster_bits=12, image_name=b"mid.raw",
                 backing_name=b"base.raw", bits={1})
    mid_image = pattern("ops/chain:mid", 4 * cs)
    mid_guest = Disk(4 * cs, 12, bytearray(mid_image), {1}, base).guest()
    top = AddCow(virtual_size=4 * cs, cluster_bits=12, backing_name=b"mid.add-cow",
                 backing_format="add-cow", bits=set())
    return [op_vector(
        "ops/write-over-add-cow-backing", "A write straddling clusters 1 and 2 of an image over "
        "mid.add-cow: the head comes from mid.raw, the tail from base.raw; the backing files "
        "stay unchanged", top, pattern("ops/chain:top", 4 * cs), None,
        [{"op": "write", "offset": 2 * cs - 50, "length": 100, "pattern": 0x77}],
        ["WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT", "READ-UNALLOCATED-BACKING"],
        backing_view=mid_guest,
        extra_files=[File("backing", "mid.add-cow", mid.build()),
                     File("backing-image", "mid.raw", mid_image),
                     File("backing", "base.raw", base)], requires=["backing-chain"])]


@producer
def resizes() -> list[Vector]:
    cs = 4096
    out = []
    a = AddCow(virtual_size=2 * cs + 512, cluster_bits=12, backing_name=b"backing.raw")
    out.append(op_vector(
        "ops/resize-grow-partial-last", "Grow from 2 clusters + 512 bytes to 4 clusters over a "
        "backing file longer than the disk: the old partial cluster is allocated (head from the "
        "backing file, zeros after the old end), the new cluster is allocated and zero",
        a, pattern("ops/grow:image", 2 * cs + 512), pattern("ops/grow:backing", 4 * cs),
        [{"op": "resize", "size": 4 * cs}], ["RESIZE-GROW", "WRITE-COW-HEAD-TAIL"]))
    a = AddCow(virtual_size=2 * cs, cluster_bits=12, backing_name=b"backing.raw", bits={1})
    out.append(op_vector(
        "ops/resize-grow-aligned", "Grow a 2-cluster disk to 3 clusters + 1024 bytes: the new "
        "clusters are allocated and read as zeros, the backing file's bytes there never show",
        a, pattern("ops/growa:image", 2 * cs), pattern("ops/growa:backing", 4 * cs),
        [{"op": "resize", "size": 3 * cs + 1024}], ["RESIZE-GROW"],
        requires=[]))
    a = AddCow(virtual_size=2 * cs, cluster_bits=12, backing_name=b"backing.raw", bits={0})
    out.append(op_vector(
        "ops/resize-grow-over-stale-image-tail", "The image file is 3000 bytes longer than the "
        "disk and holds stale data there; growing by 2 clusters must still give zeros", a,
        pattern("ops/stale:image", 2 * cs + 3000), pattern("ops/stale:backing", 4 * cs),
        [{"op": "resize", "size": 4 * cs}], ["RESIZE-GROW"], **longer_image()))
    a = AddCow(virtual_size=6144, cluster_bits=9, backing_name=b"backing.raw",
               bits={0, 2, 9, 11})
    out.append(op_vector(
        "ops/resize-shrink", "Shrink 12 clusters of 512 bytes to 3: the bitmap shrinks to 1 "
        "byte, bits past cluster 2 are gone and the add-cow file ends after the bitmap", a,
        pattern("ops/shrink:image", 6144), pattern("ops/shrink:backing", 6144),
        [{"op": "resize", "size": 1536}], ["RESIZE-SHRINK", "RESIZE-SHRINK-ORDER", "BMP-PADDING"],
        open_image=True))
    a = AddCow(virtual_size=3 * cs, cluster_bits=12, backing_name=b"backing.raw", bits={0, 2})
    out.append(op_vector(
        "ops/resize-shrink-to-zero", "Shrink a 3-cluster disk to 0 bytes: no cluster, an empty "
        "bitmap, and an add-cow file that ends at bitmap_offset", a,
        pattern("ops/zero:image", 3 * cs), pattern("ops/zero:backing", 3 * cs),
        [{"op": "resize", "size": 0}], ["RESIZE-SHRINK", "RESIZE-SHRINK-ORDER"], open_image=True))
    a = AddCow(virtual_size=2 * cs, cluster_bits=12, backing_name=b"backing.raw",
               compatible_features=1, bits={0, 1})
    out.append(op_vector(
        "ops/resize-grow-all-allocated", "Grow an image with all_allocated set: the new "
        "clusters are allocated too, so the promise still holds", a,
        pattern("ops/gaa:image", 2 * cs), pattern("ops/gaa:backing", 4 * cs),
        [{"op": "resize", "size": 3 * cs}],
        ["RESIZE-GROW", "FEAT-ALL-ALLOCATED", "FEAT-COMPAT-KEEP"]))
    a = AddCow(virtual_size=4 * cs, cluster_bits=12, backing_name=b"backing.raw", bits={0, 3})
    out.append(op_vector(
        "ops/resize-shrink-mid-cluster-then-grow", "Shrink 4 clusters to 1.25 (cluster 1 is now "
        "partial and unallocated), then grow to 3: cluster 1 gets the backing file's first 1024 "
        "bytes and zeros after, cluster 2 is new and zero", a,
        pattern("ops/smc:image", 4 * cs), pattern("ops/smc:backing", 4 * cs),
        [{"op": "resize", "size": cs + 1024}, {"op": "resize", "size": 3 * cs}],
        ["RESIZE-SHRINK", "RESIZE-GROW", "WRITE-COW-HEAD-TAIL"]))
    a = AddCow(virtual_size=6144, cluster_bits=9, backing_name=b"backing.raw", bits={5})
    out.append(op_vector(
        "ops/resize-shrink-then-grow", "Shrink to 2 clusters, then grow back to 12: the backing "
        "file's old bytes past the shrunk end must not show again", a,
        pattern("ops/sg:image", 6144), pattern("ops/sg:backing", 6144),
        [{"op": "resize", "size": 1024}, {"op": "resize", "size": 6144}],
        ["RESIZE-SHRINK", "RESIZE-GROW"]))
    return out


@producer
def multi_byte() -> list[Vector]:
    """Writes and grows that touch several bitmap bytes at once (512-byte clusters, so 8
    clusters are one bitmap byte), and writes that run from allocated clusters into
    unallocated ones."""
    cs = 512
    out = []
    vs = 24 * cs
    a = AddCow(virtual_size=vs, cluster_bits=9, backing_name=b"backing.raw",
               bits={0, 1, 2, 3, 4, 5, 9, 17, 18, 22, 23})
    out.append(op_vector(
        "ops/write-allocated-into-unallocated", "One write from inside allocated cluster 4 to "
        "inside cluster 21, over three bitmap bytes: clusters 6..8, 10..16 and 19..21 are "
        "allocated (the last with its tail from the backing file), 4, 5, 9, 17 and 18 keep "
        "their image data outside the write, 22 and 23 are untouched", a,
        pattern("ops/a2u:image", vs), pattern("ops/a2u:backing", vs),
        [{"op": "write", "offset": 4 * cs + 100, "length": 17 * cs, "pattern": 0x2B}],
        ["WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT", "BMP-BIT-ORDER", "READ-ALLOCATED"]))
    vs = 40 * cs
    a = AddCow(virtual_size=vs, cluster_bits=9, backing_name=b"backing.raw", bits={12, 33})
    out.append(op_vector(
        "ops/write-whole-bitmap-bytes", "A write of exactly clusters 8..31 (bitmap bytes 1..3 "
        "whole, cluster 12 already allocated), then one of clusters 34..38 (part of byte 4), "
        "then a 1-byte write into cluster 39; the image file is all zeros", a, bytes(vs),
        pattern("ops/wbb:backing", vs),
        [{"op": "write", "offset": 8 * cs, "length": 24 * cs, "pattern": 0x3C},
         {"op": "write", "offset": 34 * cs, "length": 5 * cs, "pattern": 0x4D},
         {"op": "write", "offset": 39 * cs + 511, "data_hex": "e7"}],
        ["WRITE-SET-BIT", "WRITE-COW-HEAD-TAIL", "BMP-BIT-ORDER"], image_synth=True))
    a = AddCow(virtual_size=13 * cs, cluster_bits=9, backing_name=b"backing.raw",
               bits={1, 12})
    out.append(op_vector(
        "ops/resize-grow-many-bitmap-bytes", "Grow 13 clusters of 512 bytes to 70: the padding "
        "bits of old byte 1 and 7 new bitmap bytes are set, and the 2 padding bits of the new "
        "last byte stay 0 (the backing file's bytes past the old end never show)", a,
        pattern("ops/gmb:image", 13 * cs), pattern("ops/gmb:backing", 16 * cs),
        [{"op": "resize", "size": 70 * cs}],
        ["RESIZE-GROW", "BMP-PADDING"]))
    a = AddCow(virtual_size=3 * cs, cluster_bits=9, backing_name=b"backing.raw", bits={1})
    out.append(op_vector(
        "ops/resize-grow-from-partial-byte", "Grow 3 clusters to 64, a whole number of bitmap "
        "bytes: bits 3..63 are set and the bitmap has no padding", a,
        pattern("ops/gpb:image", 3 * cs), pattern("ops/gpb:backing", 3 * cs),
        [{"op": "resize", "size": 64 * cs}], ["RESIZE-GROW", "BMP-LENGTH"]))
    a = AddCow(virtual_size=28 * cs, cluster_bits=9, backing_name=b"backing.raw",
               bits={0, 7, 8, 15, 16, 23, 24, 27})
    out.append(op_vector(
        "ops/resize-shrink-to-whole-bytes", "Shrink 28 clusters to 16, a whole number of "
        "bitmap bytes: the 2 bitmap bytes left are compared byte for byte and bits 16..27 are "
        "gone", a, pattern("ops/swb:image", 28 * cs), pattern("ops/swb:backing", 6 * cs),
        [{"op": "resize", "size": 16 * cs}], ["RESIZE-SHRINK", "BMP-LENGTH"]))
    return out


@producer
def resize_then_write() -> list[Vector]:
    cs = 2048
    a = AddCow(virtual_size=2 * cs + 512, cluster_bits=11, backing_name=b"backing.raw",
               bits={0})
    out = [op_vector(
        "ops/resize-grow-then-write", "In one apply: grow from 2 clusters of 2 KiB + 512 bytes "
        "to 5 clusters, then write across the old end and into the new clusters: the old "
        "partial cluster keeps the backing file's first 512 bytes, the rest reads the written "
        "bytes or zeros", a, pattern("ops/gtw:image", 2 * cs + 512),
        pattern("ops/gtw:backing", 5 * cs),
        [{"op": "resize", "size": 5 * cs},
         {"op": "write", "offset": 2 * cs + 300, "length": 2 * cs, "pattern": 0x5E}],
        ["RESIZE-GROW", "WRITE-COW-HEAD-TAIL"])]
    a = AddCow(virtual_size=4 * cs, cluster_bits=11, backing_name=b"backing.raw", bits={3})
    out.append(op_vector(
        "ops/resize-shrink-then-write", "In one apply: shrink 4 clusters of 2 KiB to 1 cluster "
        "+ 1024 bytes, then write 10 bytes into the now partial, unallocated cluster 1: its "
        "head and tail up to the new end come from the backing file", a,
        pattern("ops/stw:image", 4 * cs), pattern("ops/stw:backing", 4 * cs),
        [{"op": "resize", "size": cs + 1024}, {"op": "write", "offset": cs + 100, "length": 10,
                                                "pattern": 0x6F}],
        ["RESIZE-SHRINK", "WRITE-COW-HEAD-TAIL"]))
    return out


@producer
def bad_resizes() -> list[Vector]:
    """Resizes to a size no header may hold: refused, every file left as it was."""
    cs = 512
    out = []
    for vid, size, rule, what, req in (
            ("ops/resize-unaligned-refused", 3 * cs + 100, "HDR-VIRTUAL-SIZE-ALIGN",
             "to 1636 bytes, not a multiple of 512", []),
            ("ops/resize-one-sector-less-refused", 3 * cs - 1, "HDR-VIRTUAL-SIZE-ALIGN",
             "to 1535 bytes, one byte short of a multiple of 512", []),
            ("ops/resize-2-63-refused", 1 << 63, "HDR-VIRTUAL-SIZE-MAX",
             "to 2^63 bytes, one past the largest virtual_size", ["big-int"])):
        a = AddCow(virtual_size=2 * cs, cluster_bits=9, backing_name=b"backing.raw", bits={1})
        out.append(refused_op_vector(
            vid, f"A resize {what}, must be refused; no file changes", a,
            pattern(f"{vid}:image", 2 * cs), pattern(f"{vid}:backing", 2 * cs),
            [{"op": "resize", "size": size}], rule, ["RESIZE-GROW", rule], requires=req))
    return out


@producer
def write_then_grow() -> list[Vector]:
    """Grows whose lookup of the old last cluster's bit meets a bitmap the same apply has just
    written (a reader that caches the bitmap answers it from the cache), and a grow from a
    cluster count one past a whole bitmap byte."""
    cs = 2048
    out = []
    for vid, clusters, target, what in (
            ("ops/write-then-grow-2-clusters", 2, 0, "2 clusters (the second 512 bytes)"),
            ("ops/write-then-grow-17-clusters", 17, 8, "17 clusters (the last 512 bytes)")):
        old = (clusters - 1) * cs + 512
        a = AddCow(virtual_size=old, cluster_bits=11, backing_name=b"backing.raw",
                   bits={0} if target else set())
        out.append(op_vector(
            vid, f"In one apply: a write into unallocated cluster {target} of {what}, then a "
            f"grow to {clusters + 3} clusters: the old partial last cluster is unallocated, so "
            "the grow allocates it with the backing file's bytes up to the old end and zeros "
            "after; the backing file's bytes past the old end never show", a,
            pattern(f"{vid}:image", old), pattern(f"{vid}:backing", (clusters + 3) * cs),
            [{"op": "write", "offset": target * cs + 100, "length": 300, "pattern": 0x4E},
             {"op": "resize", "size": (clusters + 3) * cs}],
            ["RESIZE-GROW", "WRITE-COW-HEAD-TAIL", "WRITE-SET-BIT"]))
    cs = 512
    a = AddCow(virtual_size=9 * cs, cluster_bits=9, backing_name=b"backing.raw",
               bits={0, 2, 3, 7})
    out.append(op_vector(
        "ops/resize-grow-from-9-clusters", "Grow 9 clusters of 512 bytes (one bit in the second "
        "bitmap byte) to 20: unallocated cluster 8 still reads the backing file, clusters "
        "9..19 are allocated and zero although the backing file has data there", a,
        pattern("ops/g9:image", 9 * cs), pattern("ops/g9:backing", 20 * cs),
        [{"op": "resize", "size": 20 * cs}], ["RESIZE-GROW", "BMP-BIT-ORDER"]))
    return out


@producer
def hydrate_past_backing() -> list[Vector]:
    cs = 4096
    a = AddCow(virtual_size=3 * cs, cluster_bits=12, backing_name=b"backing.raw", bits={1})
    image = bytearray(pattern("ops/hpb:image", 3 * cs))
    image[2 * cs - 1] = 0xAA
    return [op_vector(
        "ops/hydrate-run-past-backing-end", "Hydrate 3 clusters over a 1-cluster backing file: "
        "cluster 0 copies the backing file; allocated cluster 1 keeps its image bytes up to "
        "its last byte 0xAA; cluster 2, wholly past the backing file's end, must read zeros "
        "over the image file's stale bytes", a, bytes(image), pattern("ops/hpb:backing", cs),
        [{"op": "hydrate"}], ["HYDRATE-COMPLETE", "READ-PAST-BACKING-EOF", "READ-ALLOCATED"])]
