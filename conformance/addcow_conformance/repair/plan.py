"""Which of the checker's findings a repair fixes, and with which bytes.

A repair is only ever the one change a rule leaves no choice about: a reserved field or a
stray name-area byte can only be zero, a padding bit only 0, ``all_allocated`` only true when
every bit is 1, and the image file only ``virtual_size`` bytes long. Anything that would need a
guess (a bad magic, version, cluster_bits, header_length, offset, name or format) stays a
finding; so does everything when the header's layout itself is broken, because then no offset
read from it can be trusted to point at the byte a repair would change.

Levels follow ``qemu-img check -r``: its ``leaks`` level frees clusters that nothing uses and
loses nothing. add-cow allocates no clusters of its own, so the analogue is the space-only
repairs: the bytes after the bitmap (BMP-TRAILING) and an image file longer than the disk
(IMG-LENGTH) are cut off; nothing a reader looks at changes. ``all`` adds every other
mechanical repair.

``all_allocated`` is only ever cleared: the bitmap is the record every write updates in the
order the spec fixes (WRITE-ORDER-ALLOCATING, FLUSH-ORDER), the bit a promise set last
(HYDRATE-ORDER). Setting a clear bit on an image whose bits are all 1 would fix no rule (a
clear bit is always correct), and a repair of a conforming image changes nothing. A reader
that trusted the wrong bit and skipped the bitmap (READ-BACKING-SKIP) read the clusters whose
bit is 0 from the image file; after the repair every reader reads them from the backing file,
as the bitmap always said. The spec leaves their data unspecified until then (FEAT-ALL-ALLOCATED
has reader duty ``either``), so the bitmap's reading is the one kept.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from addcow_conformance.checker.findings import Report
from addcow_conformance.repair.rewrite import Patch
from addcow_ref.format.bitmap import padding_mask
from addcow_ref.format.constants import (
    KNOWN_AUTOCLEAR_FEATURES,
    CompatibleFeature,
)
from addcow_ref.format.header import HeaderV2
from addcow_ref.format.layout import encode_field, field_info
from addcow_ref.format.schema import HEADER_V2

__all__ = [
    "ALL_RULES",
    "LAYOUT_RULES",
    "LEAK_RULES",
    "Level",
    "Plan",
    "Repair",
    "Unrepaired",
    "plan_repairs",
]

Level = Literal["leaks", "all"]

#: Space-only repairs (``-r leaks``): nothing a reader uses changes.
LEAK_RULES = frozenset({"BMP-TRAILING", "IMG-LENGTH"})

#: Every rule a repair can fix (``-r all``).
ALL_RULES = LEAK_RULES | frozenset({
    "FEAT-ALL-ALLOCATED", "FEAT-AUTOCLEAR-UNKNOWN", "BMP-PADDING", "HDR-RESERVED",
    "NAME-AREA-ZERO", "IMG-SIZE"})

#: A finding of any of these means the header's fields cannot be trusted to locate anything:
#: nothing is repaired. An unknown incompatible bit may change the layout, and a writer must
#: not write such an image at all (FEAT-INCOMPAT-UNKNOWN).
LAYOUT_RULES = frozenset({
    "HDR-COMPLETE", "HDR-MAGIC", "HDR-VERSION", "HDR-LENGTH-MIN", "HDR-LENGTH-MULTIPLE",
    "HDR-LENGTH-BOUND", "HDR-CLUSTER-BITS", "HDR-BITMAP-OFFSET-ALIGN", "HDR-BITMAP-OFFSET-MIN",
    "HDR-VIRTUAL-SIZE-ALIGN", "HDR-VIRTUAL-SIZE-MAX", "BMP-LENGTH", "FEAT-INCOMPAT-UNKNOWN"})

#: Findings that leave the extent of the names unknown, so no byte of the name area is known
#: to lie outside every name (NAME-AREA-ZERO is then not repaired).
_NAME_EXTENT_RULES = frozenset({"NAME-BOUNDS", "NAME-OVERLAP", "NAME-BACKING-PAIR"})


@dataclasses.dataclass(frozen=True)
class Repair:
    """One change made, the rule it fixes and the file it changed."""

    rule: str
    what: str
    file: str


@dataclasses.dataclass(frozen=True)
class Unrepaired:
    """A broken rule left as a finding, and why."""

    rule: str
    reason: str


@dataclasses.dataclass
class Plan:
    """Everything one repair run changes: the add-cow file's new bytes and length, and the
    image file's new length (None: untouched)."""

    file_size: int
    total: int
    patches: list[Patch] = dataclasses.field(default_factory=list)
    zeroed: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    image_length: int | None = None
    repairs: list[Repair] = dataclasses.field(default_factory=list)
    left: list[Unrepaired] = dataclasses.field(default_factory=list)

    @property
    def rewrites_metadata(self) -> bool:
        return bool(self.patches or self.zeroed or self.total != self.file_size)


