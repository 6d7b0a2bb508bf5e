"""Creating add-cow images (spec: "Header", "Names", "COW bitmap").

The add-cow file is written under a temporary name, fsynced and renamed into place, so a crash
or an error never leaves a half-written image under the final name. Files are created only
where meant (:mod:`addcow_ref.ops.safefile`): the temporary file and a new image file are made
exclusively, so a symbolic link planted at either name is never followed, and a create that
fails removes the files it made itself (and shrinks an existing image file it grew back to its
size), never one that was there before.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable

from addcow_ref.engine.backing import ChainState, MissingBacking, open_backing, resolve_name
from addcow_ref.engine.fileio import DEFAULT_FS, FileSystem
from addcow_ref.format.constants import (
    BACKING_FORMATS,
    BITMAP_ALIGNMENT,
    DEFAULT_BITMAP_OFFSET,
    DEFAULT_CLUSTER_BITS,
    FORMAT_ADD_COW,
    HEADER_LENGTH_V2,
    MAGIC,
    MAX_CLUSTER_BITS,
    MAX_VIRTUAL_SIZE,
    MIN_CLUSTER_BITS,
    SECTOR_SIZE,
)
from addcow_ref.format.errors import BackingFileError, FormatError, ImageFileError
from addcow_ref.format.forge import forge_v2, name_fields
from addcow_ref.format.header import HeaderV2
from addcow_ref.format.text import printable
from addcow_ref.format.validate import header_violations, raise_violations
from addcow_ref.ops.metafile import write_beside
from addcow_ref.ops.safefile import adopt, create_exclusive, default_mode

__all__ = ["KNOWN_MAGICS", "build_metadata", "create", "create_problems", "looks_like"]


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
                   compatible_features: int = 0, autoclear_features: int = 0,
                   extension: bytes = b"") -> tuple[HeaderV2, bytes]:
    """The header and the bytes ``[0, bitmap_offset)`` (header plus name area) of a new image.

    Shared by :func:`create`, the v1 upgrade and the rebase's rename, so all lay names out the
    same way: the image name right after the header, the backing name after it. ``extension``
    is the header's bytes from 128 to ``header_length``, which a rewrite of an existing header
    keeps (HDR-EXTENSION-KEEP); the names then follow it.
    """
    start = HEADER_LENGTH_V2 + len(extension)
    names_end = start + len(image_name) + len(backing_name or b"")
    if bitmap_offset is None:
        bitmap_offset = max(DEFAULT_BITMAP_OFFSET, _align_up(names_end, BITMAP_ALIGNMENT))
    header = forge_v2(
        virtual_size=size, bitmap_offset=bitmap_offset, cluster_bits=cluster_bits,
        header_length=start, compatible_features=compatible_features,
        autoclear_features=autoclear_features, backing_format=(backing_format or "").encode(),
        **name_fields(image_name, backing_name, start=start))
    prefix = bytearray(max(bitmap_offset, names_end))
    prefix[:HEADER_LENGTH_V2] = header.build()
    prefix[HEADER_LENGTH_V2:start] = extension
    prefix[start:start + len(image_name)] = image_name
    if backing_name:
        prefix[start + len(image_name):names_end] = backing_name
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
           bitmap_offset: int | None = None, fs: FileSystem | None = None,
           verify: bool = False) -> None:
    """Create an add-cow image at ``path``.

    ``image_file`` and ``backing_file`` are the names stored in the header; relative names are
    relative to the directory of ``path`` (READ-NAME-RELATIVE). The raw image file is created
    (or extended) to ``size``. ``size`` defaults to the backing file's virtual size, rounded up
    to 512 bytes. ``backing_format`` is required with a backing file: the format is never
    guessed from the file's contents (READ-NO-PROBE).

    ``verify`` opens the new image once it is in place and, if that fails (a backing chain
    that loops back to it), removes what this call created and raises the error: the command
    line's way of never leaving an image that cannot be opened. Without it an unopenable image
    can be made on purpose, as the test vectors do. An image file that is the add-cow file or
    the backing file is refused either way (IMG-IDENTITY), and an existing regular image file
    longer than ``size`` is cut to it once the image is in place (IMG-LENGTH).
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
    image_path = resolve_name(path, image_name)
    _refuse_identity(path, image_path,
                     resolve_name(path, backing_name) if backing_name is not None else None, fs)
    undo = _prepare_image_file(image_path, size, fs)
    try:
        write_beside(path, prefix, int(header.bitmap_offset) + header.bitmap_length, fs=fs,
                     tag="create", mode=lambda fd: os.fchmod(fd, default_mode()),
                     what="add-cow file")
        try:
            if verify:
                from addcow_ref.engine.image import open_image

                open_image(path, fs=fs).close()
            _cut_to_size(image_path, size, fs)
        except BaseException:
            with contextlib.suppress(OSError):
                fs.unlink(path)
            raise
    except BaseException:
        undo()
        raise


