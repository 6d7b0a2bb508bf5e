"""BMP-* rules: the bitmap's extent in the file and its padding bits."""

from __future__ import annotations

from addcow_conformance.checker.context import CheckContext, NotApplicableError
from addcow_conformance.checker.derive import of_rule, sized_v1_header, v2_violations
from addcow_conformance.checker.registry import check
from addcow_conformance.checker.scan import bitmap_geometry, bitmap_scan
from addcow_ref.format.validate import Violation, check_file_length

__all__: list[str] = []


@check("BMP-LENGTH")
def check_bmp_length(ctx: CheckContext) -> list[Violation]:
    ctx.v2()
    bitmap_geometry(ctx)
    return of_rule("BMP-LENGTH", v2_violations(ctx))


@check("BMP-TRAILING")
def check_bmp_trailing(ctx: CheckContext) -> list[Violation]:
    if ctx.version == 1:
        return of_rule("BMP-TRAILING", check_file_length(sized_v1_header(ctx), ctx.file_size))
    ctx.v2()
    bitmap_geometry(ctx)
    return of_rule("BMP-TRAILING", v2_violations(ctx))


@check("BMP-PADDING")
def check_bmp_padding(ctx: CheckContext) -> list[Violation]:
    scan = bitmap_scan(ctx)
    if scan.padding_set is None:
        raise NotApplicableError("the last bitmap byte is missing from the file")
    if not scan.padding_set:
        return []
    geo = scan.geometry
    at = geo.offset + geo.length - 1
    bits = [i for i in range(8) if scan.padding_set >> i & 1]
    return [Violation(
        "BMP-PADDING",
        f"bit(s) {', '.join(map(str, bits))} of the last bitmap byte stand for no cluster "
        f"(cluster_count {geo.cluster_count}) but are set",
        offset=at, length=1, field="bitmap", expected="0",
        actual=f"0x{scan.padding_set:02x}")]
