"""Repair of what the checker finds and the spec leaves no choice about (``addcow-check
--repair``, ``addcow check -r``).

One run: take the writer's exclusive locks (LOCK-WRITER), check the image under them, plan the
repairs of the requested level from the findings (:mod:`.plan`), then change the files in the
order the spec's writer duties fix:

1. the add-cow file, when any of its bytes change, is replaced whole by a fixed copy
   (:mod:`.rewrite`): the unknown autoclear bits are cleared in the same rename, so they are
   durable before the image file is touched (FEAT-AUTOCLEAR-DURABLE);
2. the image file is cut or extended to ``virtual_size`` with ``ftruncate`` and fsynced: one
   metadata change of the file system, and no byte below ``virtual_size`` moves.

No cluster bit and no guest byte ever changes: padding bits stand for no cluster, bytes past
``virtual_size`` and after the bitmap are read by nobody, an extension reads as the zeros a
short file already gave, and the backing chain is never opened for writing. A crash between
the two steps leaves an image with fewer findings, which the next run finishes.

The verdict afterwards is a fresh check, with the exit status of ``qemu-img check`` after
``-r``: 0 clean, 2 errors remain ("corruptions"), 3 only warnings remain (qemu's "leaks": what
does not endanger the data), 1 the check or the repair could not be completed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
from collections.abc import Callable, Sequence

from addcow_conformance.checker.context import CannotCheckError, CheckOptions, open_regular_file
from addcow_conformance.checker.engine import check_path
from addcow_conformance.checker.findings import EXIT_NOT_CHECKED, Report
from addcow_conformance.repair.plan import (
    ALL_RULES,
    LAYOUT_RULES,
    LEAK_RULES,
    Level,
    Plan,
    Repair,
    Unrepaired,
    plan_repairs,
)
from addcow_conformance.repair.rewrite import rewrite_file
from addcow_ref.engine.oslocks import try_lock
from addcow_ref.format.constants import HEADER_LENGTH_V2, VERSION_1, VERSION_2
from addcow_ref.format.errors import AddCowError
from addcow_ref.format.header import HeaderV2, parse_header, read_version

__all__ = [
    "ALL_RULES",
    "LEAK_RULES",
    "Level",
    "Repair",
    "RepairResult",
    "Unrepaired",
    "exit_code",
    "parse_level",
    "repair_and_check",
    "repair_image",
    "repair_images",
    "summary_lines",
]

#: What version 1 findings get instead of a repair: the v1 file is never written.
V1_REASON = ("version 1 images are read-only (V1-READ-ONLY); `addcow upgrade` writes a "
             "version 2 image, which clears the padding bits and can then be repaired")

#: The rules a v1 file could break that a v2 repair would fix (V1-RESERVED is HDR-RESERVED's
#: twin).
_V1_MECHANICAL = frozenset({"BMP-PADDING", "BMP-TRAILING", "V1-RESERVED"})


@dataclasses.dataclass
class RepairResult:
    """What one repair run did: the repairs made, the findings left and why, or the error
    that stopped it (then ``repairs`` lists only what was completed)."""

    path: str
    level: Level
    repairs: list[Repair] = dataclasses.field(default_factory=list)
    left: list[Unrepaired] = dataclasses.field(default_factory=list)
    error: str | None = None


def _in_use(path: str) -> str:
    return f"{path} is in use (locked by another process); not repaired [LOCK-CONFLICT]"


def _open_image_file(path: str) -> int:
    """The image file, read-write, exclusively locked; AddCowError when that cannot be."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise AddCowError(f"cannot open the image file: {e.strerror or e}", file=path) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode) or not try_lock(fd, exclusive=True):
        os.close(fd)
        raise AddCowError("is in use (locked by another process) or no longer a regular "
                          "file; not repaired", file=path, rule_id="LOCK-CONFLICT")
    return fd


def _image_path(path: str, fd: int, header: HeaderV2, file_size: int) -> str | None:
    """The image file, named relative to the add-cow file's directory as given
    (READ-NAME-RELATIVE); None when its name is not wholly in the file."""
    offset, length = int(header.image_name_offset), int(header.image_name_length)
    if length == 0 or offset + length > file_size:
        return None
    name = os.pread(fd, length, offset)
    if len(name) != length or b"\0" in name:
        return None
    directory = os.path.dirname(os.path.abspath(os.fsencode(path)))
    return os.fsdecode(os.path.join(directory, name))


