"""Mutant ``padding-bits-ignored``: an implementation that validates the bitmap when it opens an
image (it declares ``bitmap-validation``) but masks the bits past the last cluster instead of
checking them, so a bitmap with padding bits set is accepted (BMP-PADDING)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.mutants.base import v2_header
from addcow_ref.format.constants import CompatibleFeature
from addcow_ref.format.errors import FormatError

__all__ = ["PaddingBitsIgnored"]


class PaddingBitsIgnored(ReferenceAdapter):
    name = "padding-bits-ignored"
    breaks = "BMP-PADDING"

    def capabilities(self) -> dict[str, Any]:
        caps = super().capabilities()
        caps["features"] = [*caps["features"], "bitmap-validation"]
        return caps

    def open(self, path: str, mode: str = "r") -> Any:
        data = Path(path).read_bytes()
        h = v2_header(data)
        if h is not None and int(h.compatible_features) & CompatibleFeature.ALL_ALLOCATED:
            lo = int(h.bitmap_offset)
            bitmap = int.from_bytes(data[lo : lo + h.bitmap_length], "little")
            # The mistake: only the cluster bits are looked at; the padding is masked away.
            used = bitmap & ((1 << h.cluster_count) - 1)
            if used != (1 << h.cluster_count) - 1:
                raise FormatError(
                    "all_allocated is set but a cluster bit is 0",
                    file=path, field="compatible_features", rule_id="FEAT-ALL-ALLOCATED",
                )
        return super().open(path, mode)
