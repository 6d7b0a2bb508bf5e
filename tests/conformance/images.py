"""Build valid add-cow image sets in a directory and break them one field at a time.

Headers come from ``addcow_ref.format.header.HeaderV2(...).build()`` and field mutations address
fields
by NAME through ``addcow_ref.format.layout``, so no offset or width is written down here: the tests
stay right when the schema changes. The vector generator may reuse these helpers.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from construct import Struct

from addcow_ref.format.constants import (
    DEFAULT_BITMAP_OFFSET,
    HEADER_LENGTH_V1,
    HEADER_LENGTH_V2,
    MAGIC,
    V1_NAME_FIELD_LENGTH,
    VERSION_1,
    VERSION_2,
)
from addcow_ref.format.header import HeaderV1, HeaderV2, bitmap_length_for
from addcow_ref.format.layout import field_info, field_table
from addcow_ref.format.schema import HEADER_V1, HEADER_V2

__all__ = [
    "CLUSTER_BITS",
    "VIRTUAL_SIZE",
    "ImageSet",
    "build_v1",
    "build_v2",
    "encode_field",
    "format_field",
    "pristine_v1",
    "pristine_v2",
    "read_field",
    "set_field",
]

CLUSTER_BITS = 16
#: Ten clusters, the last one partial: the bitmap's last byte has padding bits, and a change of
#: virtual_size by a few sectors keeps the cluster count.
VIRTUAL_SIZE = 9 * (1 << CLUSTER_BITS) + 4096
#: Every other cluster allocated (clusters 0, 2, 4, 6, 8), so the backing file is needed.
HALF_BITMAP = bytes([0x55, 0x01])


def format_field(name: str) -> bytes:
    return name.encode("ascii").ljust(16, b"\0")


@dataclasses.dataclass
class ImageSet:
    """One add-cow file and the files it names, all in ``directory``."""

    directory: Path
    addcow: Path
    image: Path | None
    backing: Path | None

    def files(self) -> list[Path]:
        return [p for p in (self.addcow, self.image, self.backing) if p is not None]


def v2_header(**fields: Any) -> HeaderV2:
    """A valid header for the default layout; any field can be overridden by name."""
    values: dict[str, Any] = {
        "magic": MAGIC, "version": VERSION_2, "header_length": HEADER_LENGTH_V2,
        "incompatible_features": 0, "compatible_features": 0, "autoclear_features": 0,
        "virtual_size": VIRTUAL_SIZE, "bitmap_offset": DEFAULT_BITMAP_OFFSET,
        "cluster_bits": CLUSTER_BITS, "reserved1": bytes(4),
        "image_name_offset": 0, "image_name_length": 0,
        "backing_name_offset": 0, "backing_name_length": 0,
        "image_format": format_field("raw"), "backing_format": bytes(16),
        "reserved2": bytes(16),
    }
    values.update(fields)
    return HeaderV2(values)


def build_v2(header: HeaderV2, names: dict[int, bytes], bitmap: bytes | None = None,
             trailing: bytes = b"") -> bytes:
    """The bytes of an add-cow file: header, name area (``names``: offset -> bytes), bitmap."""
    bitmap_offset = int(header.bitmap_offset)
    area = bytearray(header.build().ljust(bitmap_offset, b"\0"))
    for offset, name in names.items():
        area[offset:offset + len(name)] = name
    if bitmap is None:
        bitmap = bytes(bitmap_length_for(int(header.virtual_size), int(header.cluster_bits)))
    return bytes(area) + bitmap + trailing


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def pristine_v2(directory: Path, *, backing: bool = True, backing_format: str = "raw",
                image_name: bytes = b"image.raw", backing_name: bytes = b"backing.raw",
                bitmap: bytes = HALF_BITMAP, stem: str = "image",
                **fields: Any) -> ImageSet:
    """A conforming image set: ``<stem>.add-cow``, its raw image file and (by default) a raw
    backing file, names stored relative to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    names = {HEADER_LENGTH_V2: image_name}
    header_fields: dict[str, Any] = {
        "image_name_offset": HEADER_LENGTH_V2, "image_name_length": len(image_name)}
    if backing:
        at = HEADER_LENGTH_V2 + len(image_name)
        names[at] = backing_name
        header_fields.update(backing_name_offset=at, backing_name_length=len(backing_name),
                             backing_format=format_field(backing_format))
    header_fields.update(fields)
    header = v2_header(**header_fields)
    addcow = directory / f"{stem}.add-cow"
    addcow.write_bytes(build_v2(header, names, bitmap))
    image = _sparse(directory / os.fsdecode(image_name), int(header.virtual_size))
    back = None
    if backing and backing_format == "raw":
        back = _sparse(directory / os.fsdecode(backing_name), int(header.virtual_size))
    return ImageSet(directory, addcow, image, back)


