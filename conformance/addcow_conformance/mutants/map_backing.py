"""Mutant ``map-backing-as-allocated``: reports ranges served by the backing file as allocated,
confusing "has data" with "is in this image" (READ-UNALLOCATED-BACKING; the qemu-img map
``data``/``zero`` confusion)."""

from __future__ import annotations

from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.records import Extent

__all__ = ["MapBackingAsAllocated"]


class MapBackingAsAllocated(ReferenceAdapter):
    name = "map-backing-as-allocated"
    breaks = "READ-UNALLOCATED-BACKING"

    def extents(self, image: Any) -> list[Extent]:
        return [
            {
                "start": int(e.start),
                "length": int(e.length),
                "allocated": bool(e.allocated or getattr(e, "data", e.depth > 0)),
            }
            for e in image.map()
        ]
