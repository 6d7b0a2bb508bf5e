"""FEAT-* rules: unknown feature bits and the ``all_allocated`` promise.

FEAT-AUTOCLEAR-UNKNOWN binds writers, but the spec asks a checker to warn about an unknown
autoclear bit (a file that still carries one was last written by a writer that knew it, or by
one that broke the rule), so it is checked here too.
"""

from __future__ import annotations

from addcow_conformance.checker.checks.common import register_v2_rules
from addcow_conformance.checker.context import CheckContext
from addcow_conformance.checker.registry import check
from addcow_conformance.checker.scan import bitmap_scan
from addcow_ref.format.constants import CompatibleFeature
from addcow_ref.format.fieldtable import HEADER_V2
from addcow_ref.format.layout import offset_of
from addcow_ref.format.validate import Violation

__all__: list[str] = []

register_v2_rules("FEAT-INCOMPAT-UNKNOWN", "FEAT-COMPAT-UNKNOWN", "FEAT-AUTOCLEAR-UNKNOWN")


@check("FEAT-ALL-ALLOCATED")
def check_feat_all_allocated(ctx: CheckContext) -> list[Violation]:
    header = ctx.v2()
    if not int(header.compatible_features) & CompatibleFeature.ALL_ALLOCATED:
        return []
    scan = bitmap_scan(ctx)
    if scan.first_zero is None:
        return []
    first = scan.first_zero
    return [Violation(
        "FEAT-ALL-ALLOCATED",
        f"all_allocated is set but {scan.zeros} of {scan.clusters_seen} cluster bit(s) are 0, "
        f"the first for cluster {first} (bitmap byte 0x{scan.geometry.offset + first // 8:x})",
        offset=offset_of(HEADER_V2, "compatible_features"), length=8,
        field="compatible_features", expected="every cluster bit 1",
        actual=f"{scan.zeros} zero bit(s)")]
