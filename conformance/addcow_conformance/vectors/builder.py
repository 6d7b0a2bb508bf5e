"""Build add-cow files byte by byte from header values, names and bitmap bytes.

The headers are forged from the schema's defaults (``addcow_ref.format.forge``) and every
field-addressed mutation goes through ``addcow_ref.format.layout``: the generator never holds a
second copy of the layout, so a vector that breaks "the cluster_bits field" breaks exactly the
bytes the schema says it is.
Everything else (name placement, bitmap bits, padding) is written out here by hand, independent
of the reference's own writers.
"""

from __future__ import annotations

import dataclasses

from addcow_conformance.vectors.model import bitmap_bytes
from addcow_ref.format.constants import (
    FORMAT_FIELD_LENGTH,
    HEADER_LENGTH_V2,
)
from addcow_ref.format.forge import forge_v1, forge_v2
from addcow_ref.format.header import HeaderV2
from addcow_ref.format.layout import encode_field, field_info
from addcow_ref.format.schema import HEADER_V1, HEADER_V2

__all__ = ["AddCow", "V1File", "field_offset", "fmt", "set_field"]


def fmt(text: str | bytes) -> bytes:
    """A NUL-padded 16-byte format field."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    if len(raw) > FORMAT_FIELD_LENGTH:
        raise ValueError(f"format text {raw!r} is longer than {FORMAT_FIELD_LENGTH} bytes")
    return raw.ljust(FORMAT_FIELD_LENGTH, b"\0")


def field_offset(name: str, *, v1: bool = False) -> int:
    return field_info(HEADER_V1 if v1 else HEADER_V2, name).offset


def set_field(buf: bytearray, name: str, value: int | bytes, *, v1: bool = False) -> None:
    """Overwrite one header field in place, at the offset and width the schema declares."""
    struct = HEADER_V1 if v1 else HEADER_V2
    info = field_info(struct, name)
    buf[info.offset:info.end] = encode_field(struct, name, value)


@dataclasses.dataclass
class AddCow:
    """Every input of a v2 add-cow file; ``build()`` lays them out.

    Name offsets default to packing the image name right after the header and the backing name
    right after it. ``bitmap`` overrides the bits computed from ``bits`` (for padding vectors).
    """

    virtual_size: int
    cluster_bits: int = 12
    image_name: bytes = b"image.raw"
    backing_name: bytes | None = None
    backing_format: str | bytes | None = None
    image_format: str | bytes = "raw"
    bitmap_offset: int = 4096
    header_length: int = HEADER_LENGTH_V2
    extension: bytes = b""
    image_name_offset: int | None = None
    backing_name_offset: int | None = None
    incompatible_features: int = 0
    compatible_features: int = 0
    autoclear_features: int = 0
    bits: set[int] = dataclasses.field(default_factory=set)
    bitmap: bytes | None = None
    trailing: bytes = b""

    @property
    def cluster_count(self) -> int:
        return -(-self.virtual_size // (1 << self.cluster_bits))

    @property
    def bitmap_length(self) -> int:
        return -(-self.cluster_count // 8)

    def name_offsets(self) -> tuple[int, int]:
        img = self.header_length if self.image_name_offset is None else self.image_name_offset
        if self.backing_name is None:
            return img, 0
        bak = (img + len(self.image_name) if self.backing_name_offset is None
               else self.backing_name_offset)
        return img, bak

    def header(self) -> HeaderV2:
        """The header: the schema's defaults (magic, version, reserved bytes) and this file's
        values for every other field."""
        img_off, bak_off = self.name_offsets()
        has_backing = self.backing_name is not None
        bfmt = self.backing_format if self.backing_format is not None else (
            "raw" if has_backing else "")
        return forge_v2(
            header_length=self.header_length,
            incompatible_features=self.incompatible_features,
            compatible_features=self.compatible_features,
            autoclear_features=self.autoclear_features,
            virtual_size=self.virtual_size,
            bitmap_offset=self.bitmap_offset,
            cluster_bits=self.cluster_bits,
            image_name_offset=img_off,
            image_name_length=len(self.image_name),
            backing_name_offset=bak_off,
            backing_name_length=len(self.backing_name or b""),
            image_format=fmt(self.image_format),
            backing_format=fmt(bfmt),
        )

    def bitmap_data(self) -> bytes:
        if self.bitmap is not None:
            return self.bitmap
        return bitmap_bytes(self.bits, self.cluster_count)

    def build(self) -> bytes:
        header = self.header().build()
        bitmap = self.bitmap_data()
        size = max(self.bitmap_offset, self.header_length) + len(bitmap)
        buf = bytearray(size)
        buf[:len(header)] = header
        buf[len(header):len(header) + len(self.extension)] = self.extension
        img_off, bak_off = self.name_offsets()
        names = [(img_off, self.image_name)]
        if self.backing_name is not None:
            names.append((bak_off, self.backing_name))
        for off, name in names:
            if off + len(name) <= len(buf):
                buf[off:off + len(name)] = name
        buf[self.bitmap_offset:self.bitmap_offset + len(bitmap)] = bitmap
        return bytes(buf) + self.trailing


@dataclasses.dataclass
class V1File:
    """Every input of a legacy v1 add-cow file (2560-byte header, bitmap at 2560)."""

    image_length: int
    image_name: bytes = b"image.raw"
    backing_name: bytes = b""
    bits: set[int] = dataclasses.field(default_factory=set)
    reserved: bytes = bytes(500)
    #: Overrides the bits computed from ``bits`` (for padding vectors).
    bitmap: bytes | None = None

    @property
    def virtual_size(self) -> int:
        return self.image_length - self.image_length % 512

    @property
    def cluster_count(self) -> int:
        return -(-self.virtual_size // 65536)

    def build(self) -> bytes:
        header = forge_v1(backing_file=self.backing_name, image_file=self.image_name,
                          reserved=self.reserved)
        bitmap = (self.bitmap if self.bitmap is not None
                  else bitmap_bytes(self.bits, self.cluster_count))
        return header.build() + bitmap
