"""Mutant ``unknown-incompatible-accepted``: ignores incompatible feature bits it does not know
instead of refusing the image (FEAT-INCOMPAT-UNKNOWN)."""

from __future__ import annotations

from pathlib import Path

from addcow_conformance.mutants.base import MetadataMutant, get_field, set_field, v2_header
from addcow_ref.format.constants import KNOWN_INCOMPATIBLE_FEATURES

__all__ = ["UnknownIncompatibleAccepted"]


class UnknownIncompatibleAccepted(MetadataMutant):
    name = "unknown-incompatible-accepted"
    breaks = "FEAT-INCOMPAT-UNKNOWN"

    def rewrite(self, data: bytearray, original: Path) -> None:
        if v2_header(data) is None:
            return
        value = int.from_bytes(get_field(data, "incompatible_features"), "big")
        set_field(data, "incompatible_features", value & KNOWN_INCOMPATIBLE_FEATURES)