def _refuse_identity(path: str, image_path: str, backing_path: str | None,
                     fs: FileSystem) -> None:
    """Refuse an image file that is the add-cow file or the backing file (IMG-IDENTITY) before
    any file is touched: ``--image-file g.raw -b g.raw`` would otherwise grow the "golden"
    backing file to the disk's size, and every guest write would change it. Names are compared
    first (neither file need exist yet: create would make one of them the other), then, for
    files that exist, ``(st_dev, st_ino)``, which sees through links."""
    others = [(path, "the add-cow file itself")]
    if backing_path is not None:
        others.append((backing_path, "the backing file"))
    image_abs = os.path.normpath(os.path.abspath(image_path))
    for other, what in others:
        same = os.path.normpath(os.path.abspath(other)) == image_abs
        if not same and "missing" not in (fs.kind(image_path), fs.kind(other)):
            try:
                same = fs.identity(image_path) == fs.identity(other)
            except OSError:
                same = False  # cannot be stat'ed: preparing or opening it reports why
        if same:
            raise ImageFileError(f"image file is {what}", file=image_path,
                                 field="image_name_offset", rule_id="IMG-IDENTITY")


def _cut_to_size(image_path: str, size: int, fs: FileSystem) -> None:
    """Cut a regular image file longer than ``size`` to it (IMG-LENGTH): a reused file (the
    command line needs ``--force`` for a non-empty one) ends where the disk ends. Done last,
    once the image is in place, so a create that fails never loses the file's tail."""
    if fs.kind(image_path) != "file":
        return  # a block device keeps its size
    try:
        f = fs.open(image_path, writable=True)
        try:
            if f.size() > size:
                f.truncate(size)
                f.fsync()
        finally:
            f.close()
    except OSError as e:
        raise ImageFileError(f"cannot cut the image file to {size} bytes: {e.strerror}",
                             file=image_path, rule_id="IMG-LENGTH") from None


#: Leading bytes of the image formats a backing file is most often mistaken for: ``(offset,
#: magic, format name)``. Only used to warn that ``-F`` contradicts the file's first bytes;
#: the format used is always the one given (READ-NO-PROBE).
KNOWN_MAGICS: tuple[tuple[int, bytes, str], ...] = (
    (0, MAGIC, FORMAT_ADD_COW),
    (0, b"QFI\xfb", "qcow2"),
    (0, b"KDMV", "vmdk"),
    (0, b"COWD", "vmdk"),
    (0, b"# Disk DescriptorFile", "vmdk"),
    (0, b"vhdxfile", "vhdx"),
    (0, b"QED\x00", "qed"),
    (0, b"conectix", "vpc"),
    (0, b"LUKS\xba\xbe", "luks"),
    (0x40, b"\x7f\x10\xda\xbe", "vdi"),
)


def looks_like(head: bytes) -> str | None:
    """The format whose magic ``head`` (a file's first bytes) starts with, if any."""
    for offset, magic, name in KNOWN_MAGICS:
        if head[offset:offset + len(magic)] == magic:
            return name
    return None


