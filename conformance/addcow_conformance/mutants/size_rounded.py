"""Mutant ``virtual-size-rounded-up``: derives the disk size from the cluster count, so a disk
whose last cluster is partial claims a whole last cluster (HDR-VIRTUAL-SIZE-ALIGN: the size is a
multiple of 512, not of the cluster size)."""

from __future__ import annotations

from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter

__all__ = ["VirtualSizeRoundedUp"]


class VirtualSizeRoundedUp(ReferenceAdapter):
    name = "virtual-size-rounded-up"
    breaks = "HDR-VIRTUAL-SIZE-ALIGN"

    def info(self, image: Any) -> dict[str, Any]:
        d = super().info(image)
        size = int(d["virtual_size"])
        cluster = 1 << int(d["cluster_bits"])
        d["virtual_size"] = -(-size // cluster) * cluster
        return d
