"""Pure helpers over COW bitmap bytes (spec: "COW bitmap", rule BMP-BIT-ORDER).

Cluster ``i`` is bit ``i & 7`` of byte ``i >> 3``, least significant bit first. Interpreting a
byte string as one little-endian integer therefore makes bit ``i`` of the bitmap bit ``i`` of the
integer, which lets every helper here work on whole words (``int.from_bytes``, ``bytes.find``,
``bytes.translate``) instead of looping over bits in Python: a bitmap of millions of clusters is
scanned at C speed. Callers hand in bounded slices (the bitmap cache works in chunks), so the
integers stay small.
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Iterator
from types import ModuleType
from typing import Any, NamedTuple, Protocol

#: numpy once loaded (see _numpy); None before, or for good when it cannot be imported.
_np: ModuleType | None = None
_np_unavailable = False
_scanned_without_numpy = 0
#: Importing numpy costs ~75 ms here, as much as counting bits of ~50 MiB without it. A short
#: command (``addcow-check`` on a 1 TiB image scans 2 MiB) would pay more for the import than
#: it saves, so numpy is loaded only once this much bitmap has been scanned without it.
_IMPORT_NUMPY_AFTER = 32 << 20


def _numpy(nbytes: int) -> ModuleType | None:
    """numpy if it is worth having for a scan of ``nbytes`` more bytes, else None."""
    global _np, _np_unavailable, _scanned_without_numpy
    if _np is not None or _np_unavailable:
        return _np
    if "numpy" not in sys.modules:
        _scanned_without_numpy += nbytes
        if _scanned_without_numpy < _IMPORT_NUMPY_AFTER:
            return None
    try:
        import numpy
    except ImportError:  # numpy is a dependency, but nbdkit's embedded Python may lack a build
        _np_unavailable = True
        return None
    _np = numpy
    return _np

def load_numpy() -> ModuleType | None:
    """numpy, imported now if it is not yet, or None where it cannot be imported.

    For callers that know their job is big enough to repay the import at once (a map of many
    extents, a scan of a large bitmap): they would otherwise go the slow way until
    ``_IMPORT_NUMPY_AFTER`` bytes have been scanned.
    """
    return _numpy(_IMPORT_NUMPY_AFTER)


def numpy_if_loaded() -> ModuleType | None:
    """numpy when this process has imported it already (here or anywhere), else None: for
    choices that are worth numpy only when it costs no import."""
    if _np is None and not _np_unavailable and "numpy" in sys.modules:
        return _numpy(0)
    return _np


def numpy_for_scan(nbytes: int) -> ModuleType | None:
    """numpy if it is loaded, or once this process has scanned enough bitmap without it to
    repay the import (``_IMPORT_NUMPY_AFTER``, these ``nbytes`` counted); else None. For a
    caller that picks between a numpy path and a plain one for each piece of a long scan, so
    that the pieces after the threshold take numpy."""
    return _numpy(nbytes)


def expect_scan(nbytes: int) -> None:
    """Say that about ``nbytes`` of bitmap are about to be scanned by the helpers here.

    When that is enough to repay numpy's import (``_IMPORT_NUMPY_AFTER``), numpy is imported
    now, before the first chunk: a streamed scan of a 128 MiB bitmap otherwise counts its first
    32 MiB with big integers (~100 ms here) before importing numpy (~60 ms) and doing the rest
    at ~0.1 ms per MiB. Smaller scans change nothing (a small ``addcow-check`` never imports
    numpy).
    """
    if nbytes >= _IMPORT_NUMPY_AFTER:
        load_numpy()


__all__ = [
    "RunArrays",
    "RunColumn",
    "clear_bit_range",
    "count_ones",
    "expect_scan",
    "find_bit",
    "get_bit",
    "iter_runs",
    "load_numpy",
    "numpy_for_scan",
    "numpy_if_loaded",
    "padding_mask",
    "run_arrays",
    "set_bit_range",
]

#: Below this many 64-bit words the big-integer popcount is as fast as a call into numpy.
_NUMPY_MIN_WORDS = 512
#: run_arrays over fewer bits than this goes through iter_runs; longer ranges use numpy.
_NUMPY_MIN_RUN_BITS = 1 << 12
#: find_bit searches this many whole bytes with the regex engine before it compares blocks of
#: ``_SKIP_BLOCK`` bytes at once.
_PROBE_BYTES = 256
_SKIP_BLOCK = 1 << 12
_ZERO_BLOCK = bytes(_SKIP_BLOCK)
_FF_BLOCK = b"\xff" * _SKIP_BLOCK
_NOT_ZERO = re.compile(b"[^\\x00]")
_NOT_FF = re.compile(b"[^\\xff]")


def count_ones(data: bytes | bytearray | memoryview) -> int:
    """Number of 1 bits in ``data``.

    With numpy, whole 64-bit words go through its popcount kernel, which runs at about the speed
    of a memory copy; ``int.from_bytes(...).bit_count()`` must first build a big integer and is
    ten times slower on a 1 MiB chunk. The integer path remains for short inputs and for
    interpreters without numpy (nbdkit's embedded Python may lack a matching build).
    """
    nwords = len(data) >> 3
    np = _numpy(len(data)) if nwords >= _NUMPY_MIN_WORDS else None
    if np is None:
        return int.from_bytes(data, "little").bit_count()
    words = np.frombuffer(data, dtype=np.uint64, count=nwords)
    tail = memoryview(data)[nwords << 3:]
    # A uint32 sum is a quarter faster than numpy's default (int64) and cannot overflow below
    # 2**26 words (2**32 bits).
    total = _popcounts(np, words).sum(dtype=np.uint32 if nwords < 1 << 26 else np.uint64)
    return int(total) + int.from_bytes(tail, "little").bit_count()


#: Set bits of every byte value, for numpy releases without ``bitwise_count`` (it came in 2.0;
#: Debian 12 ships 1.24). Built on first use.
_BYTE_POPCOUNT: Any = None


def _popcounts(np: ModuleType, words: Any) -> Any:
    """Set bits of each element of the uint64 array ``words``, as an array.

    ``np.bitwise_count`` where numpy has it; otherwise a 256-entry table looked up per byte
    and summed per word, about three times slower but the same numbers.
    """
    kernel = getattr(np, "bitwise_count", None)
    if kernel is not None:
        return kernel(words)
    global _BYTE_POPCOUNT
    if _BYTE_POPCOUNT is None:
        _BYTE_POPCOUNT = np.array([bin(b).count("1") for b in range(256)], dtype=np.uint8)
    as_bytes = np.ascontiguousarray(words).view(np.uint8).reshape(-1, 8)
    return _BYTE_POPCOUNT[as_bytes].sum(axis=1, dtype=np.uint8)


def padding_mask(cluster_count: int) -> int:
    """Bits of the last bitmap byte that stand for no cluster and must be 0 (rule BMP-PADDING).

    Zero when the cluster count is a multiple of 8 (the last byte is fully used).
    """
    used = cluster_count & 7
    if used == 0:
        return 0
    return 0xFF & ~((1 << used) - 1)


def get_bit(data: bytes | bytearray | memoryview, i: int) -> bool:
    """Bit ``i`` of the bitmap ``data``."""
    return bool(data[i >> 3] >> (i & 7) & 1)


def _bits_of(data: bytes | bytearray | memoryview, first: int, nbits: int) -> int:
    """Bits ``[first, first + nbits)`` as an integer whose bit 0 is bit ``first``."""
    lo = first >> 3
    hi = (first + nbits + 7) >> 3
    word = int.from_bytes(data[lo:hi], "little") >> (first & 7)
    return word & ((1 << nbits) - 1)


def _apply_range(buf: bytearray, first: int, count: int, value: bool) -> None:
    if count <= 0:
        return
    end = first + count
    if end > len(buf) * 8:
        raise IndexError(f"bit range [{first}, {end}) is past the {len(buf)}-byte bitmap")
    lo, hi = first >> 3, (end + 7) >> 3
    full_lo, full_hi = (first + 7) >> 3, end >> 3
    if full_lo < full_hi:
        buf[full_lo:full_hi] = (b"\xff" if value else b"\0") * (full_hi - full_lo)
    # Partial bytes at either edge (or the single byte holding the whole range).
    for idx in {lo, hi - 1}:
        if full_lo <= idx < full_hi:
            continue
        bit_lo = max(first, idx * 8) - idx * 8
        bit_hi = min(end, idx * 8 + 8) - idx * 8
        mask = ((1 << bit_hi) - 1) & ~((1 << bit_lo) - 1)
        if value:
            buf[idx] |= mask
        else:
            buf[idx] &= ~mask & 0xFF


def set_bit_range(buf: bytearray, first: int, count: int) -> None:
    """Set bits ``[first, first + count)`` of ``buf`` to 1."""
    _apply_range(buf, first, count, True)


def clear_bit_range(buf: bytearray, first: int, count: int) -> None:
    """Clear bits ``[first, first + count)`` of ``buf`` to 0."""
    _apply_range(buf, first, count, False)


def find_bit(data: bytes | bytearray | memoryview, first: int, nbits: int, value: bool) -> int:
    """Index of the first bit equal to ``value`` in ``[first, first + nbits)``, or
    ``first + nbits`` when there is none.

    Skips whole bytes that cannot hold a match with ``bytes.find`` on the complementary byte
    value, so long uniform stretches cost C time, not Python iterations.
    """
    end = first + nbits
    pos = first
    if nbits <= 0:
        return end
    mv = memoryview(data)
    # Leading partial byte.
    if pos & 7:
        stop = min(end, (pos | 7) + 1)
        word = _bits_of(mv, pos, stop - pos)
        if not value:
            word = ~word & ((1 << (stop - pos)) - 1)
        if word:
            return pos + ((word & -word).bit_length() - 1)
        pos = stop
        if pos >= end:
            return end
    # Whole bytes: find the first byte that is not all-skip. The regex engine searches the
    # buffer in place between pos and endpos: no copy, so iterating over many short runs of a
    # large bitmap stays linear instead of copying the rest of the buffer per run.
    byte_lo, byte_hi = pos >> 3, end >> 3
    if byte_hi > byte_lo:
        pattern = _NOT_ZERO if value else _NOT_FF
        # The next bytes first (most runs end soon), then long uniform stretches a block at a
        # time: a copy and a memcmp run at memory speed, where the regex engine takes ~5 ns a
        # byte (40 ms for 8 MiB of 0xff).
        probe = min(byte_hi, byte_lo + _PROBE_BYTES)
        m = pattern.search(mv, byte_lo, probe)
        if m is None and probe < byte_hi:
            skip = _ZERO_BLOCK if value else _FF_BLOCK
            while byte_hi - probe >= _SKIP_BLOCK and \
                    bytes(mv[probe:probe + _SKIP_BLOCK]) == skip:
                probe += _SKIP_BLOCK
            m = pattern.search(mv, probe, byte_hi)
        if m:
            idx = m.start()
            b = mv[idx] if value else ~mv[idx] & 0xFF
            return idx * 8 + ((b & -b).bit_length() - 1)
    pos = byte_hi * 8
    # Trailing partial byte.
    if pos < end:
        word = _bits_of(mv, pos, end - pos)
        if not value:
            word = ~word & ((1 << (end - pos)) - 1)
        if word:
            return pos + ((word & -word).bit_length() - 1)
    return end


def iter_runs(
    data: bytes | bytearray | memoryview, first_bit: int, nbits: int
) -> Iterator[tuple[int, int, bool]]:
    """Maximal runs of equal bits in ``[first_bit, first_bit + nbits)`` as
    ``(start_bit, n_bits, value)``; consecutive runs alternate in value and cover the range.

    Each run's end is found with :func:`find_bit`, which passes over whole bytes of 0x00 or
    0xff at the speed of a byte search, so a range costs one step per run. This is the form for
    short ranges (a read or a write) and for interpreters without numpy; callers with many runs
    at once and numpy loaded take :func:`run_arrays`, which finds every boundary of a window in
    one pass (the bitmap cache chooses per chunk).
    """
    end = first_bit + nbits
    if nbits <= 0:
        return
    if end > len(data) * 8:
        raise IndexError(f"bit range [{first_bit}, {end}) is past the {len(data)}-byte bitmap")
    pos, value = first_bit, get_bit(data, first_bit)
    while pos < end:
        nxt = find_bit(data, pos, end - pos, not value)
        yield pos, nxt - pos, value
        pos = nxt
        value = not value


class RunColumn(Protocol):
    """One column of ``RunArrays``: a numpy array, or an ``array.array`` without numpy; both
    index, measure and convert to a list alike."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int, /) -> Any: ...

    def tolist(self) -> list[Any]: ...


class RunArrays(NamedTuple):
    """The runs of ``iter_runs`` as three parallel columns: numpy arrays (int64, int64, bool)
    when numpy is loaded, ``array.array`` ('q', 'q', 'B') otherwise. ``starts[i], lengths[i],
    values[i]`` is the i-th ``(start_bit, n_bits, value)`` tuple ``iter_runs`` would yield."""

    starts: RunColumn
    lengths: RunColumn
    values: RunColumn

    def tolist(self) -> list[tuple[int, int, bool]]:
        """The runs as ``iter_runs`` tuples of plain Python ints and bools."""
        return [(s, n, bool(v)) for s, n, v in zip(self.starts.tolist(), self.lengths.tolist(),
                                                    self.values.tolist(), strict=True)]


#: 64-bit words run_arrays handles per numpy call: its scratch arrays (256 KiB each) stay in
#: the CPU cache, where one pass costs a fraction of one over a whole large bitmap.
_RUN_ARRAY_WORDS = 1 << 15


def run_arrays(data: bytes | bytearray | memoryview, first_bit: int, nbits: int) -> RunArrays:
    """The runs of ``iter_runs(data, first_bit, nbits)`` as arrays, without a Python object per
    run: for callers that count, merge or encode many runs at once (extents, statistics).

    A bit starts a run where it differs from the bit before it, so the run starts are the set
    bits of ``x ^ (x << 1)`` over the bitmap read as little-endian 64-bit words; numpy computes
    that word-parallel and reads the bit offsets out of the non-zero words (a word holding a
    single boundary, as in any bitmap whose runs are longer than 64 clusters, costs one float
    conversion whose exponent is the offset). Short ranges, and interpreters without numpy,
    go through ``iter_runs``.
    """
    end = first_bit + nbits
    if nbits <= 0:
        return RunArrays(array("q"), array("q"), array("B"))
    if end > len(data) * 8:
        raise IndexError(f"bit range [{first_bit}, {end}) is past the {len(data)}-byte bitmap")
    np = _numpy((end >> 3) - (first_bit >> 3)) if nbits >= _NUMPY_MIN_RUN_BITS else None
    if np is None:
        runs = list(iter_runs(data, first_bit, nbits))
        return RunArrays(array("q", [r[0] for r in runs]), array("q", [r[1] for r in runs]),
                         array("B", [r[2] for r in runs]))
    mv = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    starts = np.concatenate([np.array([first_bit], dtype=np.int64),
                             *_boundaries(np, mv, first_bit, end)])
    lengths = np.empty_like(starts)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])  # np.diff: three times slower
    lengths[-1] = end - starts[-1]
    values = np.empty(len(starts), dtype=bool)
    v0 = get_bit(data, first_bit)
    values[0::2] = v0
    values[1::2] = not v0
    return RunArrays(starts, lengths, values)


