"""Committing an overlay into its backing file (``addcow commit``, like ``qemu-img commit``).

Every allocated cluster is written into the backing file (a raw file, or an add-cow image
through its own copy-on-write writes); then, unless the overlay is kept, it is emptied. The
order is what makes a crash at any point harmless:

1. write every allocated cluster into the backing file;
2. make the backing file durable (``fsync`` of a raw file; ``flush`` of an add-cow backing
   image, which makes its data durable before its bitmap);
3. only then clear the overlay's bits: a complete new add-cow file with an all-zero bitmap (and
   ``all_allocated`` cleared) replaces the old one atomically (:mod:`addcow_ref.ops.metafile`);
4. last, punch the overlay's image file, whose bytes no bit points at any more.

A crash before step 3 leaves the overlay as it was, over a backing file that already holds the
same bytes in those clusters, so the guest disk reads the same either way; a crash between 3 and
4 leaves only unused blocks in the image file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from addcow_ref.engine.backing import resolve_name
from addcow_ref.engine.fileio import DEFAULT_FS, BlockFile, FileSystem
from addcow_ref.engine.image import AddCowImage, open_image
from addcow_ref.engine.oslocks import holding_lock, lock_file
from addcow_ref.format.constants import (
    FORMAT_ADD_COW,
    FORMAT_RAW,
    KNOWN_AUTOCLEAR_FEATURES,
    CompatibleFeature,
)
from addcow_ref.format.errors import AddCowError, ReadOnlyError
from addcow_ref.format.header import HeaderV2
from addcow_ref.ops.metafile import punch_file, replace_metadata

__all__ = ["COMMIT_CHUNK", "CommitResult", "commit", "empty_overlay"]

#: Bytes copied per read/write.
COMMIT_CHUNK = 4 << 20


@dataclasses.dataclass(frozen=True)
class CommitResult:
    """What a commit did: ``bytes`` of ``clusters`` written into ``backing``; ``emptied`` when
    the overlay's bits were cleared, ``punched`` when its image file's blocks were freed."""

    path: str
    backing: str
    backing_format: str
    clusters: int
    bytes: int
    emptied: bool
    punched: bool


class _RawTarget:
    def __init__(self, path: str, fs: FileSystem) -> None:
        self.path = path
        self._file: BlockFile = fs.open(path, writable=True)  # a read lock needs read access
        try:  # a writer of the file: no other image may be reading it as backing (LOCK-WRITER)
            lock_file(self._file, path, exclusive=True)
        except BaseException:
            self._file.close()
            raise

    def write(self, offset: int, data: bytes) -> None:
        self._file.pwrite(offset, data)

    def sync(self) -> None:
        self._file.fsync()

    def close(self) -> None:
        self._file.close()


class _AddCowTarget:
    def __init__(self, path: str, need: int, fs: FileSystem) -> None:
        self.path = path
        self._img = open_image(path, "r+", fs=fs)
        if self._img.readonly:
            self._img.close()
            raise ReadOnlyError("backing image cannot be opened for writing (version 1?)",
                                file=path, rule_id="V1-READ-ONLY")
        if need > self._img.virtual_size:
            size = int(self._img.virtual_size)
            self._img.close()
            # Its writes there would break WRITE-RANGE: refused before the first one.
            raise AddCowError(f"backing image is {size} bytes but the overlay has data up to "
                              f"byte {need}; grow it first (addcow resize)", file=path,
                              field="virtual_size", rule_id="WRITE-RANGE")

    def write(self, offset: int, data: bytes) -> None:
        self._img.write(offset, data)

    def sync(self) -> None:
        self._img.flush()

    def close(self) -> None:
        self._img.close()


def _allocated(img: AddCowImage) -> list[tuple[int, int]]:
    return [(e.start, e.length) for e in img.iter_map() if e.allocated]


def commit(path: str, *, keep: bool = False,
           progress: Callable[[int, int], None] | None = None,
           fs: FileSystem | None = None) -> CommitResult:
    """Write every allocated cluster of ``path`` into its backing file, then (unless
    ``keep``) empty the overlay, in the crash-safe order of the module docstring.

    The overlay is read without the engine's locks (they would lock the backing file shared,
    and commit writes it) but under a shared lock of its own; the backing file is locked
    exclusively while it is written, so no other image may be reading it. Every file is
    reached through ``fs`` (the real file system by default; the crash tests pass theirs).
    """
    fs = fs or DEFAULT_FS
    with (holding_lock(path, exclusive=False),
          open_image(path, force_share=True, fs=fs) as img):
        d = img.descriptor
        if not d.writable:
            raise ReadOnlyError("version 1 images are read-only; upgrade to version 2 first",
                                file=path, rule_id="V1-READ-ONLY")
        if d.backing_name is None:
            raise AddCowError("image has no backing file to commit into", file=path,
                              field="backing_name_offset", rule_id="COMMIT-NEEDS-BACKING")
        backing = resolve_name(path, d.backing_name)
        fmt = d.backing_format or FORMAT_RAW
        if fs.kind(backing) == "missing":
            raise AddCowError("backing file does not exist", file=backing,
                              rule_id="BACK-EXISTS")
        extents = _allocated(img)
        total = sum(n for _, n in extents)
        end = max((s + n for s, n in extents), default=0)
        target: _RawTarget | _AddCowTarget = (_AddCowTarget(backing, end, fs)
                                              if fmt == FORMAT_ADD_COW
                                              else _RawTarget(backing, fs))
        done = 0
        try:
            if progress:
                progress(0, total)
            for start, length in extents:
                for pos in range(start, start + length, COMMIT_CHUNK):
                    n = min(COMMIT_CHUNK, start + length - pos)
                    target.write(pos, img.read(pos, n))
                    done += n
                    if progress:
                        progress(done, total)
            target.sync()  # step 2: the backing file is durable before any bit is cleared
        finally:
            target.close()
        clusters = sum(-(-n >> img.cluster_bits) for _, n in extents)
        image_path, size = img.image_path, int(img.virtual_size)
    emptied = punched = False
    if not keep:
        empty_overlay(path, fs=fs)
        emptied = True
        punched = punch_file(image_path, size, fs=fs)
    return CommitResult(path=path, backing=backing, backing_format=fmt, clusters=clusters,
                        bytes=total, emptied=emptied, punched=punched)


def empty_overlay(path: str, *, fs: FileSystem | None = None) -> None:
    """Replace the add-cow file ``path`` by the same header and names with every bit clear and
    ``all_allocated`` unset: every cluster reads from the backing file again."""
    with open_image(path, fs=fs) as img:
        header = img.header
        if not isinstance(header, HeaderV2):
            raise ReadOnlyError("version 1 images are read-only", file=path,
                                rule_id="V1-READ-ONLY")
        bitmap_offset = int(header.bitmap_offset)
        total = bitmap_offset + header.bitmap_length
        prefix = bytearray(img.metadata_bytes(0, bitmap_offset))
    # Emptying changes the image: unknown autoclear bits go too (FEAT-AUTOCLEAR-UNKNOWN).
    cleared = header.replace(compatible_features=int(header.compatible_features)
                             & ~int(CompatibleFeature.ALL_ALLOCATED),
                             autoclear_features=int(header.autoclear_features)
                             & KNOWN_AUTOCLEAR_FEATURES)
    built = cleared.build()
    prefix[:len(built)] = built
    replace_metadata(path, bytes(prefix), total, fs=fs)
