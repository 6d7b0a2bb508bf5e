"""A bounded cache of COW bitmap chunks (spec: "COW bitmap"; the v9 patch's cache, done right).

The bitmap of a 1 PiB disk with 64 KiB clusters is 2 GiB, so it is never loaded whole: it is
read and written in aligned chunks kept in a small LRU table. Stefan Hajnoczi's review of the v9
patch named the three ways such a cache breaks under parallel requests; this one answers each:

1. *No duplicate entries for one chunk.* A missing chunk gets a placeholder entry in the table
   before its read starts (under the table lock); a second thread that wants the same chunk finds
   the placeholder and waits for the read instead of reading again.
2. *No table held across blocking I/O.* The table lock is held only for dictionary and in-memory
   bit operations, never across a read, write or fsync. An entry in use is *pinned* (a reference
   count); eviction skips pinned entries, so nobody's chunk disappears under them.
3. *No two writers allocating one cluster at once* is the image's job (per-cluster allocation
   ownership, :class:`~addcow_ref.engine.locks.ClusterOwnership`); this cache only guarantees
   that setting bits is atomic.

I/O errors leave as :class:`AddCowError` naming the add-cow file and the byte offset.

Padding bits (the bits of the last byte past ``cluster_count``) are cleared in memory as the
last chunk is loaded: a reader never counts them as allocation, and a write-back writes them 0
(BMP-PADDING; set ones are only the trace of an interrupted resize).

Ordering (rule WRITE-DATA-BEFORE-BIT): bits are set in memory after their clusters' data has been
written to the image file, and a chunk reaches the disk only through :meth:`_write_back`, which
takes its snapshot first and then calls ``before_writeback`` (the image's ``fsync`` of the raw
image file) before writing it. Every bit in a snapshot therefore had its data written before the
fsync started, so no bit can reach the disk before its data is durable.
"""

from __future__ import annotations

import errno
import threading
from collections import OrderedDict
from collections.abc import Callable
from types import ModuleType
from typing import Any

from addcow_ref.engine.fileio import BlockFile
from addcow_ref.format.bitmap import (
    RunArrays,
    count_ones,
    expect_scan,
    get_bit,
    iter_runs,
    numpy_for_scan,
    padding_mask,
    run_arrays,
    set_bit_range,
)
from addcow_ref.format.errors import AddCowError

__all__ = ["DEFAULT_CAPACITY", "DEFAULT_CHUNK_SIZE", "BitmapCache"]

DEFAULT_CHUNK_SIZE = 64 * 1024
DEFAULT_CAPACITY = 16
#: :meth:`BitmapCache.runs` hands a chunk's range to numpy from this many bits on (shorter:
#: iter_runs, whose per-call cost is lower).
_RUN_ARRAYS_MIN_BITS = 1 << 12


class _Entry:
    __slots__ = ("data", "dirty", "error", "gen", "index", "io_lock", "loaded", "pins")

    def __init__(self, index: int) -> None:
        self.index = index
        self.data = bytearray()
        self.dirty = False
        self.gen = 0
        self.pins = 1
        self.error: BaseException | None = None
        self.loaded = threading.Event()
        # Serialises write-backs of this one chunk, so an older snapshot never lands after a
        # newer one. Held across I/O, but it guards one chunk's write, not the table.
        self.io_lock = threading.Lock()


