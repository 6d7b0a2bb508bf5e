"""IMG-* and BACK-* rules: the files the header names (skipped with ``--no-follow``).

The files are resolved in ``derive`` (names relative to the add-cow file's directory as given,
symlinks not resolved first; nothing opened before ``stat`` says it is a regular file or a
block device, so a FIFO named by a hostile header never blocks the checker). An add-cow backing
file is checked by the engine that runs these checks, one level deeper, through
``CheckContext.check_backing_file``: it carries the identities of the files above it, which is
how loops (including symlinks back to an image of the chain, and an image naming itself) and
over-deep chains are caught without unbounded recursion. The report of that backing file lists
the identities of every file below it, which is how IMG-IDENTITY sees the whole chain.
"""

from __future__ import annotations

from addcow_conformance.checker.context import CheckContext, NotApplicableError, describe_mode
from addcow_conformance.checker.derive import (
    CHAIN_RULES,
    NamedFile,
    backing_target,
    file_size,
    files_below,
    image_target,
    nested_report,
    v2_violations,
)
from addcow_conformance.checker.registry import check
from addcow_ref.format.constants import (
    FORMAT_ADD_COW,
    FORMAT_RAW,
    MAX_CHAIN_DEPTH,
    MAX_VIRTUAL_SIZE,
    VERSION_1,
)
from addcow_ref.format.fieldtable import HEADER_V1, HEADER_V2
from addcow_ref.format.header import HeaderV1, HeaderV2
from addcow_ref.format.layout import offset_of
from addcow_ref.format.validate import Violation

__all__: list[str] = []


def _name_field(ctx: CheckContext, which: str) -> tuple[str, int]:
    if isinstance(ctx.header, HeaderV1):
        name = "image_file" if which == "image" else "backing_file"
        return name, offset_of(HEADER_V1, name)
    name = f"{which}_name_offset"
    return name, offset_of(HEADER_V2, name)


def _unusable(target: NamedFile, what: str) -> str | None:
    """Why a named file is missing or cannot be opened (IMG-EXISTS, BACK-EXISTS)."""
    if target.outside:
        raise NotApplicableError("the name resolves outside --confine and is not looked up "
                                 "(NAME-CONFINED)")
    if target.st is None:
        return f"{what} {target.shown!r} cannot be found: {target.problem}"
    if target.open_error is not None:
        return f"{what} {target.shown!r} cannot be opened: {target.open_error}"
    return None


@check("IMG-EXISTS")
def check_img_exists(ctx: CheckContext) -> list[Violation]:
    ctx.require_follow()
    target = image_target(ctx)
    message = _unusable(target, "image file")
    if message is None:
        return []
    field, offset = _name_field(ctx, "image")
    return [Violation("IMG-EXISTS", message, offset=offset, field=field,
                      expected="an existing file that can be opened",
                      actual=target.problem or target.open_error or "")]


def _wrong_type(target: NamedFile, what: str) -> str | None:
    """Why a file ``stat`` found is not a regular file or block device (IMG-FILE-TYPE)."""
    if target.st is None or target.is_file_or_device:
        return None
    return (f"{what} {target.shown!r} is a {describe_mode(target.st.st_mode)}, not a regular "
            "file or block device")


@check("IMG-FILE-TYPE")
def check_img_file_type(ctx: CheckContext) -> list[Violation]:
    ctx.require_follow()
    out = []
    found: list[tuple[NamedFile, str]] = [(image_target(ctx), "image file")]
    # A raw backing file holds guest data the same way; an add-cow backing file that is not a
    # regular file is BACK-FORMAT's finding.
    if _raw_backing(ctx):
        found.append((backing_target(ctx), "raw backing file"))
    for target, what in found:
        message = _wrong_type(target, what)
        if message is None:
            continue
        assert target.st is not None
        field, offset = _name_field(ctx, target.which)
        out.append(Violation("IMG-FILE-TYPE", message, offset=offset, field=field,
                             expected="a regular file or block device",
                             actual=describe_mode(target.st.st_mode)))
    return out


def _raw_backing(ctx: CheckContext) -> bool:
    """Whether the image has a backing file read as raw (any v1 backing file, a v2 one
    declared ``raw``)."""
    try:
        backing_target(ctx)
    except NotApplicableError:
        return False
    header = ctx.header
    return isinstance(header, HeaderV1) or (
        isinstance(header, HeaderV2) and header.backing_format_name == FORMAT_RAW)


