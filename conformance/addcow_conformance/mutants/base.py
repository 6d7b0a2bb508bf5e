"""Machinery shared by the mutants: a rewritten copy of the add-cow file, header field access.

Most reader mistakes are "the implementation sees different bytes than the file holds": a
reversed bit order, ignored padding bits, a name cut at a NUL. ``MetadataMutant`` reproduces
such a mistake without touching the reference library: it writes a rewritten copy of the
add-cow file beside the original (names still resolve against the same directory), lets the
reference open the copy, and for ``apply`` copies the result back, undoing the rewrite.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_ref.format.constants import HEADER_LENGTH_V2, VERSION_2
from addcow_ref.format.header import HeaderV2, parse_header, read_version
from addcow_ref.format.layout import field_table
from addcow_ref.format.schema import HEADER_V2

__all__ = ["MetadataMutant", "get_field", "set_field", "v2_header"]

_FIELDS = {f.name: f for f in field_table(HEADER_V2)}


def v2_header(data: bytes | bytearray) -> HeaderV2 | None:
    """The v2 header of ``data``, or None for v1 files and anything unparseable."""
    try:
        if read_version(bytes(data[:16])) != VERSION_2 or len(data) < HEADER_LENGTH_V2:
            return None
        return parse_header(bytes(data[:HEADER_LENGTH_V2]))
    except Exception:
        return None


def get_field(data: bytes | bytearray, name: str) -> bytes:
    f = _FIELDS[name]
    return bytes(data[f.offset : f.offset + f.size])


def set_field(data: bytearray, name: str, value: int | bytes) -> None:
    """Overwrite a header field by name (integers big-endian, as the whole format)."""
    f = _FIELDS[name]
    raw = value.to_bytes(f.size, "big") if isinstance(value, int) else value.ljust(f.size, b"\0")
    data[f.offset : f.offset + f.size] = raw[: f.size]


class _CopyBack:
    """An open image of the rewritten copy; on exit, writes a modified copy back and cleans up."""

    def __init__(self, image: Any, copy: Path, original: Path, mutant: MetadataMutant,
                 writable: bool) -> None:
        self._image = image
        self._copy = copy
        self._original = original
        self._mutant = mutant
        self._writable = writable

    def __getattr__(self, name: str) -> Any:
        return getattr(self._image, name)

    def __enter__(self) -> _CopyBack:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._image.close()
            if self._writable:
                data = bytearray(self._copy.read_bytes())
                self._mutant.restore(data, self._original)
                with self._original.open("r+b") as f:
                    f.write(data)
                    f.truncate()
        finally:
            with contextlib.suppress(OSError):
                self._copy.unlink()


class MetadataMutant(ReferenceAdapter):
    """A reference adapter that opens a rewritten copy of the add-cow file."""

    def rewrite(self, data: bytearray, original: Path) -> None:
        """Change the bytes the (mistaken) implementation sees."""

    def restore(self, data: bytearray, original: Path) -> None:
        """Undo ``rewrite`` before an ``apply`` result is written back (default: keep as is)."""

    def copy_directory(self, original: Path) -> Path:
        """Where the copy goes: beside the original, so names resolve the same way."""
        return original.parent

    def open(self, path: str, mode: str = "r") -> Any:
        original = Path(path).absolute()
        data = bytearray(original.read_bytes())
        self.rewrite(data, original)
        fd, name = tempfile.mkstemp(
            prefix=".mutant-", suffix=".add-cow", dir=self.copy_directory(original)
        )
        copy = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            image = super().open(str(copy), mode)
        except BaseException:
            copy.unlink()
            raise
        return _CopyBack(image, copy, original, self, writable=mode != "r")
