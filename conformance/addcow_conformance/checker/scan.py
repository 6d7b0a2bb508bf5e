"""One streamed pass over the COW bitmap, in fixed-size chunks, on whole words.

BMP-PADDING, FEAT-ALL-ALLOCATED and BACK-EXISTS all need facts about the bitmap (the padding
bits, whether any cluster bit is 0, the allocated count); a 1 TiB image at 64 KiB clusters has a
2 MiB bitmap and a hostile header can claim far more, so the pass reads at most one chunk at a
time and only the bytes the file really holds.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator

from addcow_conformance.checker.context import CheckContext, NotApplicableError, next_data
from addcow_conformance.checker.derive import sized_v1_header
from addcow_ref.format.bitmap import count_ones, expect_scan, find_bit, padding_mask

__all__ = ["BitmapGeometry", "BitmapScan", "bitmap_geometry", "bitmap_scan", "next_data"]


@dataclasses.dataclass(frozen=True)
class BitmapGeometry:
    offset: int
    cluster_count: int
    length: int


@dataclasses.dataclass(frozen=True)
class BitmapScan:
    geometry: BitmapGeometry
    #: Bitmap bytes present in the file (fewer than ``geometry.length`` when truncated).
    available: int
    #: 1 bits among the cluster bits present.
    ones: int
    #: Cluster bits present in the file.
    clusters_seen: int
    #: Index of the first cluster whose bit is 0, if any among those present.
    first_zero: int | None
    #: The padding bits of the last byte that are set (None when that byte is missing).
    padding_set: int | None

    @property
    def complete(self) -> bool:
        return self.available == self.geometry.length

    @property
    def zeros(self) -> int:
        return self.clusters_seen - self.ones


def bitmap_geometry(ctx: CheckContext) -> BitmapGeometry:
    """Where the bitmap is and how long the spec says it is; NotApplicableError when the header
    leaves that undefined (a cluster_bits or virtual_size out of range, a v1 image file we may
    not or cannot open)."""
    header = ctx.header
    if header is None:
        raise NotApplicableError(ctx.no_header_reason)
    if not ctx.layout_known:
        raise NotApplicableError(f"version {ctx.version} has an unknown layout")
    if ctx.version == 1:
        header = sized_v1_header(ctx)
    elif not ctx.geometry_valid():
        raise NotApplicableError("cluster_bits or virtual_size is out of range, so the bitmap "
                                 "size is undefined")
    return BitmapGeometry(int(header.bitmap_offset), header.cluster_count, header.bitmap_length)


def _read_into(fd: int, buf: memoryview, offset: int) -> int:
    """Fill ``buf`` from ``offset`` (fewer bytes only at end of file); the count read."""
    got = 0
    while got < len(buf):
        n = os.preadv(fd, [buf[got:]], offset + got)
        if n <= 0:
            break
        got += n
    return got


def _chunks(ctx: CheckContext, start: int, length: int
            ) -> Iterator[tuple[memoryview | None, int]]:
    """``(data, n)`` for each chunk of ``[start, start + length)``; ``data`` is None for a hole
    of ``n`` zero bytes, skipped unread: a sparse file that really holds a terabyte-sized
    bitmap costs one ``lseek`` per hole, not terabytes of reads.

    Every chunk is read into the same buffer (``data`` is valid until the next chunk): a new
    1 MiB ``bytes`` per chunk meant a fresh allocation and its page faults for each MiB of a
    128 MiB bitmap."""
    chunk = ctx.options.chunk_size
    buf = memoryview(bytearray(min(chunk, length)))
    done = 0
    bar = None
    if ctx.options.progress and ctx.depth == 0:
        from tqdm import tqdm

        bar = tqdm(total=length, unit="B", unit_scale=True, desc="bitmap", file=sys.stderr,
                   leave=False)
    try:
        while done < length:
            pos = start + done
            data_at = next_data(ctx.fd, pos, start + length)
            if data_at > pos:
                yield None, data_at - pos
                n = data_at - pos
            else:
                n = _read_into(ctx.fd, buf[:min(chunk, length - done)], pos)
                if not n:
                    return
                yield buf[:n], n
            done += n
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()


def _scan(ctx: CheckContext) -> BitmapScan:
    geo = bitmap_geometry(ctx)
    in_file = max(0, min(geo.length, ctx.file_size - geo.offset))
    expect_scan(in_file)
    ones = 0
    first_zero: int | None = None
    pos = 0  # byte position inside the bitmap
    last = 0
    for data, n in _chunks(ctx, geo.offset, in_file):
        bits = min(n * 8, geo.cluster_count - pos * 8)
        if data is None:  # a hole: n zero bytes
            if first_zero is None and bits > 0:
                first_zero = pos * 8
            last = 0
        else:
            counted = count_ones(data)
            ones += counted
            # A chunk whose every bit is set holds no 0 bit: only a chunk with fewer ones than
            # bits is searched (its 0 may still be padding, which ``bits`` leaves out).
            if first_zero is None and counted < n * 8:
                at = find_bit(data, 0, bits, False)
                if at < bits:
                    first_zero = pos * 8 + at
            last = data[-1]
        pos += n
    padding_set: int | None = None
    if pos == geo.length and geo.length:
        padding_set = last & padding_mask(geo.cluster_count)
        ones -= padding_set.bit_count()
    clusters_seen = min(pos * 8, geo.cluster_count)
    return BitmapScan(geo, pos, ones, clusters_seen, first_zero, padding_set)


def bitmap_scan(ctx: CheckContext) -> BitmapScan:
    """The memoised scan of this image's bitmap."""
    return ctx.memo("bitmap_scan", lambda: _scan(ctx))
