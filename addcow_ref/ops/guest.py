"""The guest disk of an image of any format, read as bytes: what ``convert`` imports and what
``compare`` compares.

An add-cow image is read by the library itself; a raw file directly; every other format (qcow2,
vmdk, an NBD URI, ...) is turned into a sparse raw file by ``qemu-img convert -O raw`` first, so
qemu's own code interprets it (:mod:`addcow_ref.ops.qemu` says why a subprocess). The temporary
file lives in the system temporary directory and holds only the guest's data (``qemu-img
convert`` leaves zero runs as holes); it is removed when the source is closed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Protocol

from addcow_ref.format.constants import FORMAT_ADD_COW, FORMAT_RAW, MAGIC
from addcow_ref.ops.qemu import format_args, is_uri, run_tool

__all__ = ["GuestSource", "RawFileSource", "open_guest", "source_format"]


class GuestSource(Protocol):
    """A guest disk readable by byte range."""

    name: str

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes:
        """Guest bytes ``[offset, offset + length)``; zeros past the end."""
        ...


class RawFileSource:
    """A raw file as a guest disk: its bytes, zeros past its end."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._size = os.fstat(self._f.fileno()).st_size

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._f.fileno(), length, offset) if offset < self._size else b""
        return data.ljust(length, b"\0")

    def close(self) -> None:
        self._f.close()


class _AddCowSource:
    """An add-cow image as a guest disk (through the library's copy-on-write reads)."""

    def __init__(self, name: str) -> None:
        from addcow_ref.engine.image import open_image

        self.name = name
        self._img = open_image(name)

    @property
    def size(self) -> int:
        return int(self._img.virtual_size)

    def read(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        data = self._img.read(offset, end - offset) if offset < end else b""
        return data.ljust(length, b"\0")

    def close(self) -> None:
        self._img.close()


def source_format(name: str, fmt: str | None) -> str | None:
    """The format to read ``name`` as: ``fmt`` when given; otherwise add-cow when a local file
    starts with the add-cow magic, else None (qemu-img decides, as it does for its users)."""
    if fmt:
        return fmt
    if is_uri(name) or not os.path.isfile(name):
        return None
    with open(name, "rb") as f:
        return FORMAT_ADD_COW if f.read(len(MAGIC)) == MAGIC else None


@contextlib.contextmanager
def open_guest(name: str, fmt: str | None) -> Iterator[GuestSource]:
    """The guest disk of ``name`` read as ``fmt`` (see :func:`source_format`), closed (and its
    temporary raw copy removed) on exit."""
    fmt = source_format(name, fmt)
    if fmt == FORMAT_ADD_COW:
        src = _AddCowSource(name)
        try:
            yield src
        finally:
            src.close()
        return
    if fmt == FORMAT_RAW and not is_uri(name):
        raw = RawFileSource(name, name)
        try:
            yield raw
        finally:
            raw.close()
        return
    tmpdir = tempfile.mkdtemp(prefix="addcow-guest-")
    try:
        tmp = os.path.join(tmpdir, "guest.raw")
        run_tool(["qemu-img", "convert", *format_args("-f", fmt), "-O", FORMAT_RAW, name, tmp],
                 file=name)
        raw = RawFileSource(name, tmp)
        try:
            yield raw
        finally:
            raw.close()
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
