"""V1-* rules: the 2012 layout (2560-byte header, 64 KiB clusters, virtual size taken from the
image file's length, so the bitmap length is only decidable when the image file is opened)."""

from __future__ import annotations

from addcow_conformance.checker.checks.common import of_rule
from addcow_conformance.checker.context import CheckContext, NotApplicableError
from addcow_conformance.checker.engine import check
from addcow_ref.format.header import HeaderV1
from addcow_ref.format.validate import Violation, check_file_length, check_v1

__all__ = ["sized_v1_header", "v1_violations"]


def v1_violations(ctx: CheckContext) -> list[Violation]:
    header = ctx.v1()
    return ctx.memo("v1", lambda: check_v1(header))


def sized_v1_header(ctx: CheckContext) -> HeaderV1:
    """The v1 header with its virtual size, which only the image file's length gives."""
    from addcow_conformance.checker.checks.files import _file_size, image_target

    header = ctx.v1()
    if not ctx.options.follow:
        raise NotApplicableError("--no-follow: a version 1 virtual size is the image file's "
                                 "length, which is not opened")
    target = image_target(ctx)
    if not target.is_file_or_device:
        raise NotApplicableError("version 1 virtual size is unknown: the image file is "
                                 "unusable (IMG-EXISTS)")
    return header.with_image_length(_file_size(target))


def _register(rule_id: str) -> None:
    def run(ctx: CheckContext) -> list[Violation]:
        return of_rule(rule_id, v1_violations(ctx))

    run.__name__ = "check_" + rule_id.lower().replace("-", "_")
    run.__doc__ = f"Rule {rule_id}, as ``addcow_ref.format.validate.check_v1`` decides it."
    check(rule_id)(run)


for _rule in ("V1-NAME-PADDING", "V1-IMAGE-NAME", "V1-RESERVED"):
    _register(_rule)


@check("V1-BITMAP-LENGTH")
def check_v1_bitmap_length(ctx: CheckContext) -> list[Violation]:
    return of_rule("V1-BITMAP-LENGTH", check_file_length(sized_v1_header(ctx), ctx.file_size))
