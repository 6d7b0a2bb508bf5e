"""Typed errors of the reference implementation (spec: every rule ID).

Every error names what is wrong and where: the file, the byte offset, the header field and, when
a spec rule is broken, its rule ID. Library exceptions (``construct.ConstructError``, ``OSError``)
are translated at the boundary and never cross the public API.
"""

from __future__ import annotations

import os

__all__ = [
    "AddCowError",
    "BackingFileError",
    "FieldError",
    "FormatError",
    "ImageFileError",
    "ReadOnlyError",
    "TruncatedError",
    "UnsupportedFeatureError",
]


class AddCowError(Exception):
    """Base class: an add-cow image or request that cannot be served as asked."""

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike[str] | None = None,
        offset: int | None = None,
        field: str | None = None,
        rule_id: str | None = None,
    ) -> None:
        self.message = message
        self.file = os.fspath(file) if file is not None else None
        self.offset = offset
        self.field = field
        self.rule_id = rule_id
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.file or "<image>"
        if self.offset is not None:
            where += f": byte 0x{self.offset:x}"
        if self.field:
            where += f" ({self.field})"
        text = f"{where}: {self.message}"
        if self.rule_id:
            text += f" [{self.rule_id}]"
        return text


class FormatError(AddCowError):
    """The bytes of an add-cow file break a rule of the spec."""


class TruncatedError(FormatError):
    """The file ends before a structure it must contain."""


class UnsupportedFeatureError(FormatError):
    """The image needs a feature this implementation does not know (incompatible bit, format)."""


class BackingFileError(AddCowError):
    """The backing file is missing, of the wrong format, or forms a loop or too deep a chain."""


class ImageFileError(AddCowError):
    """The raw image file named by the header is missing, not a regular file, or too short."""


class ReadOnlyError(AddCowError):
    """A write was asked of an image opened read-only (v1 images are always read-only)."""


class FieldError(AddCowError, ValueError):
    """A header field named or set by hand that the schema does not have or cannot hold (the
    forging API and ``addcow set-field``): the message names the field."""
