"""NAME-* and FMT-* rules: the name area and the two format fields (spec page "Names").

NAME-CONFINED looks at the bytes of each name only: an absolute name, or one whose ``..``
components climb above the add-cow file's directory, reaches files the image's owner did not
hand over with it. Nothing is resolved or opened to decide it.
"""

from __future__ import annotations

import dataclasses
import os

from addcow_conformance.checker.checks.common import register_v2_rules
from addcow_conformance.checker.context import CheckContext, NotApplicableError
from addcow_conformance.checker.derive import (
    backing_target,
    escapes_directory,
    header_name,
    image_target,
)
from addcow_conformance.checker.findings import Finding, finding_of
from addcow_conformance.checker.registry import check
from addcow_ref.format.fieldtable import HEADER_V1, HEADER_V2
from addcow_ref.format.header import HeaderV1
from addcow_ref.format.layout import offset_of
from addcow_ref.format.validate import Violation

__all__: list[str] = []

register_v2_rules(
    "NAME-IMAGE-REQUIRED", "NAME-BACKING-PAIR", "NAME-BOUNDS", "NAME-OVERLAP", "NAME-NO-NUL",
    "NAME-AREA-ZERO",
)


def _outside_confine(ctx: CheckContext, which: str) -> bool:
    """Whether ``--confine DIR`` refused the name (it resolves outside DIR after symlinks)."""
    if ctx.options.confine is None or not ctx.options.follow:
        return False
    try:
        target = image_target(ctx) if which == "image" else backing_target(ctx)
    except NotApplicableError:
        return False
    return target.outside


@check("NAME-CONFINED")
def check_name_confined(ctx: CheckContext) -> list[Violation | Finding]:
    out: list[Violation | Finding] = []
    v1 = isinstance(ctx.header, HeaderV1)
    for which in ("image", "backing"):
        try:
            name = header_name(ctx, which)
        except NotApplicableError:
            continue
        field = f"{which}_file" if v1 else f"{which}_name_offset"
        offset = offset_of(HEADER_V1 if v1 else HEADER_V2, field)
        if _outside_confine(ctx, which):
            # Under --confine the checker was asked to refuse such names and cannot vouch for
            # a file it did not open: an error, whatever the rule's own severity.
            shown = os.fsdecode(name[:200])
            found = finding_of(Violation(
                "NAME-CONFINED", f"the {which} name {shown!r} resolves outside --confine "
                f"{ctx.options.confine}; it was not opened", offset=offset, field=field,
                expected="a name resolving inside the --confine directory", actual=shown),
                ctx.path)
            out.append(dataclasses.replace(found, severity="error"))
            continue
        if not escapes_directory(name):
            continue
        how = ("is absolute" if name.startswith(b"/")
               else "climbs above the add-cow file's directory")
        shown = os.fsdecode(name[:200])
        out.append(Violation("NAME-CONFINED", f"the {which} name {shown!r} {how}",
                             offset=offset, field=field,
                             expected="a relative name inside the add-cow file's directory",
                             actual=shown))
    return out


register_v2_rules("FMT-PADDING", "FMT-IMAGE", "FMT-BACKING-PRESENCE", "FMT-BACKING-KNOWN")
