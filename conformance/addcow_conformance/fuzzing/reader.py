"""Fuzz target ``reader``: the reference library opens, maps and reads any add-cow file, or
refuses it with an :class:`~addcow_ref.format.errors.AddCowError` (a ``FormatError`` and the
other typed errors are expected outcomes); any other exception, or a hang, is a finding.

An input is a :data:`CONTROL_LENGTH`-byte control block followed by the add-cow file. The control
block steers what the file alone cannot: the size of the raw image file beside it and the ranges
to map and read. Reads and the mapped range are bounded (:data:`MAX_READ`, :data:`MAX_MAP_CLUSTERS`)
so a huge ``virtual_size`` costs no more than a small one; the image file is sparse, so making it
as large as the header asks costs nothing either.

Control block (all integers little-endian)::

    byte 0       image file size: 0 = the header's virtual_size, 1 = 512 bytes short of it,
                 2 = NEIGHBOUR_SIZE, 3 = empty (mod 4)
    byte 1       reserved
    bytes 2-13   three reads: u16 start (a fraction of the virtual size, /65536), u16 length
    bytes 14-15  u16 start of the mapped range (a fraction of the virtual size, /65536)
"""

from __future__ import annotations

import os
from pathlib import Path

from addcow_conformance.fuzzing.common import (
    ENTRY_NAME,
    IMAGE_NAME,
    NEIGHBOUR_SIZE,
    Target,
    neighbour_names,
    rewrite,
    scratch,
)
from addcow_conformance.fuzzing.dictionary import header_tokens
from addcow_conformance.fuzzing.seeds import addcow_seeds, write_seeds

__all__ = [
    "CONTROL_LENGTH",
    "MAX_IMAGE_SIZE",
    "MAX_LEN",
    "MAX_MAP_CLUSTERS",
    "MAX_READ",
    "TARGET",
    "one_input",
    "read_file",
    "with_control",
]

CONTROL_LENGTH = 16
#: The checker's bound plus the control block.
MAX_LEN = 16384 + CONTROL_LENGTH
#: Longest read; the control block's u16 length cannot ask for more.
MAX_READ = 0xFFFF
#: The mapped range covers at most this many clusters.
MAX_MAP_CLUSTERS = 1 << 16
#: The image file is never made larger (sparse; 1 TiB is far above any virtual size whose
#: bitmap fits in :data:`MAX_LEN` bytes: 131,072 clusters of 2 MiB are 256 GiB).
MAX_IMAGE_SIZE = 1 << 40

#: The control block of the seeds: image file as large as the disk, reads at 0, 1/3 and the end.
_SEED_CONTROL = bytes([0, 0]) + b"".join(
    s.to_bytes(2, "little") + n.to_bytes(2, "little")
    for s, n in ((0, 4096), (0x5555, 700), (0xFFFF, MAX_READ))
) + (0).to_bytes(2, "little")


def _declared_size(addcow: bytes) -> int:
    """The v2 header's ``virtual_size`` (decoded with the schema), else NEIGHBOUR_SIZE (a v1
    image takes its virtual size from the image file, and a short header has none)."""
    from addcow_ref.format.constants import VERSION_2
    from addcow_ref.format.layout import decode_field, field_info
    from addcow_ref.format.schema import HEADER_V2

    version, size = field_info(HEADER_V2, "version"), field_info(HEADER_V2, "virtual_size")
    if len(addcow) < size.end or decode_field(HEADER_V2, "version",
                                              addcow[version.offset:version.end]) != VERSION_2:
        return NEIGHBOUR_SIZE
    value = decode_field(HEADER_V2, "virtual_size", addcow[size.offset:size.end])
    assert isinstance(value, int)
    return value


def _image_size(mode: int, declared: int) -> int:
    size = (declared, declared - 512, NEIGHBOUR_SIZE, 0)[mode % 4]
    return max(0, min(size, MAX_IMAGE_SIZE))


def _u16(control: bytes, at: int) -> int:
    return int.from_bytes(control[at:at + 2], "little")


def read_file(path: Path, control: bytes) -> None:
    """Open ``path`` read-only and exercise every read-side call on ranges the control block
    picks. Raises whatever the library raises."""
    from addcow_ref.engine.image import open_image

    with open_image(path) as img:
        size = img.virtual_size
        for at in (2, 6, 10):
            start = (_u16(control, at) * size) >> 16
            length = min(_u16(control, at + 2), size - start)
            data = img.read(start, length)
            if len(data) != length:
                raise AssertionError(f"read({start}, {length}) returned {len(data)} bytes")
            if length:
                img.is_allocated(start, length)
        start = (_u16(control, 14) * size) >> 16
        length = min(size - start, MAX_MAP_CLUSTERS << img.cluster_bits)
        covered = sum(e.length for e in img.map(start, length))
        if covered != length:
            raise AssertionError(f"map({start}, {length}) covers {covered} bytes")
        img.allocated_clusters()


def one_input(data: bytes) -> None:
    from addcow_ref.format.errors import AddCowError

    control = data[:CONTROL_LENGTH].ljust(CONTROL_LENGTH, b"\0")
    addcow = data[CONTROL_LENGTH:]
    directory = scratch("reader")
    os.truncate(directory / IMAGE_NAME, _image_size(control[0], _declared_size(addcow)))
    path = directory / ENTRY_NAME
    rewrite(path, addcow)
    try:
        read_file(path, control)
    except AddCowError:
        return


def with_control(addcow: bytes, control: bytes = _SEED_CONTROL) -> bytes:
    """An input of this target: ``control`` (the seeds' by default) and the add-cow file."""
    return control.ljust(CONTROL_LENGTH, b"\0")[:CONTROL_LENGTH] + addcow


def _warm_up() -> None:
    import addcow_ref.engine.image  # noqa: F401 -- registers the add-cow backing opener


def _write_seeds(directory: Path) -> int:
    return write_seeds(directory, {k: with_control(v) for k, v in addcow_seeds().items()})


TARGET = Target(
    name="reader",
    one_input=one_input,
    max_len=MAX_LEN,
    warm_up=_warm_up,
    write_seeds=_write_seeds,
    dictionary=lambda: header_tokens(neighbour_names()),
)
