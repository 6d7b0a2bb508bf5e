"""Creating add-cow images (spec: "Header", "Names", "COW bitmap").

The add-cow file is written under a temporary name, fsynced and renamed into place, so a crash
or an error never leaves a half-written image under the final name.
"""

from __future__ import annotations

import os
from typing import Any

from addcow_ref.engine.backing import ChainState, MissingBacking, open_backing, resolve_name
from addcow_ref.engine.fileio import DEFAULT_FS, FileSystem
from addcow_ref.format.constants import (
    BACKING_FORMATS,
    BITMAP_ALIGNMENT,
    DEFAULT_BITMAP_OFFSET,
    DEFAULT_CLUSTER_BITS,
    FORMAT_FIELD_LENGTH,
    FORMAT_RAW,
    HEADER_LENGTH_V2,
    MAGIC,
    MAX_CLUSTER_BITS,
    MAX_VIRTUAL_SIZE,
    MIN_CLUSTER_BITS,
    SECTOR_SIZE,
    VERSION_2,
)
from addcow_ref.format.errors import AddCowError, BackingFileError, FormatError, ImageFileError
from addcow_ref.format.header import HeaderV2
from addcow_ref.format.validate import header_violations, raise_violations

__all__ = ["build_metadata", "create"]


def _name_bytes(name: str | bytes | os.PathLike[str]) -> bytes:
    raw = name if isinstance(name, bytes) else os.fsencode(os.fspath(name))
    if not raw:
        raise ValueError("a file name must not be empty")
    if b"\0" in raw:
        raise ValueError("a file name must not contain a NUL byte")
    return raw