#: Why a warning that looks fixable is left alone on purpose.
_KEPT = {
    "FEAT-COMPAT-UNKNOWN": "kept: a writer keeps the compatible bits it does not know "
                           "(FEAT-COMPAT-KEEP)",
    "FMT-BACKING-KNOWN": "kept: another implementation may read that backing format",
    "NAME-CONFINED": "kept: where the files live is the image owner's decision",
}


def _why_not(rule: str, level: Level) -> str:
    if rule in ALL_RULES and level == "leaks":
        return "not a space-only repair; -r all repairs it"
    return _KEPT.get(rule, "not mechanical: fixing it would mean guessing what was meant")


def _patch(name: str, value: int | bytes) -> Patch:
    return Patch(field_info(HEADER_V2, name).offset, encode_field(HEADER_V2, name, value))


def plan_repairs(report: Report, header: HeaderV2, *, level: Level, file_size: int,
                 last_bitmap_byte: int | None, image_path: str | None) -> Plan:
    """The repairs of ``level`` for the findings of ``report`` on a v2 image whose ``header``
    was read from a file of ``file_size`` bytes. ``last_bitmap_byte`` is that byte's value
    (None when missing); ``image_path`` the resolved image file."""
    path = report.path
    plan = Plan(file_size=file_size, total=file_size)
    wanted = [r for r in report.rule_ids if r in (ALL_RULES if level == "all" else LEAK_RULES)]
    plan.left = [Unrepaired(r, _why_not(r, level)) for r in report.rule_ids if r not in wanted]
    broken = [r for r in report.rule_ids if r in LAYOUT_RULES]
    if broken:
        reason = (f"the header's layout is broken ({', '.join(broken)}); no offset in it is "
                  "trusted, so nothing was changed")
        plan.left += [Unrepaired(r, reason) for r in wanted]
        return plan
    bitmap_end = int(header.bitmap_offset) + header.bitmap_length
    for rule in wanted:
        if rule == "HDR-RESERVED":
            for name in ("reserved1", "reserved2"):
                info = field_info(HEADER_V2, name)
                if getattr(header, name) != bytes(info.size):
                    plan.patches.append(_patch(name, bytes(info.size)))
                    plan.repairs.append(Repair(rule, f"zeroed {name}, {info.size} bytes at "
                                               f"0x{info.offset:x}", path))
        elif rule == "FEAT-ALL-ALLOCATED":
            compat = int(header.compatible_features) & ~CompatibleFeature.ALL_ALLOCATED
            plan.patches.append(_patch("compatible_features", compat))
            zeros = next((f.actual for f in report.findings if f.rule == rule), None)
            plan.repairs.append(Repair(rule, f"cleared all_allocated ({zeros or 'zero bits'}): "
                                       "those clusters read from the backing file, as the "
                                       "bitmap says", path))
        elif rule == "FEAT-AUTOCLEAR-UNKNOWN":
            _clear_autoclear(plan, header, path)
        elif rule == "BMP-PADDING":
            if last_bitmap_byte is None:
                plan.left.append(Unrepaired(rule, "the last bitmap byte is missing"))
                continue
            mask = padding_mask(header.cluster_count)
            at = bitmap_end - 1
            plan.patches.append(Patch(at, bytes([last_bitmap_byte & ~mask & 0xFF])))
            plan.repairs.append(Repair(rule, f"cleared padding bits "
                                       f"0x{last_bitmap_byte & mask:02x} of bitmap byte "
                                       f"0x{at:x}", path))
        elif rule == "NAME-AREA-ZERO":
            blocking = [r for r in report.rule_ids if r in _NAME_EXTENT_RULES]
            if blocking:
                plan.left.append(Unrepaired(rule, f"the names' extent is unknown "
                                            f"({', '.join(blocking)})"))
                continue
            plan.zeroed += _outside_names(header)
            plan.repairs.append(Repair(rule, "zeroed the name-area bytes outside every name",
                                       path))
        elif rule == "BMP-TRAILING":
            plan.total = bitmap_end
            plan.repairs.append(Repair(rule, f"truncated {file_size - bitmap_end} byte(s) "
                                       f"after the bitmap, file now {bitmap_end} bytes", path))
        elif rule in ("IMG-SIZE", "IMG-LENGTH"):
            _plan_image_length(plan, report, header, rule, image_path)
    if plan.repairs and "FEAT-AUTOCLEAR-UNKNOWN" not in wanted:
        # A writer that changes the image clears the autoclear bits it does not know, durably,
        # before any other change (FEAT-AUTOCLEAR-UNKNOWN, FEAT-AUTOCLEAR-DURABLE): a repair
        # is such a change, at either level.
        _clear_autoclear(plan, header, path, first=True)
    fixed = {r.rule for r in plan.repairs}
    plan.left = [u for u in plan.left if u.rule not in fixed]
    return plan


