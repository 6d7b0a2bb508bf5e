"""Deliberately broken adapters: the proof that the vectors bite (a suite that no broken
implementation fails proves nothing).

Each mutant is the reference adapter with one mistake an implementer could plausibly make,
named after the rule it breaks. The harness must report at least one failing vector for every
mutant; the share of mutants caught is the suite's kill rate. Run one with::

    python -m addcow_conformance.mutants NAME info IMAGE
    addcow-conformance run --impl 'python -m addcow_conformance.mutants NAME'
    addcow-conformance run --impl 'python:addcow_conformance.mutants:main NAME'   # forked, faster
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.mutants.autoclear import AutoclearNotCleared
from addcow_conformance.mutants.backing_eof import BackingEofGarbage
from addcow_conformance.mutants.bit_order import BitOrderReversed
from addcow_conformance.mutants.compat_dropped import CompatibleBitsDropped
from addcow_conformance.mutants.cwd_names import NamesRelativeToCwd
from addcow_conformance.mutants.format_case import FormatCaseInsensitive
from addcow_conformance.mutants.grow_zeroing import GrowWithoutZeroing
from addcow_conformance.mutants.head_tail import HeadTailCopySkipped
from addcow_conformance.mutants.header_extension import HeaderExtensionRefused
from addcow_conformance.mutants.image_length import ImageLengthRefused
from addcow_conformance.mutants.incompat import UnknownIncompatibleAccepted
from addcow_conformance.mutants.lazy_backing import BackingOpenedLazily
from addcow_conformance.mutants.map_backing import MapBackingAsAllocated
from addcow_conformance.mutants.nul_names import NamesNulTerminated
from addcow_conformance.mutants.padding import PaddingBitsRefused
from addcow_conformance.mutants.probing import FormatProbing
from addcow_conformance.mutants.read_clipped import ReadClipped
from addcow_conformance.mutants.resize_grow import ResizeGrowExposesBacking
from addcow_conformance.mutants.size_rounded import VirtualSizeRoundedUp
from addcow_conformance.mutants.unchecked_read import UnallocatedReadUnchecked
from addcow_conformance.mutants.v1_flush import V1FlushAccepted
from addcow_conformance.protocol import EXIT_USAGE

__all__ = ["MUTANTS", "main"]

#: name -> adapter class; each class's ``breaks`` names the rule its mistake violates.
MUTANTS: dict[str, type[ReferenceAdapter]] = {
    cls.name: cls
    for cls in (
        BitOrderReversed,
        PaddingBitsRefused,
        HeadTailCopySkipped,
        BackingEofGarbage,
        UnknownIncompatibleAccepted,
        NamesNulTerminated,
        NamesRelativeToCwd,
        FormatProbing,
        AutoclearNotCleared,
        ResizeGrowExposesBacking,
        MapBackingAsAllocated,
        HeaderExtensionRefused,
        VirtualSizeRoundedUp,
        GrowWithoutZeroing,
        ReadClipped,
        FormatCaseInsensitive,
        V1FlushAccepted,
        CompatibleBitsDropped,
        ImageLengthRefused,
        BackingOpenedLazily,
        UnallocatedReadUnchecked,
    )
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in MUTANTS:
        names = ", ".join(sorted(MUTANTS))
        print(f"usage: python -m addcow_conformance.mutants NAME COMMAND ...\nmutants: {names}",
              file=sys.stderr)
        return EXIT_USAGE
    return MUTANTS[args[0]]().run(args[1:])
