"""Mutant ``header-extension-refused``: refuses a header_length above 128 instead of skipping
the fields it does not know (READ-HEADER-EXTENSION)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.mutants.base import v2_header
from addcow_ref.format.constants import HEADER_LENGTH_V2
from addcow_ref.format.errors import FormatError

__all__ = ["HeaderExtensionRefused"]


class HeaderExtensionRefused(ReferenceAdapter):
    name = "header-extension-refused"
    breaks = "READ-HEADER-EXTENSION"

    def open(self, path: str, mode: str = "r") -> Any:
        with Path(path).open("rb") as f:
            h = v2_header(f.read(HEADER_LENGTH_V2))
        if h is not None and int(h.header_length) > HEADER_LENGTH_V2:
            raise FormatError(
                f"header_length {int(h.header_length)} is not {HEADER_LENGTH_V2}",
                file=path, offset=12, field="header_length", rule_id="HDR-LENGTH-BOUND",
            )
        return super().open(path, mode)
