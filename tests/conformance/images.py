"""Build valid add-cow image sets in a directory and break them one field at a time.

Headers are forged from the schema's defaults (``addcow_ref.format.forge``) and field mutations
address fields by NAME through ``addcow_ref.format.layout``, so no offset or width is written down
here: the tests stay right when the schema changes. The vector generator may reuse these helpers.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from construct import Struct

from addcow_ref.format import forge, layout
from addcow_ref.format.constants import HEADER_LENGTH_V1, HEADER_LENGTH_V2
from addcow_ref.format.forge import forge_v1, forge_v2
from addcow_ref.format.header import HeaderV2, bitmap_length_for
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
    """A valid header for the default layout (the schema's defaults with this module's size and
    cluster size); any field can be overridden by name."""
    return forge_v2(**{"virtual_size": VIRTUAL_SIZE, "cluster_bits": CLUSTER_BITS, **fields})


def build_v2(header: HeaderV2, names: dict[int, bytes], bitmap: bytes | None = None,
             trailing: bytes = b"") -> bytes:
    """The bytes of an add-cow file: header, name area (``names``: offset -> bytes), bitmap."""
    bitmap_offset = header.bitmap_offset
    area = bytearray(header.build().ljust(bitmap_offset, b"\0"))
    for offset, name in names.items():
        area[offset:offset + len(name)] = name
    if bitmap is None:
        bitmap = bytes(header.bitmap_length)
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
    image = _sparse(directory / os.fsdecode(image_name), header.virtual_size)
    back = None
    if backing and backing_format == "raw":
        back = _sparse(directory / os.fsdecode(backing_name), header.virtual_size)
    return ImageSet(directory, addcow, image, back)


def build_v1(*, image_name: bytes = b"image.raw", backing_name: bytes = b"",
             bitmap: bytes = b"", **fields: Any) -> bytes:
    header = forge_v1(**{"backing_file": backing_name, "image_file": image_name, **fields})
    return header.build() + bitmap


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


def encode_field(struct: Struct, name: str, value: int | bytes) -> bytes:
    """``value`` as the bytes of field ``name`` (integers big-endian at the field's width)."""
    return layout.encode_field(struct, name, value)


def set_field(path: Path, name: str, value: int | bytes, struct: Struct | None = None) -> None:
    """Overwrite one header field of the file at ``path`` in place, by field name."""
    forge.set_field(path, name, value, struct=struct)


def read_field(path: Path, name: str, struct: Struct | None = None) -> int | bytes:
    with open(path, "rb") as f:
        head = f.read(HEADER_LENGTH_V1)
    struct = struct if struct is not None else forge.detect_struct(head)
    info = field_info(struct, name)
    return layout.decode_field(struct, name, head[info.offset:info.end])


def patch_bytes(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


#: Field names of each header version, for tests that walk every field.
V2_FIELDS = [f.name for f in field_table(HEADER_V2)]
V1_FIELDS = [f.name for f in field_table(HEADER_V1)]
