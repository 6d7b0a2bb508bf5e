"""Changing an image's backing file (``addcow rebase``, like ``qemu-img rebase``).

The safe form keeps the guest disk unchanged: every unallocated cluster where the old chain and
the new backing file read differently is first written into the image (its bytes copied from the
old chain), and only then is the name changed. ``unsafe`` (``-u``) changes only the name, for a
backing file that was moved or renamed. An empty new name hydrates the image (unless unsafe)
and drops the backing file.

The name lives in the add-cow file's name area, so the change is a complete new add-cow file
(header, names, the bitmap as it is) written beside the old one and renamed over it
(:mod:`addcow_ref.ops.metafile`): a crash leaves the old name or the new one, and with the safe
form both read the same guest disk, because the copied clusters were made durable first.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from addcow_ref.engine.backing import Backing, ChainState, MissingBacking, open_backing
from addcow_ref.engine.fileio import DEFAULT_FS, FileSystem
from addcow_ref.engine.image import AddCowImage
from addcow_ref.format.constants import (
    BACKING_FORMATS,
    HEADER_LENGTH_V2,
    KNOWN_AUTOCLEAR_FEATURES,
)
from addcow_ref.format.errors import AddCowError, BackingFileError, ReadOnlyError
from addcow_ref.format.header import HeaderV2
from addcow_ref.ops.create import build_metadata
from addcow_ref.ops.metafile import replace_metadata

__all__ = ["REBASE_CHUNK", "RebaseResult", "rebase", "set_backing_name"]

#: Bytes compared (and held) at a time.
REBASE_CHUNK = 4 << 20


@dataclasses.dataclass(frozen=True)
class RebaseResult:
    """What a rebase did: ``copied_clusters`` made allocated (the safe form), ``hydrated`` when
    the backing file was dropped after copying everything."""

    path: str
    backing: str | None
    backing_format: str | None
    copied_clusters: int
    hydrated: bool


def _unallocated_runs(img: AddCowImage) -> list[tuple[int, int]]:
    """Unallocated byte ranges, adjacent map extents of any depth joined (they are
    cluster-aligned once joined)."""
    runs: list[tuple[int, int]] = []
    for e in img.iter_map():
        if e.allocated:
            continue
        if runs and runs[-1][0] + runs[-1][1] == e.start:
            runs[-1] = (runs[-1][0], runs[-1][1] + e.length)
        else:
            runs.append((e.start, e.length))
    return runs


def _copy_differing(img: AddCowImage, new: Backing,
                    progress: Callable[[int, int], None] | None) -> int:
    csize = img.cluster_size
    step = max(csize, REBASE_CHUNK // csize * csize)
    runs = _unallocated_runs(img)
    total = sum(n for _, n in runs)
    done = copied = 0
    if progress:
        progress(0, total)
    for start, length in runs:
        for pos in range(start, start + length, step):
            n = min(step, start + length - pos)
            old, fresh = img.read(pos, n), new.read(pos, n)
            if old != fresh:
                for off in range(0, n, csize):
                    piece = old[off:off + csize]
                    if piece != fresh[off:off + csize]:
                        img.write(pos + off, piece)
                        copied += 1
            done += n
            if progress:
                progress(done, total)
    img.flush()
    return copied


def _open_new(path: str, name: str, fmt: str, fs: FileSystem) -> Backing:
    ident = fs.identity(os.path.abspath(path))
    return open_backing(path, name, fmt, fs, ChainState(frozenset({ident}), 1))


def _name_bytes(path: str, backing: str | None) -> bytes | None:
    """``backing`` as the bytes to store, refused if it holds a NUL byte (NAME-NO-NUL): before
    anything is opened, as no file name can hold one."""
    name = os.fsencode(backing) if backing is not None else None
    if name is not None and b"\0" in name:
        raise AddCowError("a backing file name must not contain a NUL byte", file=path,
                          field="backing_name_offset", rule_id="NAME-NO-NUL")
    return name


def rebase(path: str, backing: str, backing_format: str | None, *, unsafe: bool = False,
           progress: Callable[[int, int], None] | None = None,
           fs: FileSystem | None = None) -> RebaseResult:
    """Make ``backing`` (format ``backing_format``; ``""`` for none) the backing file of
    ``path``; see the module docstring for the safe and unsafe forms. Every file is reached
    through ``fs`` (the real file system by default; the crash tests pass theirs)."""
    fs = fs or DEFAULT_FS
    if backing and backing_format not in BACKING_FORMATS:
        raise BackingFileError(f"backing format {backing_format!r} is not one of "
                               f"{', '.join(sorted(BACKING_FORMATS))}", file=path,
                               field="backing_format", rule_id="READ-NO-PROBE")
    _name_bytes(path, backing or None)
    copied, hydrated = 0, False
    # The unsafe form only renames, so it must work when the old backing file is gone (it was
    # moved: the reason for -u); the safe form reads the old chain and needs all of it.
    with AddCowImage(path, "r+", lenient_backing=unsafe, fs=fs) as img:
        if not backing:
            if not unsafe:
                img.hydrate(progress=progress)
                hydrated = True
        else:
            assert backing_format is not None
            new = _open_new(path, backing, backing_format, fs)  # loops, bad formats fail here
            try:
                if not unsafe:
                    if isinstance(new, MissingBacking):
                        raise BackingFileError(f"new backing file {new.reason}", file=new.path,
                                               rule_id="BACK-EXISTS")
                    if not img.all_allocated:
                        copied = _copy_differing(img, new, progress)
            finally:
                new.close()
    set_backing_name(path, backing or None, backing_format if backing else None, fs=fs)
    return RebaseResult(path=path, backing=backing or None,
                        backing_format=backing_format if backing else None,
                        copied_clusters=copied, hydrated=hydrated)


def set_backing_name(path: str, backing: str | None, backing_format: str | None, *,
                     fs: FileSystem | None = None) -> None:
    """Store ``backing``/``backing_format`` as the backing file of ``path`` (None: no backing
    file), keeping the image name, the features and the bitmap, in one atomic replace. Only
    the header is read, so the old backing chain need not open."""
    with AddCowImage(path, lenient_backing=True, fs=fs) as img:
        header = img.header
        if not isinstance(header, HeaderV2):
            raise ReadOnlyError("version 1 images are read-only", file=path,
                                rule_id="V1-READ-ONLY")
        d = img.descriptor
        header_length = int(header.header_length)
        # The header extension, kept as it is (HDR-EXTENSION-KEEP).
        extension = img.metadata_bytes(HEADER_LENGTH_V2, header_length - HEADER_LENGTH_V2)
    name = _name_bytes(path, backing)
    old_offset = int(header.bitmap_offset)
    fits = header_length + len(d.image_name) + len(name or b"") <= old_offset
    new_header, prefix = build_metadata(
        size=int(header.virtual_size), image_name=d.image_name, backing_name=name,
        backing_format=backing_format, cluster_bits=int(header.cluster_bits),
        bitmap_offset=old_offset if fits else None,
        compatible_features=int(header.compatible_features),
        # A change of the header: unknown autoclear bits go (FEAT-AUTOCLEAR-UNKNOWN)
        autoclear_features=int(header.autoclear_features) & KNOWN_AUTOCLEAR_FEATURES,
        extension=extension)
    replace_metadata(path, prefix, int(new_header.bitmap_offset) + new_header.bitmap_length,
                     bitmap_from=(old_offset, header.bitmap_length), fs=fs)
