"""Mutant ``format-case-insensitive``: compares format names without regard to case, so an
image_format or backing_format of ``RAW`` is taken for ``raw`` (FMT-CASE: format names
compare byte for byte)."""

from __future__ import annotations

from pathlib import Path

from addcow_conformance.mutants.base import MetadataMutant, get_field, set_field, v2_header

__all__ = ["FormatCaseInsensitive"]

_FIELDS = ("image_format", "backing_format")


class FormatCaseInsensitive(MetadataMutant):
    name = "format-case-insensitive"
    breaks = "FMT-CASE"

    def rewrite(self, data: bytearray, original: Path) -> None:
        if v2_header(data) is None:
            return
        for name in _FIELDS:
            set_field(data, name, get_field(data, name).lower())

    def restore(self, data: bytearray, original: Path) -> None:
        with original.open("rb") as f:
            head = f.read(128)
        if v2_header(data) is not None:
            for name in _FIELDS:
                set_field(data, name, get_field(head, name))