def _align_up(n: int, a: int) -> int:
    return -(-n // a) * a


def build_metadata(*, size: int, image_name: bytes, backing_name: bytes | None,
                   backing_format: str | None, cluster_bits: int,
                   bitmap_offset: int | None,
                   compatible_features: int = 0) -> tuple[HeaderV2, bytes]:
    """The header and the bytes ``[0, bitmap_offset)`` (header plus name area) of a new image.

    Shared by :func:`create` and the v1 upgrade, so both lay names out the same way: the image
    name right after the header, the backing name after it.
    """
    names_end = HEADER_LENGTH_V2 + len(image_name) + len(backing_name or b"")
    if bitmap_offset is None:
        bitmap_offset = max(DEFAULT_BITMAP_OFFSET, _align_up(names_end, BITMAP_ALIGNMENT))
    values: dict[str, Any] = {
        "magic": MAGIC,
        "version": VERSION_2,
        "header_length": HEADER_LENGTH_V2,
        "incompatible_features": 0,
        "compatible_features": compatible_features,
        "autoclear_features": 0,
        "virtual_size": size,
        "bitmap_offset": bitmap_offset,
        "cluster_bits": cluster_bits,
        "reserved1": bytes(4),
        "image_name_offset": HEADER_LENGTH_V2,
        "image_name_length": len(image_name),
        "backing_name_offset": HEADER_LENGTH_V2 + len(image_name) if backing_name else 0,
        "backing_name_length": len(backing_name) if backing_name else 0,
        "image_format": FORMAT_RAW.encode().ljust(FORMAT_FIELD_LENGTH, b"\0"),
        "backing_format": (backing_format or "").encode().ljust(FORMAT_FIELD_LENGTH, b"\0"),
        "reserved2": bytes(16),
    }
    header = HeaderV2(values)
    prefix = bytearray(max(bitmap_offset, names_end))
    prefix[:HEADER_LENGTH_V2] = header.build()
    prefix[HEADER_LENGTH_V2:HEADER_LENGTH_V2 + len(image_name)] = image_name
    if backing_name:
        prefix[HEADER_LENGTH_V2 + len(image_name):names_end] = backing_name
    data = bytes(prefix)
    file_size = bitmap_offset + header.bitmap_length

    def read_at(offset: int, length: int) -> bytes:
        return data[offset:offset + length] if offset < len(data) else bytes(
            max(0, min(length, file_size - offset)))

    raise_violations(header_violations(header, read_at, file_size), "<new image>")
    return header, data[:bitmap_offset]


def create(path: str | os.PathLike[str], *, size: int | None = None,
           image_file: str | bytes | os.PathLike[str],
           backing_file: str | bytes | os.PathLike[str] | None = None,
           backing_format: str | None = None, cluster_bits: int = DEFAULT_CLUSTER_BITS,
           bitmap_offset: int | None = None, fs: FileSystem | None = None) -> None:
    """Create an add-cow image at ``path``.

    ``image_file`` and ``backing_file`` are the names stored in the header; relative names are
    relative to the directory of ``path`` (READ-NAME-RELATIVE). The raw image file is created
    (or extended) to ``size``. ``size`` defaults to the backing file's virtual size, rounded up
    to 512 bytes. ``backing_format`` is required with a backing file: the format is never
    guessed from the file's contents (READ-NO-PROBE).
    """
    fs = fs or DEFAULT_FS
    path = os.fspath(path)
    image_name = _name_bytes(image_file)
    backing_name = _name_bytes(backing_file) if backing_file is not None else None
    if not MIN_CLUSTER_BITS <= cluster_bits <= MAX_CLUSTER_BITS:
        raise FormatError(f"cluster_bits {cluster_bits} is outside {MIN_CLUSTER_BITS}.."
                          f"{MAX_CLUSTER_BITS}", file=path, field="cluster_bits",
                          rule_id="HDR-CLUSTER-BITS")
    if backing_name is not None:
        if backing_format is None:
            raise BackingFileError("a backing file needs an explicit backing format "
                                   f"({', '.join(sorted(BACKING_FORMATS))}); formats are never "
                                   "probed", file=path, field="backing_format",
                                   rule_id="READ-NO-PROBE")
        if backing_format not in BACKING_FORMATS:
            raise BackingFileError(f"backing format {backing_format!r} is not supported",
                                   file=path, field="backing_format",
                                   rule_id="FMT-BACKING-KNOWN")
        if size is None:
            size = _backing_size(path, backing_name, backing_format, fs)
    elif backing_format is not None:
        raise BackingFileError("backing_format given without a backing file", file=path,
                               field="backing_format", rule_id="FMT-BACKING-PRESENCE")
    if size is None:
        raise ValueError("size is required when there is no backing file")
    if size < 0 or size % SECTOR_SIZE or size > MAX_VIRTUAL_SIZE:
        raise FormatError(f"size {size} is not a multiple of {SECTOR_SIZE} below 2^63",
                          file=path, field="virtual_size", rule_id="HDR-VIRTUAL-SIZE-ALIGN")
    header, prefix = build_metadata(size=size, image_name=image_name,
                                    backing_name=backing_name, backing_format=backing_format,
                                    cluster_bits=cluster_bits, bitmap_offset=bitmap_offset)
    _prepare_image_file(resolve_name(path, image_name), size, fs)
    _write_new_file(path, prefix, int(header.bitmap_offset) + header.bitmap_length, fs)


def _backing_size(path: str, name: bytes, fmt: str, fs: FileSystem) -> int:
    top = os.path.abspath(path)
    seen = frozenset({fs.identity(top)}) if fs.kind(top) in ("file", "block") else frozenset()
    backing = open_backing(path, name, fmt, fs, ChainState(seen, 1))
    try:
        if isinstance(backing, MissingBacking):
            raise BackingFileError(f"cannot take the size from the backing file: "
                                   f"{backing.reason}", file=backing.path, rule_id="BACK-EXISTS")
        size = backing.size
    finally:
        backing.close()
    return _align_up(size, SECTOR_SIZE)


def _prepare_image_file(image_path: str, size: int, fs: FileSystem) -> None:
    kind = fs.kind(image_path)
    if kind not in ("missing", "file", "block"):
        raise ImageFileError("image file is not a regular file", file=image_path,
                             rule_id="IMG-EXISTS")
    try:
        f = fs.open(image_path, writable=True, create=True)
        try:
            if f.size() < size:
                if kind == "block":
                    raise ImageFileError(f"block device is smaller than {size} bytes",
                                         file=image_path, rule_id="IMG-SIZE")
                f.truncate(size)
            f.fsync()
        finally:
            f.close()
    except OSError as e:
        raise ImageFileError(f"cannot create image file: {e.strerror}", file=image_path,
                             rule_id="IMG-EXISTS") from None


def _write_new_file(path: str, prefix: bytes, total: int, fs: FileSystem) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        f = fs.open(tmp, writable=True, create=True)
        try:
            f.truncate(0)
            f.pwrite(0, prefix)
            f.truncate(total)  # the all-zero bitmap stays sparse
            f.fsync()
        finally:
            f.close()
        fs.replace(tmp, path)
        fs.fsync_dir(os.path.dirname(os.path.abspath(path)))
    except OSError as e:
        try:
            if fs.kind(tmp) != "missing":
                fs.unlink(tmp)
        except OSError:
            pass
        raise AddCowError(f"cannot write add-cow file: {e.strerror}", file=path) from None