class BitmapCache:
    """Chunks of the bitmap at ``bitmap_offset`` in ``file``, for ``cluster_count`` clusters."""

    def __init__(
        self,
        file: BlockFile,
        bitmap_offset: int,
        cluster_count: int,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        capacity: int = DEFAULT_CAPACITY,
        before_writeback: Callable[[], None] | None = None,
    ) -> None:
        if chunk_size <= 0 or capacity <= 0:
            raise ValueError("chunk_size and capacity must be positive")
        self._file = file
        self._offset = bitmap_offset
        self._chunk = chunk_size
        self._chunk_bits = chunk_size * 8
        self._capacity = capacity
        self._before_writeback = before_writeback or (lambda: None)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._unsynced = False
        self.cluster_count = cluster_count
        #: Chunk reads from the file, for tests and benchmarks (never two for one chunk at once).
        self.reads = 0

    def _error(self, e: OSError, what: str, offset: int | None) -> AddCowError:
        name = errno.errorcode.get(e.errno or 0, "")
        return AddCowError(f"bitmap {what} failed: {e.strerror or e}"
                           + (f" ({name})" if name else ""), file=self._file.path,
                           offset=offset)

    @property
    def length(self) -> int:
        return -(-self.cluster_count // 8)

    # -- entry life cycle -------------------------------------------------------------------

    def _pin(self, index: int) -> _Entry:
        with self._lock:
            entry = self._entries.get(index)
            if entry is not None:
                entry.pins += 1
                self._entries.move_to_end(index)
                load = False
            else:
                entry = _Entry(index)
                self._entries[index] = entry
                load = True
        if load:
            try:
                start = index * self._chunk
                size = min(self._chunk, self.length - start)
                try:
                    data = self._file.pread(self._offset + start, size)
                except OSError as e:
                    raise self._error(e, "read", self._offset + start) from None
                self.reads += 1
                entry.data = bytearray(data.ljust(size, b"\0"))
                if start + size == self.length and size:
                    # Padding bits stand for no cluster: readers ignore them and writers write
                    # them 0 (BMP-PADDING), so they are cleared as the last chunk is loaded.
                    entry.data[-1] &= ~padding_mask(self.cluster_count) & 0xFF
            except BaseException as e:
                entry.error = e
                with self._lock:
                    if self._entries.get(index) is entry:
                        del self._entries[index]
                raise
            finally:
                entry.loaded.set()
        else:
            entry.loaded.wait()
            if entry.error is not None:
                self._unpin(entry)
                raise entry.error
        return entry

    def _unpin(self, entry: _Entry) -> None:
        with self._lock:
            entry.pins -= 1
            over = len(self._entries) > self._capacity
        if over:
            self._evict()

    def _evict(self) -> None:
        while True:
            with self._lock:
                if len(self._entries) <= self._capacity:
                    return
                victim = next((e for e in self._entries.values()
                               if e.pins == 0 and e.loaded.is_set() and e.error is None), None)
                if victim is None:
                    return  # everything is in use: over capacity until pins drop
                if not victim.dirty:
                    del self._entries[victim.index]
                    continue
                victim.pins += 1
            try:
                self._write_back([victim])
            finally:
                with self._lock:
                    victim.pins -= 1

    def _write_back(self, entries: list[_Entry]) -> None:
        """Snapshot, fsync the data (``before_writeback``), then write the chunks."""
        entries = sorted(entries, key=lambda e: e.index)
        held: list[_Entry] = []
        try:
            snaps: list[tuple[_Entry, int, bytes]] = []
            for e in entries:
                e.io_lock.acquire()
                held.append(e)
                with self._lock:
                    if e.dirty:
                        snaps.append((e, e.gen, bytes(e.data)))
            if not snaps:
                return
            self._before_writeback()
            for e, _, data in snaps:
                at = self._offset + e.index * self._chunk
                try:
                    self._file.pwrite(at, data)
                except OSError as err:
                    raise self._error(err, "write", at) from None
            self._unsynced = True
            with self._lock:
                for e, gen, _ in snaps:
                    if e.gen == gen:
                        e.dirty = False
        finally:
            for e in held:
                e.io_lock.release()

    # -- queries ----------------------------------------------------------------------------

    def get(self, cluster: int) -> bool:
        """The bit of ``cluster``.

        A loaded chunk answers under the table lock alone, without a pin: its bits change only
        under that lock (``set_range``, ``clear_range``) and it cannot be evicted while the lock
        is held. This is the lookup of every single-cluster read; the pinned path below loads
        a chunk that is not in memory."""
        index, bit = divmod(cluster, self._chunk_bits)
        with self._lock:
            hot = self._entries.get(index)
            if hot is not None and hot.loaded.is_set() and hot.error is None:
                self._entries.move_to_end(index)
                return get_bit(hot.data, bit)
        entry = self._pin(index)
        try:
            return get_bit(entry.data, bit)
        finally:
            self._unpin(entry)

    def _each_chunk(self, first: int, end: int,
                    visit: Callable[[_Entry, int, int, int], None]) -> None:
        """Call ``visit(entry, base, lo, hi)`` for each chunk holding clusters of
        ``[first, end)``, in order, with the chunk pinned only during the call: ``base`` is the
        chunk's first cluster, ``[lo, hi)`` the chunk-relative bits of the range."""
        pos = first
        while pos < end:
            index = pos // self._chunk_bits
            base = index * self._chunk_bits
            stop = min(end, base + self._chunk_bits)
            entry = self._pin(index)
            try:
                visit(entry, base, pos - base, stop - base)
            finally:
                self._unpin(entry)
            pos = stop

    def runs(self, first: int, count: int) -> list[tuple[int, int, bool]]:
        """Maximal runs ``(first_cluster, n_clusters, bit)`` covering ``[first, first + count)``.

        Each chunk is pinned only while its runs are computed, so callers may do I/O between
        runs without holding any part of the cache. A long stretch of a chunk goes through
        :func:`~addcow_ref.format.bitmap.run_arrays` (numpy finds every boundary at once and
        the tuples come out of one ``zip``) when numpy is loaded, or once enough bitmap has
        been scanned to load it; short ones, the common case of a read or write, through
        ``iter_runs``.
        """
        out: list[tuple[int, int, bool]] = []

        def visit(entry: _Entry, base: int, lo: int, hi: int) -> None:
            # Chosen per chunk: a long scan that passes numpy's import threshold part way
            # (numpy_for_scan counts the bytes) takes numpy from the next chunk on.
            if hi - lo >= _RUN_ARRAYS_MIN_BITS and numpy_for_scan((hi - lo) >> 3) is not None:
                chunk_runs: Any = run_arrays(entry.data, lo, hi - lo).tolist()
            else:
                chunk_runs = iter_runs(entry.data, lo, hi - lo)
            for start, n, value in chunk_runs:
                if out and out[-1][2] == value and out[-1][0] + out[-1][1] == base + start:
                    s, m, _ = out[-1]
                    out[-1] = (s, m + n, value)
                else:
                    out.append((base + start, n, value))

        self._each_chunk(first, min(first + count, self.cluster_count), visit)
        return out

    def run_arrays(self, np: ModuleType, first: int, count: int) -> RunArrays:
        """:meth:`runs` as numpy columns (int64 starts and lengths in clusters, bool values),
        merged across chunks, for callers that handle a window of runs at once (the engine's
        map, :meth:`MapMixin.iter_extent_arrays
        <addcow_ref.engine.extents.MapMixin.iter_extent_arrays>`)."""
        end = min(first + count, self.cluster_count)
        starts: list[Any] = []
        values: list[Any] = []

        def visit(entry: _Entry, base: int, lo: int, hi: int) -> None:
            r = run_arrays(entry.data, lo, hi - lo)
            # Short ranges come back as array.array: the same numbers, as numpy columns.
            s = np.asarray(r.starts, dtype=np.int64)
            starts.append(s + base if base else s)
            values.append(np.asarray(r.values, dtype=bool))

        if end > first:
            self._each_chunk(first, end, visit)
        if not starts:
            empty = np.empty(0, dtype=np.int64)
            return RunArrays(empty, empty.copy(), np.empty(0, dtype=bool))
        s = np.concatenate(starts) if len(starts) > 1 else starts[0]
        v = np.concatenate(values) if len(values) > 1 else values[0]
        if len(starts) > 1:  # a run may go on across a chunk boundary: one run, not two
            keep = np.empty(len(v), dtype=bool)
            keep[0] = True
            np.not_equal(v[1:], v[:-1], out=keep[1:])
            s, v = s[keep], v[keep]
        lengths = np.empty_like(s)
        np.subtract(s[1:], s[:-1], out=lengths[:-1])
        lengths[-1] = end - s[-1]
        return RunArrays(s, lengths, v)

    def count_ones(self) -> int:
        """Number of allocated clusters (reads the bitmap chunk by chunk)."""
        expect_scan(self.length)
        total = 0

        def visit(entry: _Entry, base: int, lo: int, hi: int) -> None:
            nonlocal total
            total += count_ones(entry.data)

        self._each_chunk(0, self.cluster_count, visit)
        return total

    # -- updates ----------------------------------------------------------------------------

    def set_range(self, first: int, count: int) -> None:
        """Mark clusters ``[first, first + count)`` allocated (in memory; durable on flush)."""
        end = first + count
        if first < 0 or end > self.cluster_count:
            raise IndexError(f"clusters [{first}, {end}) outside 0..{self.cluster_count}")

        def visit(entry: _Entry, base: int, lo: int, hi: int) -> None:
            with self._lock:
                set_bit_range(entry.data, lo, hi - lo)
                entry.dirty = True
                entry.gen += 1

        self._each_chunk(first, end, visit)

    def flush(self) -> None:
        """Write every dirty chunk (after ``before_writeback``) and fsync the bitmap file."""
        with self._flush_lock:
            with self._lock:
                dirty = [e for e in self._entries.values() if e.dirty and e.error is None]
                for e in dirty:
                    e.pins += 1
            try:
                self._write_back(dirty)
            finally:
                with self._lock:
                    for e in dirty:
                        e.pins -= 1
            if self._unsynced:
                try:
                    self._file.fsync()
                except OSError as e:
                    raise self._error(e, "fsync", None) from None
                self._unsynced = False

    @property
    def dirty(self) -> bool:
        with self._lock:
            return any(e.dirty for e in self._entries.values())

    def invalidate(self) -> None:
        """Forget every chunk. Only for exclusive callers (resize), after :meth:`flush`."""
        with self._lock:
            if any(e.dirty or e.pins for e in self._entries.values()):
                raise RuntimeError("invalidate() with dirty or pinned bitmap chunks")
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
