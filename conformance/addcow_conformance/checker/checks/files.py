"""IMG-* and BACK-* rules: the files the header names (skipped with ``--no-follow``).

Names resolve against the add-cow file's directory (READ-NAME-RELATIVE). Nothing here opens a
file before ``stat`` says it is a regular file, so a FIFO or a device named by a hostile header
cannot block the checker. An add-cow backing file is checked with this same engine, one level
deeper, carrying the identities of the files above it: that is how loops (including symlinks
back to an image of the chain, and an image naming itself) and over-deep chains are caught
without unbounded recursion.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Callable

from addcow_conformance.checker.checks.common import v2_violations
from addcow_conformance.checker.context import (
    MAX_NAME_READ,
    CheckContext,
    NotApplicableError,
    describe_mode,
    os_reason,
)
from addcow_conformance.checker.engine import check
from addcow_conformance.checker.findings import Report
from addcow_conformance.checker.scan import bitmap_scan
from addcow_ref.format.constants import (
    FORMAT_ADD_COW,
    FORMAT_RAW,
    MAX_CHAIN_DEPTH,
    MAX_VIRTUAL_SIZE,
    VERSION_1,
)
from addcow_ref.format.header import HeaderV1
from addcow_ref.format.layout import offset_of
from addcow_ref.format.schema import HEADER_V1, HEADER_V2
from addcow_ref.format.validate import Violation

__all__ = ["NamedFile", "backing_target", "image_target"]

#: Rules of a nested add-cow report that the parent reports under their own ID, not BACK-FORMAT.
_CHAIN_RULES = frozenset({"BACK-LOOP", "BACK-DEPTH"})


@dataclasses.dataclass(frozen=True)
class NamedFile:
    """A file named by the header, as ``stat`` (following symlinks) sees it."""

    which: str  # "image" or "backing"
    name: bytes
    path: bytes
    st: os.stat_result | None
    problem: str | None  # why it cannot be used, when st is None

    @property
    def shown(self) -> str:
        """The name for messages; a name longer than any path is cut short."""
        if len(self.name) > 200:
            return os.fsdecode(self.name[:200]) + f"...({len(self.name)} bytes)"
        return os.fsdecode(self.name)

    @property
    def is_regular(self) -> bool:
        return self.st is not None and stat.S_ISREG(self.st.st_mode)

    @property
    def is_file_or_device(self) -> bool:
        return self.st is not None and (stat.S_ISREG(self.st.st_mode)
                                        or stat.S_ISBLK(self.st.st_mode))

    @property
    def identity(self) -> tuple[int, int] | None:
        return None if self.st is None else (self.st.st_dev, self.st.st_ino)


def _resolve(ctx: CheckContext, which: str, name: bytes) -> NamedFile:
    path = os.path.join(ctx.directory, name)
    try:
        st = os.stat(path)
    except (OSError, ValueError) as e:  # ValueError: embedded NUL in a v1 name
        reason = os_reason(e) if isinstance(e, OSError) else str(e)
        return NamedFile(which, name, path, None, reason)
    return NamedFile(which, name, path, st, None)


def _v2_name(ctx: CheckContext, which: str) -> bytes:
    header = ctx.v2()
    field = f"{which}_name_offset"
    broken = [v.rule_id for v in v2_violations(ctx)
              if (v.rule_id in ("NAME-BOUNDS", "NAME-NO-NUL") and v.field == field)
              or (v.rule_id == "NAME-BACKING-PAIR" and which == "backing")]
    if broken:
        raise NotApplicableError(f"the {which} name is unusable ({', '.join(broken)})")
    offset = int(getattr(header, field))
    length = int(getattr(header, f"{which}_name_length"))
    # A name longer than MAX_NAME_READ is longer than any path: its first MAX_NAME_READ bytes
    # are enough for the OS to say so (ENAMETOOLONG), without reading up to 4 GiB.
    wanted = min(length, MAX_NAME_READ)
    name = ctx.read_at(offset, wanted)
    if len(name) < wanted:
        raise NotApplicableError(f"the {which} name runs past the end of the file")
    return name


def _v1_name(ctx: CheckContext, which: str) -> bytes:
    header = ctx.v1()
    field = "image_file" if which == "image" else "backing_file"
    broken = [v.rule_id for v in _v1_violations(ctx) if v.field == field
              and v.rule_id in ("V1-NAME-PADDING", "V1-IMAGE-NAME")]
    if broken:
        raise NotApplicableError(f"the {which} name is unusable ({', '.join(broken)})")
    return bytes(header.image_name if which == "image" else header.backing_name)


def _v1_violations(ctx: CheckContext) -> list[Violation]:
    from addcow_conformance.checker.checks.legacy import v1_violations

    return v1_violations(ctx)


def image_target(ctx: CheckContext) -> NamedFile:
    """The raw image file; NotApplicableError when its name cannot be read from the header."""
    def compute() -> NamedFile:
        if ctx.version == VERSION_1:
            name = _v1_name(ctx, "image")
        else:
            header = ctx.v2()
            if int(header.image_name_length) == 0:
                raise NotApplicableError("the header names no image file (NAME-IMAGE-REQUIRED)")
            name = _v2_name(ctx, "image")
        return _resolve(ctx, "image", name)
    return _memo_or_raise(ctx, "image_target", compute)


def backing_target(ctx: CheckContext) -> NamedFile:
    """The backing file; NotApplicableError when there is none or its name is unusable."""
    def compute() -> NamedFile:
        if ctx.version == VERSION_1:
            name = _v1_name(ctx, "backing")
            if not name:
                raise NotApplicableError("the image has no backing file")
        else:
            if not ctx.v2().has_backing:
                raise NotApplicableError("the image has no backing file")
            name = _v2_name(ctx, "backing")
        return _resolve(ctx, "backing", name)
    return _memo_or_raise(ctx, "backing_target", compute)


def _memo_or_raise(ctx: CheckContext, key: str, compute: Callable[[], NamedFile]) -> NamedFile:
    """Memoise a target, including the NotApplicableError it raised."""
    def wrapped() -> NamedFile | NotApplicableError:
        try:
            return compute()
        except NotApplicableError as e:
            return e
    got = ctx.memo(key, wrapped)
    if isinstance(got, NotApplicableError):
        raise got
    return got


def _name_field(ctx: CheckContext, which: str) -> tuple[str, int]:
    if isinstance(ctx.header, HeaderV1):
        name = "image_file" if which == "image" else "backing_file"
        return name, offset_of(HEADER_V1, name)
    name = f"{which}_name_offset"
    return name, offset_of(HEADER_V2, name)


def _file_size(target: NamedFile) -> int:
    assert target.st is not None
    if stat.S_ISBLK(target.st.st_mode):
        fd = os.open(target.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            return os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
    return target.st.st_size


@check("IMG-EXISTS")
def check_img_exists(ctx: CheckContext) -> list[Violation]:
    ctx.require_follow()
    target = image_target(ctx)
    field, offset = _name_field(ctx, "image")
    if target.st is None:
        message = f"image file {target.shown!r} cannot be found: {target.problem}"
    elif not target.is_file_or_device:
        message = (f"image file {target.shown!r} is a {describe_mode(target.st.st_mode)}, not a "
                   "regular file or block device")
    else:
        return []
    return [Violation("IMG-EXISTS", message, offset=offset, field=field,
                      expected="an existing regular file", actual=target.problem or "")]


@check("IMG-SIZE")
def check_img_size(ctx: CheckContext) -> list[Violation]:
    ctx.require_follow()
    header = ctx.v2() if ctx.version != VERSION_1 else None
    if header is None:
        raise NotApplicableError("version 1: the virtual size is the image file's length")
    virtual_size = int(header.virtual_size)
    if virtual_size > MAX_VIRTUAL_SIZE:
        raise NotApplicableError("virtual_size is out of range (HDR-VIRTUAL-SIZE-MAX)")
    target = image_target(ctx)
    if not target.is_file_or_device:
        raise NotApplicableError("the image file is unusable (IMG-EXISTS)")
    size = _file_size(target)
    if size >= virtual_size:
        return []
    return [Violation("IMG-SIZE",
                      f"image file {target.shown!r} is {size} bytes long, shorter than "
                      f"virtual_size {virtual_size}",
                      offset=offset_of(HEADER_V2, "virtual_size"), length=8, field="virtual_size",
                      expected=f">= {virtual_size} bytes", actual=f"{size} bytes")]


@check("BACK-EXISTS")
def check_back_exists(ctx: CheckContext) -> list[Violation]:
    ctx.require_follow()
    target = backing_target(ctx)
    if target.st is not None:
        return []
    scan = bitmap_scan(ctx)
    if scan.first_zero is None:
        return []  # every cluster is allocated: the backing file is never read
    field, offset = _name_field(ctx, "backing")
    return [Violation(
        "BACK-EXISTS",
        f"backing file {target.shown!r} cannot be found ({target.problem}) but {scan.zeros} "
        f"cluster(s) are read from it, the first is cluster {scan.first_zero}",
        offset=offset, field=field, expected="an existing file", actual=target.problem or "")]


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
    if target.st is None:
        raise NotApplicableError("the backing file is missing (BACK-EXISTS)")
    return target, fmt


def _nested(ctx: CheckContext, target: NamedFile) -> Report | None:
    """The report on an add-cow backing file, checked one level down; None when it closes a
    loop or would be too deep (the chain rules report those)."""
    if target.identity in _chain_ids(ctx) or not target.is_regular:
        return None
    if ctx.depth + 1 > MAX_CHAIN_DEPTH:
        return None

    def compute() -> Report:
        from addcow_conformance.checker.engine import check_path

        options = dataclasses.replace(ctx.options, progress=False)
        return check_path(os.fsdecode(target.path), options, chain=_chain_ids(ctx),
                          depth=ctx.depth + 1)
    report = ctx.memo("backing_report", compute)
    if report.internal_errors:
        raise RuntimeError(f"checking backing file {target.shown!r} failed: "
                           f"{report.internal_errors[0].message}")
    return report


@check("BACK-FORMAT")
def check_back_format(ctx: CheckContext) -> list[Violation]:
    target, fmt = _existing_backing(ctx)
    assert target.st is not None

    def bad(message: str, actual: str) -> list[Violation]:
        return [Violation("BACK-FORMAT", message, offset=offset_of(HEADER_V2, "backing_format"),
                          length=16, field="backing_format", expected=fmt, actual=actual)]
    if not target.is_file_or_device:
        kind = describe_mode(target.st.st_mode)
        return bad(f"backing file {target.shown!r} is a {kind}, not a {fmt} file", kind)
    if fmt == FORMAT_RAW:
        return []
    if not target.is_regular:
        return bad(f"backing file {target.shown!r} is a block device; add-cow backing files "
                   "are regular files", "block device")
    nested = _nested(ctx, target)
    if nested is None:
        raise NotApplicableError("the backing chain loops or is too deep (BACK-LOOP, BACK-DEPTH)")
    if nested.error is not None:
        return bad(f"backing file {target.shown!r}: {nested.error}", "unreadable")
    errors = [f for f in nested.findings if f.severity == "error" and f.rule not in _CHAIN_RULES]
    if not errors:
        return []
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
    nested = _nested(ctx, target)
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
    nested = _nested(ctx, target)
    if nested is not None and any(f.rule == "BACK-DEPTH" for f in nested.findings):
        return [Violation("BACK-DEPTH", f"the backing chain holds more than {MAX_CHAIN_DEPTH} "
                          "add-cow files below the image", offset=offset, field=field,
                          expected=f"<= {MAX_CHAIN_DEPTH}", actual=f"> {MAX_CHAIN_DEPTH}")]
    return []


