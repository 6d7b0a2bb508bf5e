"""Facts derived from an image that several checks (and the report's facts) share.

Each is computed once per image and memoised in the context: one pass of the reference's
predicates decides many rules (``validate.check_names`` reports five name rules at once), the
files the header names are resolved once for the IMG, BACK and V1 rules and the report's facts,
and a version 1 virtual size (the image file's length) is needed by the V1 and BMP rules and by
the bitmap scan. Living here, below the check modules, these facts never make one check module
import another.

``validate.check_names`` reads the name area that is in the file in 1 MiB chunks, and skips the
holes of a sparse file (``context.next_data``), as the bitmap scan does: memory stays flat, and a
multi-terabyte name area that is mostly hole costs a few ``lseek`` calls.

Names resolve against the add-cow file's directory (READ-NAME-RELATIVE). Nothing here opens a
file before ``stat`` says it is a regular file or a block device, so a FIFO or a device named by
a hostile header cannot block the checker.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import stat
from collections.abc import Callable

from addcow_conformance.checker.context import (
    MAX_NAME_READ,
    CheckContext,
    FileIdentity,
    NotApplicableError,
    next_data,
    os_reason,
)
from addcow_conformance.checker.findings import Report
from addcow_ref.engine.backing import is_confined
from addcow_ref.format.constants import (
    FORMAT_ADD_COW,
    HEADER_LENGTH_V2,
    MAX_CHAIN_DEPTH,
    VERSION_1,
)
from addcow_ref.format.header import HeaderV1, HeaderV2
from addcow_ref.format.validate import (
    Violation,
    check_fields,
    check_names,
    check_v1,
    header_violations,
)

__all__ = [
    "CHAIN_RULES",
    "NAME_AREA_RULES",
    "NamedFile",
    "backing_target",
    "escapes_directory",
    "field_violations",
    "file_size",
    "files_below",
    "header_name",
    "image_target",
    "involved_files",
    "nested_report",
    "of_rule",
    "sized_v1_header",
    "v1_violations",
    "v2_violations",
]

#: The rules ``validate.check_names`` decides.
NAME_AREA_RULES = frozenset(
    {"NAME-BACKING-PAIR", "NAME-BOUNDS", "NAME-OVERLAP", "NAME-NO-NUL", "NAME-AREA-ZERO"})


def of_rule(rule_id: str, violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.rule_id == rule_id]


# -- the reference's predicates, one pass each -------------------------------------------------

def field_violations(ctx: CheckContext) -> list[Violation]:
    """Single-field ``checks`` of the schema, for whichever header the file has."""
    header = ctx.header
    if header is None:
        return []
    return ctx.memo("fields", lambda: check_fields(header))


def _v2(ctx: CheckContext) -> list[Violation]:
    header = ctx.v2()
    skip_holes = functools.partial(next_data, ctx.fd, end=ctx.file_size)
    out = header_violations(header, ctx.read_at, ctx.file_size, skip_holes)
    if int(header.header_length) < HEADER_LENGTH_V2:
        # The fixed header is never part of the name area, whatever header_length claims:
        # scanning it for stray bytes would report every header field again (HDR-LENGTH-MIN
        # already says what is wrong).
        fixed = header.replace(header_length=HEADER_LENGTH_V2)
        out = [v for v in out if v.rule_id not in NAME_AREA_RULES]
        out += check_names(fixed, ctx.read_at, ctx.file_size, skip_holes)
    return out


def v2_violations(ctx: CheckContext) -> list[Violation]:
    """Every header-level violation of a v2 file (``validate.header_violations``)."""
    ctx.v2()
    return ctx.memo("v2", lambda: _v2(ctx))


def v1_violations(ctx: CheckContext) -> list[Violation]:
    """Every header-level violation of a v1 file (``validate.check_v1``)."""
    header = ctx.v1()
    return ctx.memo("v1", lambda: check_v1(header))


# -- the files the header names ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NamedFile:
    """A file named by the header, as ``stat`` (following symlinks) sees it."""

    which: str  # "image" or "backing"
    name: bytes
    path: bytes
    st: os.stat_result | None
    problem: str | None  # why it cannot be used, when st is None
    #: Why a regular file or block device that ``stat`` found cannot be opened (EACCES, ...).
    open_error: str | None = None
    #: The name resolves outside ``--confine DIR``: nothing was looked up (NAME-CONFINED).
    outside: bool = False

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

    @property
    def usable(self) -> bool:
        """A regular file or block device that could be opened for reading."""
        return self.is_file_or_device and self.open_error is None


def _open_error(path: bytes) -> str | None:
    """Why a file ``stat`` called regular or a block device cannot be opened for reading
    (EACCES: an unreadable file is as unusable as a missing one). Only ever called after
    ``stat``, so no FIFO is opened; non-blocking all the same."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        return os_reason(e)
    os.close(fd)
    return None