def _identity_problem(ctx: CheckContext) -> str | None:
    """Why the image file is a file it must not be (IMG-IDENTITY), compared by (st_dev,
    st_ino), never by name: hard links and symlinks name the same file."""
    target = image_target(ctx)
    if target.identity is None:
        return None
    if target.identity == ctx.identity:
        return f"image file {target.shown!r} is the add-cow file itself"
    if target.identity in ctx.chain:
        return f"image file {target.shown!r} is an add-cow file above this one in the chain"
    if target.identity in files_below(ctx):
        return (f"image file {target.shown!r} is a file of the backing chain (a backing file "
                "or the image file of an add-cow backing file)")
    return None


@check("IMG-IDENTITY")
def check_img_identity(ctx: CheckContext) -> list[Violation]:
    ctx.require_follow()
    message = _identity_problem(ctx)
    if message is None:
        return []
    field, offset = _name_field(ctx, "image")
    return [Violation("IMG-IDENTITY", message, offset=offset, field=field,
                      expected="a file of its own", actual="shared with another file")]


def _image_length(ctx: CheckContext) -> tuple[NamedFile, int, int]:
    """The usable image file, its length and virtual_size, for IMG-SIZE and IMG-LENGTH."""
    ctx.require_follow()
    header = ctx.v2() if ctx.version != VERSION_1 else None
    if header is None:
        raise NotApplicableError("version 1: the virtual size is the image file's length")
    virtual_size = int(header.virtual_size)
    if virtual_size > MAX_VIRTUAL_SIZE:
        raise NotApplicableError("virtual_size is out of range (HDR-VIRTUAL-SIZE-MAX)")
    target = image_target(ctx)
    if not target.usable:
        raise NotApplicableError("the image file is unusable (IMG-EXISTS, IMG-FILE-TYPE)")
    if _identity_problem(ctx) is not None:
        raise NotApplicableError("the image file is another file of the image (IMG-IDENTITY)")
    return target, file_size(target), virtual_size


@check("IMG-SIZE")
def check_img_size(ctx: CheckContext) -> list[Violation]:
    target, size, virtual_size = _image_length(ctx)
    if size >= virtual_size:
        return []
    return [Violation("IMG-SIZE",
                      f"image file {target.shown!r} is {size} bytes long, shorter than "
                      f"virtual_size {virtual_size}",
                      offset=offset_of(HEADER_V2, "virtual_size"), length=8, field="virtual_size",
                      expected=f">= {virtual_size} bytes", actual=f"{size} bytes")]


@check("IMG-LENGTH")
def check_img_length(ctx: CheckContext) -> list[Violation]:
    target, size, virtual_size = _image_length(ctx)
    if size <= virtual_size or not target.is_regular:
        return []  # a block device is as long as it is
    return [Violation("IMG-LENGTH",
                      f"image file {target.shown!r} is {size} bytes long, {size - virtual_size} "
                      f"more than virtual_size {virtual_size}: the image file does not stand "
                      "alone as the disk",
                      offset=offset_of(HEADER_V2, "virtual_size"), length=8, field="virtual_size",
                      expected=f"{virtual_size} bytes", actual=f"{size} bytes")]


@check("BACK-EXISTS")
def check_back_exists(ctx: CheckContext) -> list[Violation]:
    # Whatever the bitmap holds: a reader opens the whole chain when it opens the image.
    ctx.require_follow()
    target = backing_target(ctx)
    message = _unusable(target, "backing file")
    if message is None:
        return []
    field, offset = _name_field(ctx, "backing")
    return [Violation("BACK-EXISTS", message, offset=offset, field=field,
                      expected="an existing file that can be opened",
                      actual=target.problem or target.open_error or "")]


def _declared_format(ctx: CheckContext) -> str:
    header = ctx.v2()
    if any(v.rule_id == "FMT-BACKING-PRESENCE" for v in v2_violations(ctx)):
        raise NotApplicableError("backing_format is inconsistent (FMT-BACKING-PRESENCE)")
    if any(v.rule_id == "FMT-PADDING" and v.field == "backing_format"
           for v in v2_violations(ctx)):
        raise NotApplicableError("backing_format is malformed (FMT-PADDING)")
    fmt = header.backing_format_name
    if fmt not in (FORMAT_RAW, FORMAT_ADD_COW):
        raise NotApplicableError(f"the checker does not know backing format {fmt!r} "
                                 "(FMT-BACKING-KNOWN)")
    return fmt


def _chain_ids(ctx: CheckContext) -> tuple[tuple[int, int], ...]:
    return (*ctx.chain, ctx.identity)