def _boundaries(np: ModuleType, mv: memoryview, first: int, end: int) -> Iterator[Any]:
    """Sorted int64 arrays of every bit position ``p`` in ``(first, end)`` where bit ``p``
    differs from bit ``p - 1``, one array per window of ``_RUN_ARRAY_WORDS`` words."""
    one, top, full = np.uint64(1), np.uint64(63), np.uint64((1 << 64) - 1)
    size = _RUN_ARRAY_WORDS
    t, high = np.empty(size, dtype=np.uint64), np.empty(size, dtype=np.uint64)
    carry = 0  # bit (window start - 1); any value will do before the first window
    word = first >> 6
    last_word = (end - 1) >> 6
    while word <= last_word:
        n = min(size, last_word + 1 - word)
        raw: bytes | memoryview = mv[word << 3:(word + n) << 3]
        if len(raw) < n << 3:  # the bitmap ends inside its last word: pad with zeros
            raw = bytes(raw) + bytes((n << 3) - len(raw))
        w = np.frombuffer(raw, dtype=np.uint64)
        if word > first >> 6 and (w.min() == full if carry else not w.any()):
            # Every bit equals the one before the window: no boundary, the carry stays. One
            # reading pass, where finding boundaries costs several passes over the window.
            word += n
            continue
        tt = t[:n]
        np.left_shift(w, one, out=tt)
        tt[0] |= np.uint64(carry)
        np.right_shift(w[:-1], top, out=high[:n - 1])
        np.bitwise_or(tt[1:], high[:n - 1], out=tt[1:])
        np.bitwise_xor(tt, w, out=tt)
        carry = int(w[-1]) >> 63
        at = np.flatnonzero(tt)
        if len(at):
            pos = _set_bit_positions(np, at, tt.take(at))
            pos += word << 6
            lo = np.searchsorted(pos, first, side="right") if word <= first >> 6 else 0
            hi = np.searchsorted(pos, end, side="left") if word + n > last_word else len(pos)
            yield pos[lo:hi]
        word += n


def _set_bit_positions(np: ModuleType, at: Any, words: Any) -> Any:
    """Ascending ``64 * at[i] + b`` for every set bit ``b`` of ``words[i]`` (none zero)."""
    one = np.uint64(1)

    def lowest_bit_index(single: Any) -> Any:
        # A power of two converts to float64 exactly: its exponent field is the bit index.
        return (single.astype(np.float64).view(np.int64) >> 52) - 1023

    at = at << 6
    if not np.any(words & (words - one)):  # one boundary per word
        at += lowest_bit_index(words)
        return at
    # Several boundaries in some words: the k-th lowest set bit of word i goes to slot
    # offset[i] + k, so peeling one lowest bit per word per round fills the output in order.
    counts = _popcounts(np, words).astype(np.int64)
    slot = np.cumsum(counts) - counts
    out = np.empty(int(counts.sum()), dtype=np.int64)
    words = words.copy()
    while len(words):
        low = words & (~words + one)
        out[slot] = at + lowest_bit_index(low)
        words ^= low
        left = words != 0
        words, at, slot = words[left], at[left], slot[left] + 1
    return out