def _resolve(ctx: CheckContext, which: str, name: bytes) -> NamedFile:
    path = os.path.join(ctx.directory, name)
    root = ctx.options.confine
    if root is not None and not is_confined(os.fsdecode(path), root):
        # Checked before any stat: whether such a file exists is none of the image's business.
        return NamedFile(which, name, path, None, f"outside --confine {root}; not opened",
                         outside=True)
    try:
        st = os.stat(path)
    except (OSError, ValueError) as e:  # ValueError: embedded NUL in a v1 name
        reason = os_reason(e) if isinstance(e, OSError) else str(e)
        return NamedFile(which, name, path, None, reason)
    found = NamedFile(which, name, path, st, None)
    if found.is_file_or_device:
        return dataclasses.replace(found, open_error=_open_error(path))
    return found


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
    broken = [v.rule_id for v in v1_violations(ctx) if v.field == field
              and v.rule_id in ("V1-NAME-PADDING", "V1-IMAGE-NAME")]
    if broken:
        raise NotApplicableError(f"the {which} name is unusable ({', '.join(broken)})")
    return bytes(header.image_name if which == "image" else header.backing_name)


def header_name(ctx: CheckContext, which: str) -> bytes:
    """The bytes of the image (``which="image"``) or backing name as the header stores them
    (at most ``MAX_NAME_READ`` of them); NotApplicableError when there is none or it is
    unusable. Nothing is resolved or opened."""
    if ctx.version == VERSION_1:
        name = _v1_name(ctx, which)
        if not name:
            raise NotApplicableError(f"the image has no {which} file")
        return name
    header = ctx.v2()
    present = (int(header.image_name_length) != 0 if which == "image" else header.has_backing)
    if not present:
        raise NotApplicableError(f"the header names no {which} file")
    return _v2_name(ctx, which)


def escapes_directory(name: bytes) -> bool:
    """Whether a name is absolute or its ``..`` components climb above the directory it is
    resolved against (``.`` and empty components are neutral); bytes only, nothing opened."""
    if name.startswith(b"/"):
        return True
    depth = 0
    for part in name.split(b"/"):
        if part in (b"", b"."):
            continue
        depth = depth - 1 if part == b".." else depth + 1
        if depth < 0:
            return True
    return False


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


def file_size(target: NamedFile) -> int:
    """The length of a named regular file or block device (a device's ``st_size`` is 0, so it
    is asked with ``lseek``, opened non-blocking)."""
    assert target.st is not None
    if stat.S_ISBLK(target.st.st_mode):
        fd = os.open(target.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            return os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
    return target.st.st_size


def sized_v1_header(ctx: CheckContext) -> HeaderV1:
    """The v1 header with its virtual size, which only the image file's length gives."""
    header = ctx.v1()
    if not ctx.options.follow:
        raise NotApplicableError("--no-follow: a version 1 virtual size is the image file's "
                                 "length, which is not opened")
    target = image_target(ctx)
    if not target.usable:
        raise NotApplicableError("version 1 virtual size is unknown: the image file is "
                                 "unusable (IMG-EXISTS, IMG-FILE-TYPE)")
    return header.with_image_length(file_size(target))


#: Rules of a nested add-cow report that the parent reports under their own ID, not BACK-FORMAT.
CHAIN_RULES = frozenset({"BACK-LOOP", "BACK-DEPTH"})


def nested_report(ctx: CheckContext, target: NamedFile) -> Report | None:
    """The report on an add-cow backing file, checked one level down; None when it closes a
    loop or would be too deep (the chain rules report those)."""
    if target.identity in (*ctx.chain, ctx.identity) or not target.is_regular:
        return None
    if ctx.depth + 1 > MAX_CHAIN_DEPTH:
        return None
    report = ctx.memo("backing_report",
                      lambda: ctx.check_backing_file(os.fsdecode(target.path)))
    if report.internal_errors:
        raise RuntimeError(f"checking backing file {target.shown!r} failed: "
                           f"{report.internal_errors[0].message}")
    return report


def _declares_add_cow(ctx: CheckContext) -> bool:
    header = ctx.header
    return isinstance(header, HeaderV2) and header.backing_format_name == FORMAT_ADD_COW


def files_below(ctx: CheckContext) -> frozenset[FileIdentity]:
    """Identities of every file of the backing chain below this image: each backing file and
    the image file of each add-cow backing file (rule IMG-IDENTITY compares against them)."""
    def compute() -> frozenset[FileIdentity]:
        if not ctx.options.follow:
            return frozenset()
        try:
            target = backing_target(ctx)
        except NotApplicableError:
            return frozenset()
        if target.identity is None:
            return frozenset()
        out = {target.identity}
        if _declares_add_cow(ctx):
            nested = nested_report(ctx, target)
            if nested is not None:
                out |= nested.involved
        return frozenset(out)
    return ctx.memo("files_below", compute)


def involved_files(ctx: CheckContext) -> frozenset[FileIdentity]:
    """This add-cow file, its image file and every file below it: what an image one level up
    must not use as its image file."""
    out = {ctx.identity, *files_below(ctx)}
    try:
        image = image_target(ctx) if ctx.options.follow else None
    except NotApplicableError:
        image = None
    if image is not None and image.identity is not None:
        out.add(image.identity)
    return frozenset(out)