def build_v1(*, image_name: bytes = b"image.raw", backing_name: bytes = b"",
             bitmap: bytes = b"", **fields: Any) -> bytes:
    values: dict[str, Any] = {
        "magic": MAGIC, "version": VERSION_1,
        "backing_file": backing_name.ljust(V1_NAME_FIELD_LENGTH, b"\0"),
        "image_file": image_name.ljust(V1_NAME_FIELD_LENGTH, b"\0"),
        "reserved": bytes(500),
    }
    values.update(fields)
    return HeaderV1(values).build() + bitmap


def pristine_v1(directory: Path, *, image_size: int = VIRTUAL_SIZE, backing: bool = True,
                bitmap: bytes = HALF_BITMAP) -> ImageSet:
    """A conforming v1 set: 64 KiB clusters, virtual size = the image file's length."""
    directory.mkdir(parents=True, exist_ok=True)
    addcow = directory / "legacy.add-cow"
    backing_name = b"backing.raw" if backing else b""
    addcow.write_bytes(build_v1(backing_name=backing_name, bitmap=bitmap))
    assert len(bitmap) == bitmap_length_for(image_size - image_size % 512, 16)
    image = _sparse(directory / "image.raw", image_size)
    back = _sparse(directory / "backing.raw", image_size) if backing else None
    assert addcow.stat().st_size == HEADER_LENGTH_V1 + len(bitmap)
    return ImageSet(directory, addcow, image, back)


def _struct_for(path: Path) -> Struct:
    with open(path, "rb") as f:
        head = f.read(12)
    return HEADER_V1 if int.from_bytes(head[8:12], "big") == VERSION_1 else HEADER_V2


def encode_field(struct: Struct, name: str, value: int | bytes) -> bytes:
    """``value`` as the bytes of field ``name`` (integers big-endian at the field's width)."""
    info = field_info(struct, name)
    if isinstance(value, int):
        return value.to_bytes(info.size, "big")
    if len(value) != info.size:
        raise ValueError(f"{name} is {info.size} bytes; got {len(value)}")
    return value


def set_field(path: Path, name: str, value: int | bytes, struct: Struct | None = None) -> None:
    """Overwrite one header field of the file at ``path`` in place, by field name."""
    struct = struct if struct is not None else _struct_for(path)
    data = encode_field(struct, name, value)
    with open(path, "r+b") as f:
        f.seek(field_info(struct, name).offset)
        f.write(data)


def read_field(path: Path, name: str, struct: Struct | None = None) -> int | bytes:
    struct = struct if struct is not None else _struct_for(path)
    info = field_info(struct, name)
    with open(path, "rb") as f:
        f.seek(info.offset)
        raw = f.read(info.size)
    return int.from_bytes(raw, "big") if info.is_integer else raw


def patch_bytes(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


#: Field names of each header version, for tests that walk every field.
V2_FIELDS = [f.name for f in field_table(HEADER_V2)]
V1_FIELDS = [f.name for f in field_table(HEADER_V1)]
