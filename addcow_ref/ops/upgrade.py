"""The upgrade of a version 1 image to version 2, in place (spec: "Legacy version 1"; rule
V1-READ-ONLY).

The upgrade never modifies the v1 file (V1-READ-ONLY): it writes a complete v2 file under a
temporary name in the same directory (made exclusively, with an unpredictable name, by
:mod:`addcow_ref.ops.safefile`, and given the original's permissions), fsyncs it, renames it
over the original and fsyncs the directory. Until the rename the original is untouched; the
rename is atomic, so any failure or crash leaves either the intact v1 image or the complete v2
image under the original name.
"""

from __future__ import annotations

import os

from addcow_ref.engine.fileio import DEFAULT_FS, BlockFile, FileSystem
from addcow_ref.engine.legacy import V1_BACKING_FORMAT, read_v1_header
from addcow_ref.format.bitmap import padding_mask
from addcow_ref.format.constants import (
    BACKING_FORMATS,
    HEADER_LENGTH_V1,
    MAGIC,
    V1_CLUSTER_BITS,
    VERSION_1,
    VERSION_2,
)
from addcow_ref.format.errors import AddCowError, BackingFileError, FormatError
from addcow_ref.format.header import HeaderV1
from addcow_ref.ops.create import build_metadata
from addcow_ref.ops.safefile import adopt, copy_owner, temp_beside

__all__ = ["upgrade_v1"]

#: Bitmap bytes copied per step of the upgrade.
COPY_CHUNK = 1 << 20


def upgrade_v1(path: str | os.PathLike[str], *, backing_format: str = V1_BACKING_FORMAT,
               fs: FileSystem | None = None) -> None:
    """Convert the v1 image at ``path`` to v2 in place, atomically (see the module docstring).

    ``backing_format`` is recorded for the backing file, if there is one (default ``raw``).
    """
    fs = fs or DEFAULT_FS
    path = os.fspath(path)
    if backing_format not in BACKING_FORMATS:
        raise BackingFileError(f"backing format {backing_format!r} is not supported",
                               file=path, field="backing_format", rule_id="FMT-BACKING-KNOWN")
    try:
        meta = fs.open(path, writable=False)
    except OSError as e:
        raise AddCowError(f"cannot open: {e.strerror}", file=path) from None
    tmp = ""
    try:
        head = meta.pread(0, 12)
        if head[:8] != MAGIC:
            raise FormatError("not an add-cow image (bad magic); nothing to upgrade",
                              file=path, offset=0, field="magic", rule_id="HDR-MAGIC")
        version = int.from_bytes(head[8:12], "big") if len(head) == 12 else None
        if version == VERSION_2:
            raise AddCowError("already version 2; nothing to upgrade", file=path, offset=8,
                              field="version")
        if version != VERSION_1:
            raise FormatError(f"version {version} is neither 1 nor 2; nothing to upgrade",
                              file=path, offset=8, field="version", rule_id="HDR-VERSION")
        header = read_v1_header(meta, path, fs)
        backing = header.backing_name or None
        new, prefix = build_metadata(
            size=header.virtual_size, image_name=header.image_name, backing_name=backing,
            backing_format=backing_format if backing else None,
            cluster_bits=V1_CLUSTER_BITS, bitmap_offset=None)
        fd, tmp = temp_beside(path, "upgrade")
        try:
            meta_fd = meta.fileno()
            copy_owner(fd, os.fstat(meta_fd) if meta_fd is not None else os.stat(path))
        except BaseException:
            os.close(fd)
            raise
        _write_upgraded(meta, header, new.bitmap_length, int(new.bitmap_offset), prefix,
                        adopt(fs, tmp, fd))
    except OSError as e:
        _discard(tmp, fs)
        raise AddCowError(f"upgrade failed, original kept: {e.strerror or e}",
                          file=path) from None
    except BaseException:
        _discard(tmp, fs)
        raise
    finally:
        meta.close()
    try:
        fs.replace(tmp, path)
    except OSError as e:
        _discard(tmp, fs)
        raise AddCowError(f"upgrade failed, original kept: {e.strerror or e}",
                          file=path) from None
    try:
        fs.fsync_dir(os.path.dirname(os.path.abspath(path)))
    except OSError as e:
        raise AddCowError(f"upgraded, but the directory fsync failed: {e.strerror or e}",
                          file=path) from None


def _write_upgraded(meta: BlockFile, header: HeaderV1, length: int, bitmap_offset: int,
                    prefix: bytes, out: BlockFile) -> None:
    """Fill the new, empty file ``out`` and make it durable; closes it."""
    try:
        out.pwrite(0, prefix)
        mask = padding_mask(header.cluster_count)
        pos = 0
        while pos < length:
            n = min(COPY_CHUNK, length - pos)
            chunk = bytearray(meta.pread(HEADER_LENGTH_V1 + pos, n).ljust(n, b"\0"))
            if pos + n == length and mask:
                chunk[-1] &= ~mask & 0xFF  # padding bits must be 0 in v2 (BMP-PADDING)
            if chunk.count(0) != n:
                out.pwrite(bitmap_offset + pos, chunk)
            pos += n
        out.truncate(bitmap_offset + length)
        out.fsync()
    finally:
        out.close()


def _discard(tmp: str, fs: FileSystem) -> None:
    if not tmp:
        return
    try:
        if fs.kind(tmp) != "missing":
            fs.unlink(tmp)
    except OSError:
        pass