def _plan(report: Report, fd: int, level: Level, file_size: int) -> Plan | RepairResult:
    path = report.path
    prefix = os.pread(fd, HEADER_LENGTH_V2, 0)
    version = read_version(prefix)
    if version != VERSION_2 or len(prefix) < HEADER_LENGTH_V2:
        reason = (V1_REASON if version == VERSION_1
                  else "there is no version 2 header to repair; nothing was changed")
        left = [Unrepaired(r, reason if version != VERSION_1 or r in _V1_MECHANICAL
                           else "not mechanical: fixing it would mean guessing what was meant")
                for r in report.rule_ids]
        return RepairResult(path, level, left=left)
    header = parse_header(prefix, file=path)
    last: int | None = None
    image: str | None = None
    if not LAYOUT_RULES.intersection(report.rule_ids):
        end = int(header.bitmap_offset) + header.bitmap_length
        byte = os.pread(fd, 1, end - 1) if 0 < end <= file_size else b""
        last = byte[0] if byte else None
        image = _image_path(path, fd, header, file_size)
    return plan_repairs(report, header, level=level, file_size=file_size,
                        last_bitmap_byte=last, image_path=image)


def repair_image(path: str, level: Level, options: CheckOptions | None = None) -> RepairResult:
    """Repair the image at ``path`` at ``level``; never raises for a bad image or an I/O
    failure (the result's ``error`` says what stopped it)."""
    options = options or CheckOptions()
    result = RepairResult(path, level)
    try:
        fd, st = open_regular_file(path, confine=options.confine)
    except CannotCheckError as e:
        result.error = f"cannot repair {path}: {e}"
        return result
    image_fd = -1
    try:
        if not try_lock(fd, exclusive=True):
            result.error = _in_use(path)
            return result
        # We hold the writer's lock ourselves, so the check must not ask for a shared one.
        report = check_path(path, dataclasses.replace(options, force_share=True,
                                                      progress=False))
        if report.error is not None or report.internal_errors:
            why = report.error or "; ".join(e.message for e in report.internal_errors)
            result.error = f"cannot repair {path}: the check did not complete: {why}"
            return result
        planned = _plan(report, fd, level, st.st_size)
        if isinstance(planned, RepairResult):
            return planned
        result.left = planned.left
        if planned.image_length is not None:
            image = next(r.file for r in planned.repairs if r.file != path)
            image_fd = _open_image_file(image)
        if planned.rewrites_metadata:
            rewrite_file(path, fd, total=planned.total, patches=planned.patches,
                         zeroed=planned.zeroed)
        result.repairs = [r for r in planned.repairs if r.file == path]
        if image_fd >= 0:
            assert planned.image_length is not None
            os.ftruncate(image_fd, planned.image_length)
            os.fsync(image_fd)
            result.repairs += [r for r in planned.repairs if r.file != path]
    except AddCowError as e:
        result.error = str(e)
    except OSError as e:
        result.error = f"cannot repair {path}: {e.strerror or e}"
    finally:
        if image_fd >= 0:
            os.close(image_fd)
        with contextlib.suppress(OSError):
            os.close(fd)
    return result


def repair_and_check(path: str, level: Level,
                     options: CheckOptions | None = None) -> tuple[RepairResult, Report]:
    """Repair, then check the result afresh: the repair run and the verdict on what it left."""
    options = options or CheckOptions()
    result = repair_image(path, level, options)
    return result, check_path(path, options)


def exit_code(result: RepairResult, after: Report) -> int:
    """``qemu-img check -r``'s status: 1 when the repair failed, else the fresh check's."""
    return EXIT_NOT_CHECKED if result.error is not None else after.exit_code


def summary_lines(result: RepairResult) -> list[str]:
    """``PATH: N repairs made: RULE (what), ...``, then one line per finding left unrepaired
    and the error, if any."""
    n = len(result.repairs)
    head = f"{result.path}: {n} repair{'' if n == 1 else 's'} made"
    if n:
        head += ": " + ", ".join(f"{r.rule} ({r.what})" for r in result.repairs)
    lines = [head]
    lines += [f"{result.path}: not repaired: {u.rule}: {u.reason}" for u in result.left]
    if result.error is not None:
        lines.append(f"{result.path}: repair stopped: {result.error}")
    return lines


def parse_level(text: str) -> Level:
    """The repair level named ``text`` (``leaks`` or ``all``); ValueError otherwise."""
    if text == "leaks":
        return "leaks"
    if text == "all":
        return "all"
    raise ValueError(f"unknown repair level {text!r} (leaks, all)")


def repair_images(paths: Sequence[str], level: Level, options: CheckOptions,
                  echo: Callable[[str], None] | None = None) -> list[int]:
    """Repair each image in turn, passing its summary lines to ``echo``; returns the exit
    status 1 once per repair that failed (what a caller adds to the fresh check's statuses)."""
    failed: list[int] = []
    for path in paths:
        result = repair_image(path, level, options)
        if echo is not None:
            for line in summary_lines(result):
                echo(line)
        if result.error is not None:
            failed.append(EXIT_NOT_CHECKED)
    return failed
