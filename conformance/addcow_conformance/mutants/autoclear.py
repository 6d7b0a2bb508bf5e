"""Mutant ``autoclear-not-cleared``: modifies an image without clearing the autoclear bits it does
not know, so a feature's metadata that it did not update still claims to be valid
(FEAT-AUTOCLEAR-UNKNOWN)."""

from __future__ import annotations

from pathlib import Path

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.mutants.base import get_field, set_field, v2_header

__all__ = ["AutoclearNotCleared"]


class AutoclearNotCleared(ReferenceAdapter):
    name = "autoclear-not-cleared"
    breaks = "FEAT-AUTOCLEAR-UNKNOWN"

    def cmd_apply(self, path: str, ops_path: str) -> int:
        p = Path(path)
        with p.open("rb") as f:
            before = f.read(128)
        status = super().cmd_apply(path, ops_path)
        if v2_header(before) is not None:
            with p.open("r+b") as f:
                head = bytearray(f.read(128))
                set_field(head, "autoclear_features", get_field(before, "autoclear_features"))
                f.seek(0)
                f.write(head)
        return status
