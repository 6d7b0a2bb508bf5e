"""One description of an open image, whichever header version it was read from.

A version 1 header (spec: "Legacy version 1") and a version 2 header store the same facts in
different places: v1 has a fixed cluster size, names inline in the header and a virtual size
taken from the image file; v2 has name fields pointing elsewhere in the file and feature words.
Opening turns either into an :class:`ImageDescriptor`, so the copy-on-write code, the info record
and the backing-file opener read one typed record and never branch on the header's class. The
version dispatch happens once, in :func:`read_descriptor`.
"""

from __future__ import annotations

import dataclasses

from addcow_ref.engine.fileio import BlockFile, FileSystem
from addcow_ref.engine.legacy import V1_BACKING_FORMAT, read_v1_header
from addcow_ref.format.constants import (
    FORMAT_RAW,
    HEADER_LENGTH_V1,
    HEADER_LENGTH_V2,
    MAGIC,
    VERSION_1,
    CompatibleFeature,
)
from addcow_ref.format.errors import FormatError
from addcow_ref.format.fieldtable import HEADER_V2
from addcow_ref.format.header import (
    HeaderV1,
    HeaderV2,
    bitmap_length_for,
    cluster_count_for,
    parse_header,
    read_version,
)
from addcow_ref.format.layout import offset_of
from addcow_ref.format.validate import header_violations, raise_violations

__all__ = ["ImageDescriptor", "describe_v1", "describe_v2", "read_descriptor"]

_ALL_ALLOCATED = int(CompatibleFeature.ALL_ALLOCATED)

#: header_length is a multiple of this (HDR-LENGTH-MULTIPLE): appended fields stay aligned.
HEADER_LENGTH_ALIGN = 8



@dataclasses.dataclass(frozen=True)
class ImageDescriptor:
    """The facts of an image's header that opening, I/O and ``info`` need.

    ``backing_name`` is None when the image has no backing file (an empty name is kept as
    ``b""``: opening it then fails with the error the name deserves). ``backing_format`` is the
    declared format (v1 cannot declare one: its backing file is read as raw, never probed).
    ``writable`` says whether the version may be opened for writing (V1-READ-ONLY).
    """

    version: int
    virtual_size: int
    cluster_bits: int
    bitmap_offset: int
    header_length: int
    image_name: bytes
    image_format: str
    backing_name: bytes | None
    backing_format: str | None
    incompatible_features: int
    compatible_features: int
    autoclear_features: int
    writable: bool

    @property
    def cluster_size(self) -> int:
        return 1 << self.cluster_bits

    @property
    def cluster_count(self) -> int:
        return cluster_count_for(self.virtual_size, self.cluster_bits)

    @property
    def bitmap_length(self) -> int:
        return bitmap_length_for(self.virtual_size, self.cluster_bits)

    @property
    def all_allocated(self) -> bool:
        """FEAT-ALL-ALLOCATED: every cluster is in the image file; the backing file is unused."""
        return bool(self.compatible_features & _ALL_ALLOCATED)

    def updated(self, header: HeaderV2) -> ImageDescriptor:
        """This description after ``header`` was written over the old one (a resize, a hydrate,
        cleared autoclear bits): the names stay where they were."""
        return dataclasses.replace(
            self,
            virtual_size=int(header.virtual_size),
            incompatible_features=int(header.incompatible_features),
            compatible_features=int(header.compatible_features),
            autoclear_features=int(header.autoclear_features),
        )


def describe_v2(header: HeaderV2, meta: BlockFile) -> ImageDescriptor:
    """The description of a validated v2 header; its names are read from ``meta``."""
    backing = None
    if header.has_backing:
        backing = meta.pread(int(header.backing_name_offset), int(header.backing_name_length))
    return ImageDescriptor(
        version=int(header.version),
        virtual_size=int(header.virtual_size),
        cluster_bits=int(header.cluster_bits),
        bitmap_offset=int(header.bitmap_offset),
        header_length=int(header.header_length),
        image_name=meta.pread(int(header.image_name_offset), int(header.image_name_length)),
        image_format=header.image_format_name,
        backing_name=backing,
        backing_format=header.backing_format_name or None,
        incompatible_features=int(header.incompatible_features),
        compatible_features=int(header.compatible_features),
        autoclear_features=int(header.autoclear_features),
        writable=True,
    )


def describe_v1(header: HeaderV1) -> ImageDescriptor:
    """The description of a validated v1 header (its virtual size already known): no feature
    words, a raw image file, a backing file read as :data:`V1_BACKING_FORMAT`, read-only."""
    backing = header.backing_name or None
    return ImageDescriptor(
        version=VERSION_1,
        virtual_size=int(header.virtual_size),
        cluster_bits=int(header.cluster_bits),
        bitmap_offset=int(header.bitmap_offset),
        header_length=HEADER_LENGTH_V1,
        image_name=header.image_name,
        image_format=FORMAT_RAW,
        backing_name=backing,
        backing_format=V1_BACKING_FORMAT if backing else None,
        incompatible_features=0,
        compatible_features=0,
        autoclear_features=0,
        writable=False,
    )


def read_descriptor(meta: BlockFile, path: str,
                    fs: FileSystem) -> tuple[HeaderV2 | HeaderV1, ImageDescriptor]:
    """Read, validate and describe the header of the add-cow file ``meta`` (named ``path``).

    Raises :class:`~addcow_ref.format.errors.FormatError` (or a subclass) naming the rule the
    header breaks; a v1 header also needs its image file, opened through ``fs``, for its size.
    """
    head = meta.pread(0, HEADER_LENGTH_V2)
    if len(head) >= 8 and head[:8] != MAGIC:
        raise FormatError(f"magic is {head[:8].hex(' ')}; not an add-cow file",
                          file=path, offset=0, field="magic", rule_id="HDR-MAGIC")
    if read_version(head) == VERSION_1:
        v1 = read_v1_header(meta, path, fs)
        return v1, describe_v1(v1)
    header = parse_header(head, file=path)
    raise_violations(header_violations(header, meta.pread, meta.size()), path)
    if int(header.header_length) % HEADER_LENGTH_ALIGN:
        raise FormatError(f"header_length {int(header.header_length)} is not a multiple of "
                          f"{HEADER_LENGTH_ALIGN}", file=path,
                          offset=offset_of(HEADER_V2, "header_length"), field="header_length",
                          rule_id="HDR-LENGTH-MULTIPLE")
    return header, describe_v2(header, meta)