def create_problems(path: str | os.PathLike[str], *, image_file: str | bytes,
                    backing_file: str | bytes | None = None,
                    backing_format: str | None = None) -> list[str]:
    """What would make a create at ``path`` do something the user did not mean, one sentence
    each (the command line refuses unless ``--force``): an image file name that is a symbolic
    link or a non-empty file, whose data the new, empty overlay would hide; a backing file
    whose first bytes are another format's magic than ``backing_format`` says."""
    path = os.fspath(path)
    problems: list[str] = []
    image_path = resolve_name(path, _name_bytes(image_file))
    shown = printable(image_path)
    try:
        st = os.lstat(image_path)
    except OSError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        problems.append(f"image file {shown} is a symbolic link; create does not write "
                        "through a link (pass --force to use the file it points to)")
    elif st is not None and stat.S_ISREG(st.st_mode) and st.st_size > 0:
        problems.append(f"image file {shown} already exists and holds {st.st_size} bytes, "
                        "which the new image would hide (pass --force to use it anyway)")
    if backing_file is not None and backing_format is not None:
        backing_path = resolve_name(path, _name_bytes(backing_file))
        try:
            with open(backing_path, "rb") as f:
                head = f.read(512)
        except OSError:
            return problems  # the create itself reports a backing file it cannot open
        seen = looks_like(head)
        name = printable(backing_path)
        if seen is not None and seen != backing_format:
            hint = (f"pass -F {seen}" if seen in BACKING_FORMATS else
                    f"add-cow reads only raw and add-cow backing files, so convert it first "
                    f"(qemu-img convert -f {seen} -O raw)")
            problems.append(f"{name} starts with the {seen} magic but -F {backing_format} was "
                            f"given; {hint}, or pass --force to read it as {backing_format}")
        elif seen is None and backing_format == FORMAT_ADD_COW:
            problems.append(f"{name} does not start with the add-cow magic but -F add-cow was "
                            "given; pass -F raw if it is a raw disk")
    return problems


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


def _prepare_image_file(image_path: str, size: int, fs: FileSystem) -> Callable[[], None]:
    """Create the image file, or extend an existing one, to ``size`` bytes; returns what undoes
    it (removes a file made here, shrinks a file grown here back to its size)."""
    created = False
    old_size: int | None = None
    try:
        try:
            st = os.lstat(image_path)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode) and fs.kind(image_path) == "missing":
            raise ImageFileError("image file name is a symbolic link to a missing file; a new "
                                 "image file is never created through a link",
                                 file=image_path, rule_id="IMG-EXISTS")
        if st is None:
            f = adopt(fs, image_path, create_exclusive(image_path))
            created = True
        else:
            kind = fs.kind(image_path)
            if kind not in ("file", "block"):
                raise ImageFileError("image file is not a regular file", file=image_path,
                                     rule_id="IMG-EXISTS")
            f = fs.open(image_path, writable=True)
        try:
            current = f.size()
            if current < size:
                if not created and fs.kind(image_path) == "block":
                    raise ImageFileError(f"block device is smaller than {size} bytes",
                                         file=image_path, rule_id="IMG-SIZE")
                old_size = current
                f.truncate(size)
            f.fsync()
        finally:
            f.close()
        if created:
            fs.fsync_dir(os.path.dirname(os.path.abspath(image_path)))
    except OSError as e:
        _undo_image_file(image_path, created, old_size, fs)
        raise ImageFileError(f"cannot create image file: {e.strerror}", file=image_path,
                             rule_id="IMG-EXISTS") from None
    except BaseException:
        _undo_image_file(image_path, created, old_size, fs)
        raise
    return lambda: _undo_image_file(image_path, created, old_size, fs)


def _undo_image_file(image_path: str, created: bool, old_size: int | None,
                     fs: FileSystem) -> None:
    with contextlib.suppress(OSError):
        if created:
            fs.unlink(image_path)
        elif old_size is not None:
            f = fs.open(image_path, writable=True)
            try:
                f.truncate(old_size)
            finally:
                f.close()