def _existing_backing(ctx: CheckContext) -> tuple[NamedFile, str]:
    """The backing file and its declared format, when both are known; NotApplicableError
    otherwise (that is BACK-EXISTS's or the FMT rules' finding)."""
    ctx.require_follow()
    if isinstance(ctx.header, HeaderV1):
        raise NotApplicableError("version 1 declares no backing format and the checker does "
                                 "not probe")
    target = backing_target(ctx)
    fmt = _declared_format(ctx)
    if not target.usable and (target.st is None or target.is_file_or_device):
        raise NotApplicableError("the backing file is missing or unreadable (BACK-EXISTS)")
    return target, fmt


@check("BACK-FORMAT")
def check_back_format(ctx: CheckContext) -> list[Violation]:
    target, fmt = _existing_backing(ctx)
    assert target.st is not None

    def bad(message: str, actual: str) -> list[Violation]:
        return [Violation("BACK-FORMAT", message, offset=offset_of(HEADER_V2, "backing_format"),
                          length=16, field="backing_format", expected=fmt, actual=actual)]
    if fmt == FORMAT_RAW:
        return []  # a raw file of the wrong type is IMG-FILE-TYPE's finding
    if not target.is_file_or_device:
        kind = describe_mode(target.st.st_mode)
        return bad(f"backing file {target.shown!r} is a {kind}, not a {fmt} file", kind)
    if not target.is_regular:
        return bad(f"backing file {target.shown!r} is a block device; add-cow backing files "
                   "are regular files", "block device")
    nested = nested_report(ctx, target)
    if nested is None:
        raise NotApplicableError("the backing chain loops or is too deep (BACK-LOOP, BACK-DEPTH)")
    if nested.error is not None:
        return bad(f"backing file {target.shown!r}: {nested.error}", "unreadable")
    errors = [f for f in nested.findings if f.severity == "error" and f.rule not in CHAIN_RULES]
    if not errors:
        return []
    if any(f.rule in ("HDR-MAGIC", "HDR-COMPLETE") for f in errors):
        # Never quote the bytes of a file found by name: it may be any file on the system.
        return bad(f"backing file {target.shown!r} does not start with the add-cow magic",
                   "not an add-cow file")
    rules = list(dict.fromkeys(f.rule for f in errors))
    more = f" and {len(errors) - 1} more error(s)" if len(errors) > 1 else ""
    return bad(f"backing file {target.shown!r} is not a valid add-cow image: "
               f"{errors[0].message} [{errors[0].rule}]{more}", ", ".join(rules))


@check("BACK-LOOP")
def check_back_loop(ctx: CheckContext) -> list[Violation]:
    target, fmt = _existing_backing(ctx)
    field, offset = _name_field(ctx, "backing")
    if target.identity == ctx.identity:
        return [Violation("BACK-LOOP", f"the image names itself as its backing file "
                          f"({target.shown!r}, as {fmt})", offset=offset, field=field)]
    if target.identity in ctx.chain:
        return [Violation("BACK-LOOP", f"backing file {target.shown!r} is an add-cow file that "
                          "already appears above it in the chain", offset=offset, field=field)]
    if fmt != FORMAT_ADD_COW:
        return []
    nested = nested_report(ctx, target)
    if nested is not None and any(f.rule == "BACK-LOOP" for f in nested.findings):
        return [Violation("BACK-LOOP", f"the backing chain below {target.shown!r} loops",
                          offset=offset, field=field)]
    return []


@check("BACK-DEPTH")
def check_back_depth(ctx: CheckContext) -> list[Violation]:
    target, fmt = _existing_backing(ctx)
    if fmt != FORMAT_ADD_COW:
        return []
    if target.identity in _chain_ids(ctx):
        raise NotApplicableError("the backing chain loops (BACK-LOOP)")
    field, offset = _name_field(ctx, "backing")
    if ctx.depth + 1 > MAX_CHAIN_DEPTH:
        return [Violation("BACK-DEPTH", f"the backing chain holds more than {MAX_CHAIN_DEPTH} "
                          "add-cow files below the image", offset=offset, field=field,
                          expected=f"<= {MAX_CHAIN_DEPTH}", actual=f"> {MAX_CHAIN_DEPTH}")]
    nested = nested_report(ctx, target)
    if nested is not None and any(f.rule == "BACK-DEPTH" for f in nested.findings):
        return [Violation("BACK-DEPTH", f"the backing chain holds more than {MAX_CHAIN_DEPTH} "
                          "add-cow files below the image", offset=offset, field=field,
                          expected=f"<= {MAX_CHAIN_DEPTH}", actual=f"> {MAX_CHAIN_DEPTH}")]
    return []


