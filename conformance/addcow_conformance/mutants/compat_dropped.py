"""Mutant ``compatible-bits-dropped``: rewrites the header with only the compatible bits it
knows, so an unknown compatible bit set by a newer writer is lost on the first change
(FEAT-COMPAT-KEEP)."""

from __future__ import annotations

from pathlib import Path

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.mutants.base import get_field, set_field, v2_header
from addcow_ref.format.constants import KNOWN_COMPATIBLE_FEATURES

__all__ = ["CompatibleBitsDropped"]


class CompatibleBitsDropped(ReferenceAdapter):
    name = "compatible-bits-dropped"
    breaks = "FEAT-COMPAT-KEEP"

    def cmd_apply(self, path: str, ops_path: str) -> int:
        status = super().cmd_apply(path, ops_path)
        p = Path(path)
        with p.open("r+b") as f:
            head = bytearray(f.read(128))
            if v2_header(head) is None:
                return status
            word = int.from_bytes(get_field(head, "compatible_features"), "big")
            set_field(head, "compatible_features", word & KNOWN_COMPATIBLE_FEATURES)
            f.seek(0)
            f.write(head)
        return status
