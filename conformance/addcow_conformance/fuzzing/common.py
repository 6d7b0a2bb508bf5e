"""What every fuzz target shares: the :class:`Target` record and the scratch directory with the
files a fuzzed add-cow file may name.

One scratch directory per process, one subdirectory per target, made once: creating files per
input would cost more than the code under test. Each target has its own subdirectory because the
reader resizes its image file for every input while the checker's stays fixed, and the test suite
runs all targets in one process.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "BACKING_NAME",
    "ENTRY_NAME",
    "IMAGE_NAME",
    "NEIGHBOUR_SIZE",
    "Target",
    "neighbour_names",
    "rewrite",
    "scratch",
]

#: The name the fuzzed add-cow file gets: the vectors' own entry name, so a vector whose header
#: names itself (a self-loop) still does when it seeds a run.
ENTRY_NAME = "image.add-cow"
#: The raw image file and raw backing file most vectors name.
IMAGE_NAME = "image.raw"
BACKING_NAME = "backing.raw"
#: The add-cow backing file (and its files) the chain vectors name, so a seed from them opens a
#: real two-level chain instead of failing at the missing middle file.
_MID_NAME, _MID_RAW, _BASE_RAW = "mid.add-cow", "mid.raw", "base.raw"
#: Size of every synthesized file (the reader resizes its own image file per input).
NEIGHBOUR_SIZE = 1 << 20


@dataclasses.dataclass(frozen=True)
class Target:
    """One fuzz target.

    ``one_input`` returns on every expected outcome and raises on a finding. ``warm_up``
    imports the code under test (under atheris's instrumentation of the packages that
    :data:`addcow_conformance.fuzzing.INSTRUMENT` names for it). ``max_len`` bounds an input:
    large enough for what the target parses, small enough to keep a run at thousands of inputs
    per second. ``write_seeds`` fills a corpus directory and returns how many files it wrote;
    ``dictionary`` returns the libFuzzer dictionary tokens.
    """

    name: str
    one_input: Callable[[bytes], None]
    max_len: int
    warm_up: Callable[[], None]
    write_seeds: Callable[[Path], int]
    dictionary: Callable[[], list[bytes]]


class _Scratch:
    root: Path | None = None
    made: dict[str, Path] = {}  # noqa: RUF012 -- process-wide cache, never reassigned


def neighbour_names() -> tuple[str, ...]:
    """Every file name a target's scratch directory holds besides the fuzzed file (the
    dictionary offers them, so mutated name fields can find real files)."""
    return (IMAGE_NAME, BACKING_NAME, _MID_NAME, _MID_RAW, _BASE_RAW)


def _pattern(size: int, byte: int) -> bytes:
    """Non-zero guest data, so a read that takes bytes from the wrong file is visible."""
    return bytes((byte + i) & 0xFF for i in range(256)) * (size // 256)


def _populate(directory: Path) -> None:
    from addcow_ref.format.forge import forge_v2, name_fields

    (directory / IMAGE_NAME).write_bytes(b"")
    with open(directory / IMAGE_NAME, "r+b") as f:
        f.truncate(NEIGHBOUR_SIZE)
    (directory / BACKING_NAME).write_bytes(_pattern(NEIGHBOUR_SIZE, 0x11))
    (directory / _BASE_RAW).write_bytes(_pattern(NEIGHBOUR_SIZE, 0x22))
    (directory / _MID_RAW).write_bytes(_pattern(NEIGHBOUR_SIZE, 0x33))
    mid, base = _MID_RAW.encode(), _BASE_RAW.encode()
    header = forge_v2(virtual_size=NEIGHBOUR_SIZE, cluster_bits=16, backing_format=b"raw",
                      **name_fields(mid, base))
    bitmap = b"\x0f\x00"  # clusters 0-3 in mid.raw, 4-15 read from base.raw
    data = (header.build() + mid + base).ljust(int(header.bitmap_offset), b"\0") + bitmap
    (directory / _MID_NAME).write_bytes(data)


def scratch(target: str) -> Path:
    """The scratch directory of ``target`` in this process, made and populated on first use."""
    path = _Scratch.made.get(target)
    if path is None:
        if _Scratch.root is None:
            _Scratch.root = Path(tempfile.mkdtemp(prefix="addcow-fuzz-"))
        path = _Scratch.root / target
        path.mkdir()
        _populate(path)
        _Scratch.made[target] = path
    return path


def rewrite(path: Path, data: bytes) -> None:
    """Make ``path`` hold exactly ``data``: written over the old bytes, then cut to length.

    Not ``open(path, "wb")``: on ext4 a truncate to zero followed by a write makes ``close``
    flush the data (``auto_da_alloc``), which cost 4 ms per input, a hundred times the write.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
