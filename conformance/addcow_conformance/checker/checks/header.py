"""HDR-* rules: the fixed header's fields, each checked by the schema's own ``checks``."""

from __future__ import annotations

from addcow_conformance.checker.checks.common import register_v2_rules
from addcow_conformance.checker.context import CheckContext
from addcow_conformance.checker.derive import field_violations, of_rule
from addcow_conformance.checker.registry import check
from addcow_ref.format.constants import HEADER_LENGTH_V1, HEADER_LENGTH_V2, VERSION_1
from addcow_ref.format.fieldtable import HEADER_V2
from addcow_ref.format.layout import field_info
from addcow_ref.format.validate import Violation

#: header_length is a multiple of this (HDR-LENGTH-MULTIPLE), so appended fields stay aligned.
HEADER_LENGTH_ALIGNMENT = 8

__all__: list[str] = []


@check("HDR-COMPLETE", needs_header=False)
def check_hdr_complete(ctx: CheckContext) -> list[Violation]:
    need = HEADER_LENGTH_V1 if ctx.version == VERSION_1 else HEADER_LENGTH_V2
    if ctx.file_size >= need:
        return []
    what = "version 1 header" if need == HEADER_LENGTH_V1 else "fixed header"
    return [Violation("HDR-COMPLETE",
                      f"file is {ctx.file_size} bytes long, shorter than the {need}-byte {what}",
                      offset=ctx.file_size, expected=f">= {need} bytes",
                      actual=f"{ctx.file_size} bytes")]


@check("HDR-MAGIC")
def check_hdr_magic(ctx: CheckContext) -> list[Violation]:
    # The magic sits at offset 0 in every version, so it is checked even when the version is
    # unknown.
    return of_rule("HDR-MAGIC", field_violations(ctx))


@check("HDR-VERSION")
def check_hdr_version(ctx: CheckContext) -> list[Violation]:
    return of_rule("HDR-VERSION", field_violations(ctx))


register_v2_rules("HDR-LENGTH-MIN")


@check("HDR-LENGTH-MULTIPLE")
def check_hdr_length_multiple(ctx: CheckContext) -> list[Violation]:
    # Written out here rather than taken from the format layer: the checker must not miss a
    # rule because the reference's predicates do not decide it (yet).
    length = int(ctx.v2().header_length)
    if length % HEADER_LENGTH_ALIGNMENT == 0:
        return []
    info = field_info(HEADER_V2, "header_length")
    return [Violation("HDR-LENGTH-MULTIPLE",
                      f"header_length {length} is not a multiple of {HEADER_LENGTH_ALIGNMENT}",
                      offset=info.offset, length=info.size, field=info.name,
                      expected=f"a multiple of {HEADER_LENGTH_ALIGNMENT}", actual=str(length))]


register_v2_rules("HDR-LENGTH-BOUND", "HDR-VIRTUAL-SIZE-ALIGN",
                  "HDR-VIRTUAL-SIZE-MAX", "HDR-BITMAP-OFFSET-ALIGN", "HDR-BITMAP-OFFSET-MIN",
                  "HDR-CLUSTER-BITS", "HDR-RESERVED")
