"""Deliberately broken adapters: the proof that the vectors bite (issue 5, item 5).

Each mutant is the reference adapter with one mistake an implementer could plausibly make,
named after the rule it breaks. The harness must report at least one failing vector for every
mutant; the share of mutants caught is the suite's kill rate. Run one with::

    python -m conformance.mutants NAME info IMAGE
    addcow-conformance run --impl 'python -m conformance.mutants NAME'
    addcow-conformance run --impl 'python:conformance.mutants:main NAME'   # forked, faster
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from conformance.adapters.reference import EXIT_USAGE, ReferenceAdapter

from .autoclear import AutoclearNotCleared
from .backing_eof import BackingEofGarbage
from .bit_order import BitOrderReversed
from .cwd_names import NamesRelativeToCwd
from .head_tail import HeadTailCopySkipped
from .header_extension import HeaderExtensionRefused
from .incompat import UnknownIncompatibleAccepted
from .map_backing import MapBackingAsAllocated
from .nul_names import NamesNulTerminated
from .padding import PaddingBitsIgnored
from .probing import FormatProbing
from .resize_grow import ResizeGrowExposesBacking
from .size_rounded import VirtualSizeRoundedUp

__all__ = ["MUTANTS", "main"]

#: name -> adapter class; each class's ``breaks`` names the rule its mistake violates.
MUTANTS: dict[str, type[ReferenceAdapter]] = {
    cls.name: cls
    for cls in (
        BitOrderReversed,
        PaddingBitsIgnored,
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
    )
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in MUTANTS:
        names = ", ".join(sorted(MUTANTS))
        print(f"usage: python -m conformance.mutants NAME COMMAND ...\nmutants: {names}",
              file=sys.stderr)
        return EXIT_USAGE
    return MUTANTS[args[0]]().run(args[1:])