def _clear_autoclear(plan: Plan, header: HeaderV2, path: str, *, first: bool = False) -> None:
    autoclear = int(header.autoclear_features)
    kept = autoclear & KNOWN_AUTOCLEAR_FEATURES
    if kept == autoclear:
        return
    plan.patches.append(_patch("autoclear_features", kept))
    done = Repair("FEAT-AUTOCLEAR-UNKNOWN", f"cleared unknown autoclear bits "
                  f"0x{autoclear & ~kept:x}", path)
    plan.repairs.insert(0 if first else len(plan.repairs), done)


def _outside_names(header: HeaderV2) -> list[tuple[int, int]]:
    """The name area ``[header_length, bitmap_offset)`` minus the names: header extension
    bytes before ``header_length`` are kept (HDR-EXTENSION-KEEP)."""
    names = []
    if int(header.image_name_length):
        names.append((int(header.image_name_offset),
                      int(header.image_name_offset) + int(header.image_name_length)))
    if int(header.backing_name_offset):
        names.append((int(header.backing_name_offset),
                      int(header.backing_name_offset) + int(header.backing_name_length)))
    out = []
    pos = int(header.header_length)
    for start, end in sorted(names):
        if start > pos:
            out.append((pos, start))
        pos = max(pos, end)
    if pos < int(header.bitmap_offset):
        out.append((pos, int(header.bitmap_offset)))
    return out


def _plan_image_length(plan: Plan, report: Report, header: HeaderV2, rule: str,
                       image_path: str | None) -> None:
    if image_path is None or "FMT-IMAGE" in report.rule_ids:
        plan.left.append(Unrepaired(rule, "the image file is not a raw file the header names "
                                    "unambiguously"))
        return
    size = int(header.virtual_size)
    plan.image_length = size
    how = "extended the image file with zeros" if rule == "IMG-SIZE" else "truncated the image file"
    plan.repairs.append(Repair(rule, f"{how} to virtual_size {size}", image_path))
