"""Mutant ``format-probing``: ignores the declared backing format and guesses it from the
backing file's first bytes (READ-NO-PROBE, the qcow2 probing vulnerability)."""

from __future__ import annotations

import os
from pathlib import Path

from addcow_conformance.mutants.base import MetadataMutant, get_field, set_field, v2_header
from addcow_ref.format.constants import FORMAT_ADD_COW, FORMAT_RAW, MAGIC

__all__ = ["FormatProbing"]


class FormatProbing(MetadataMutant):
    name = "format-probing"
    breaks = "READ-NO-PROBE"

    def rewrite(self, data: bytearray, original: Path) -> None:
        if v2_header(data) is None:
            return
        offset = int.from_bytes(get_field(data, "backing_name_offset"), "big")
        length = int.from_bytes(get_field(data, "backing_name_length"), "big")
        if not length:
            return
        backing = original.parent / os.fsdecode(bytes(data[offset : offset + length]))
        try:
            with backing.open("rb") as f:
                head = f.read(len(MAGIC))
        except (OSError, ValueError):  # missing, or a name no path can hold (NUL bytes)
            return
        guess = FORMAT_ADD_COW if head == MAGIC else FORMAT_RAW
        set_field(data, "backing_format", guess.encode("ascii"))

    def restore(self, data: bytearray, original: Path) -> None:
        with original.open("rb") as f:
            declared = get_field(f.read(128), "backing_format")
        if v2_header(data) is not None:
            set_field(data, "backing_format", declared)
