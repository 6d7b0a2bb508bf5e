"""Guest-level comparison of two images of any format (``addcow compare``, with the semantics
of ``qemu-img compare``).

Images compare equal when their guest disks hold the same bytes. Of two disks of different
sizes, the common part must be equal and the rest of the larger disk all zeros, unless
``strict``, where a size mismatch alone is a difference. The first difference is reported as
qemu-img reports it, at the start of the first differing 512-byte sector, so scripts written
for one read the other; the exact first differing byte is kept as well.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from addcow_ref.format.constants import SECTOR_SIZE
from addcow_ref.ops.guest import GuestSource, open_guest

__all__ = ["COMPARE_CHUNK", "CompareResult", "compare_images", "compare_sources"]

#: Bytes read from each side at a time.
COMPARE_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class CompareResult:
    """``identical``, else ``offset`` (qemu-img's: the first differing sector's start) and
    ``byte_offset`` (the first differing byte); ``size_mismatch`` when the sizes differ."""

    identical: bool
    size_a: int
    size_b: int
    size_mismatch: bool
    offset: int | None
    byte_offset: int | None


def _first_difference(a: bytes, b: bytes) -> int:
    """Index of the first byte where ``a`` and ``b`` (of equal length, known to differ) differ,
    found by halving so that no Python loop runs per byte."""
    lo, hi = 0, len(a)
    while hi - lo > 64:
        mid = (lo + hi) // 2
        if a[lo:mid] != b[lo:mid]:
            hi = mid
        else:
            lo = mid
    for i in range(lo, hi):
        if a[i] != b[i]:
            return i
    raise AssertionError("the ranges were equal")  # pragma: no cover


def _differ_at(byte: int) -> tuple[int, int]:
    return byte // SECTOR_SIZE * SECTOR_SIZE, byte


def compare_sources(a: GuestSource, b: GuestSource, *, strict: bool = False,
                    progress: Callable[[int, int], None] | None = None) -> CompareResult:
    """Compare two open guest disks (see the module docstring)."""
    sa, sb = a.size, b.size

    def result(at: int | None) -> CompareResult:
        sector, byte = _differ_at(at) if at is not None else (None, None)
        return CompareResult(identical=at is None and not (strict and sa != sb), size_a=sa,
                             size_b=sb, size_mismatch=sa != sb, offset=sector, byte_offset=byte)

    if strict and sa != sb:
        return result(None)
    total = max(sa, sb)
    common = min(sa, sb)
    for pos in range(0, total, COMPARE_CHUNK):
        n = min(COMPARE_CHUNK, total - pos)
        if pos + n <= common:
            da, db = a.read(pos, n), b.read(pos, n)
        else:  # past the smaller disk: the larger must read as zeros
            longer = a if sa > sb else b
            da, db = longer.read(pos, n), bytes(n)
            if pos < common:
                db = (a if longer is b else b).read(pos, common - pos).ljust(n, b"\0")
        if da != db:
            return result(pos + _first_difference(da, db))
        if progress:
            progress(pos + n, total)
    return result(None)


def compare_images(a: str, b: str, *, fmt_a: str | None = None, fmt_b: str | None = None,
                   strict: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> CompareResult:
    """Compare the guest disks of the images ``a`` and ``b`` (formats as
    :func:`addcow_ref.ops.guest.open_guest` reads them)."""
    with open_guest(a, fmt_a) as ga, open_guest(b, fmt_b) as gb:
        return compare_sources(ga, gb, strict=strict, progress=progress)
