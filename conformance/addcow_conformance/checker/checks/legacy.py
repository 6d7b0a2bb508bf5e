"""V1-* rules: the 2012 layout (2560-byte header, 64 KiB clusters, virtual size taken from the
image file's length, so the bitmap length is only decidable when the image file is opened)."""

from __future__ import annotations

from addcow_conformance.checker.checks.common import register_v1_rules
from addcow_conformance.checker.context import CheckContext
from addcow_conformance.checker.derive import of_rule, sized_v1_header
from addcow_conformance.checker.registry import check
from addcow_ref.format.validate import Violation, check_file_length

__all__: list[str] = []

register_v1_rules("V1-NAME-PADDING", "V1-IMAGE-NAME", "V1-RESERVED")


@check("V1-BITMAP-LENGTH")
def check_v1_bitmap_length(ctx: CheckContext) -> list[Violation]:
    return of_rule("V1-BITMAP-LENGTH", check_file_length(sized_v1_header(ctx), ctx.file_size))
