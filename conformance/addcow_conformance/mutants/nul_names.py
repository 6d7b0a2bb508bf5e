"""Mutant ``names-nul-terminated``: reads stored names as C strings, stopping at the first NUL,
instead of refusing a name that contains one (NAME-NO-NUL)."""

from __future__ import annotations

from pathlib import Path

from addcow_conformance.mutants.base import MetadataMutant, get_field, set_field, v2_header

__all__ = ["NamesNulTerminated"]


class NamesNulTerminated(MetadataMutant):
    name = "names-nul-terminated"
    breaks = "NAME-NO-NUL"

    def rewrite(self, data: bytearray, original: Path) -> None:
        if v2_header(data) is None:
            return
        for which in ("image", "backing"):
            offset = int.from_bytes(get_field(data, f"{which}_name_offset"), "big")
            length = int.from_bytes(get_field(data, f"{which}_name_length"), "big")
            name = bytes(data[offset : offset + length])
            cut = name.find(b"\0")
            if length and cut >= 0:
                # What a C reader sees: the string up to the NUL, the rest is "padding".
                set_field(data, f"{which}_name_length", cut)
                data[offset + cut : offset + length] = bytes(length - cut)
