"""HDR-* rules: the fixed header's fields, each checked by the schema's own ``checks``."""

from __future__ import annotations

from addcow_conformance.checker.checks.common import field_violations, of_rule, register_v2_rules
from addcow_conformance.checker.context import CheckContext
from addcow_conformance.checker.engine import check
from addcow_ref.format.constants import HEADER_LENGTH_V1, HEADER_LENGTH_V2, VERSION_1
from addcow_ref.format.validate import Violation

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


register_v2_rules("HDR-LENGTH-MIN", "HDR-LENGTH-BOUND", "HDR-VIRTUAL-SIZE-ALIGN",
                  "HDR-VIRTUAL-SIZE-MAX", "HDR-BITMAP-OFFSET-ALIGN", "HDR-BITMAP-OFFSET-MIN",
                  "HDR-CLUSTER-BITS", "HDR-RESERVED")
