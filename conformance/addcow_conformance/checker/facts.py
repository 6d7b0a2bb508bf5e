"""Facts about a checked image for the JSON report (what was read, not what was judged).

The keys (:class:`~addcow_conformance.checker.findings.Facts`) are the names of the
reference's info record, ``addcow_ref.ops.info.INFO_FIELDS``, plus ``file_size``; their order
is the report's published order, the header's fields first, then what the bitmap scan found.
"""

from __future__ import annotations

import os

from addcow_conformance.checker.context import CheckContext, NotApplicableError
from addcow_conformance.checker.derive import backing_target, image_target, sized_v1_header
from addcow_conformance.checker.findings import Facts
from addcow_conformance.checker.scan import bitmap_scan
from addcow_ref.format.header import HeaderV1, HeaderV2

__all__ = ["collect_facts"]


def _name(ctx: CheckContext, which: str) -> str | None:
    try:
        target = image_target(ctx) if which == "image" else backing_target(ctx)
    except NotApplicableError:
        return None
    return os.fsdecode(target.name)


def collect_facts(ctx: CheckContext) -> Facts:
    facts: Facts = {"version": ctx.version, "file_size": ctx.file_size}
    header = ctx.header
    if not ctx.layout_known or header is None:
        return facts
    if isinstance(header, HeaderV2):
        facts.update({
            "header_length": int(header.header_length),
            "virtual_size": int(header.virtual_size),
            "cluster_bits": int(header.cluster_bits),
            "bitmap_offset": int(header.bitmap_offset),
            "incompatible_features": int(header.incompatible_features),
            "compatible_features": int(header.compatible_features),
            "autoclear_features": int(header.autoclear_features),
            "image_format": header.image_format_name,
            "backing_format": header.backing_format_name or None,
        })
    elif isinstance(header, HeaderV1):
        facts.update({"header_length": int(header.header_length),
                      "cluster_bits": int(header.cluster_bits),
                      "bitmap_offset": int(header.bitmap_offset)})
    if ctx.geometry_valid():
        facts["cluster_size"] = 1 << int(header.cluster_bits)
    facts["image_file"] = _name(ctx, "image")
    facts["backing_file"] = _name(ctx, "backing")
    try:
        scan = bitmap_scan(ctx)
    except NotApplicableError:
        return facts
    if isinstance(header, HeaderV1):
        facts["virtual_size"] = _v1_size(ctx)
    facts.update({"cluster_count": scan.geometry.cluster_count,
                  "bitmap_length": scan.geometry.length,
                  "allocated_clusters": scan.ones if scan.complete else None})
    return facts


def _v1_size(ctx: CheckContext) -> int | None:
    try:
        return sized_v1_header(ctx).virtual_size
    except NotApplicableError:
        return None
