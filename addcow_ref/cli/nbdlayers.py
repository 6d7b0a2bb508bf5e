"""The NBD plugin's data path: guest reads straight into nbdkit's buffer, and block status that
tells holes from data.

nbdkit's Python plugin (API version 2) hands ``pread`` a writable buffer. Reading the bytes
into it with ``os.preadv`` skips the two copies and the fresh ``bytes`` object per request that
``buf[:] = image.read(...)`` costs (for requests above malloc's mmap threshold, an
``mmap``/``munmap`` pair each). That is sound for the files whose bytes *are* the guest's at the
same offsets, which the library's public API names:

* the image file (:attr:`AddCowImage.image_path`): an allocated cluster is read from it 1:1
  (spec: "Reading"). The library's own descriptor is private, so :class:`Layers` opens the file
  once more, read-only and without a lock (the library's locks are OFD locks on its own
  descriptions, which a second read-only description neither takes nor releases);
* a raw backing file (:meth:`Backing.raw_file`), up to its size; zeros past its end
  (READ-PAST-BACKING-EOF).

Which of the two supplies a byte is asked of the library (:meth:`AddCowImage.is_allocated`,
under its request lock), so the bitmap is never read behind its back. A bit, once set, is never
cleared while the image is open (a discard keeps it, DISCARD-KEEP-BITS; only offline verbs that
need the image's exclusive lock clear bits), so an "allocated" answer stays true for the life of
the server: :class:`Layers` remembers it in a bit per cluster (for disks of up to
:data:`KNOWN_CLUSTERS_LIMIT` clusters) and reads remembered clusters without asking again, which
is most of the per-request cost of a 4 KiB read. An "unallocated" answer is remembered too, in a
second bit per cluster that every write through the server clears (:meth:`Layers.forget`,
called after the library's write returns and before nbdkit replies); this server is the image's
only writer (it holds the image's exclusive lock). A reader stores its answer only if no write
ended while it asked (a write counter, both under one lock), so a write that completed is never
hidden by an older answer; a concurrent first write may land just after a read's answer, which
NBD allows for overlapping requests in flight. Every other case (an add-cow
backing file) goes through :meth:`AddCowImage.read`. Writes never come here: they go through
the library, which owns allocation and its locks.

Block status (NBD ``base:allocation``) is the library's map with each range split by the
``SEEK_DATA``/``SEEK_HOLE`` answers of the file that supplies it, as ``addcow map`` splits it
(:func:`addcow_ref.ops.holes.split_extents` over :class:`~addcow_ref.ops.holes.LayerFiles`): a
hole of the image file inside an allocated cluster, a hole of a raw backing file, or a range no
layer holds reads as zeros and is reported ``HOLE|ZERO``, so ``nbdcopy`` and ``qemu-img
convert`` keep the copy thin.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Any, cast

from addcow_ref.engine.fileio import BlockFile
from addcow_ref.engine.image import AddCowImage
from addcow_ref.format.bitmap import RunColumn
from addcow_ref.ops.holes import LayerFiles

__all__ = ["EXTENTS_LIMIT", "EXTENT_DATA", "EXTENT_HOLE", "EXTENT_ZERO", "KNOWN_CLUSTERS_LIMIT",
           "Layers"]

#: Largest disk, in clusters, whose allocated clusters :class:`Layers` remembers (16 MiB of bits).
KNOWN_CLUSTERS_LIMIT = 1 << 27

#: NBD ``base:allocation`` flags, fixed by the NBD protocol (nbdkit.EXTENT_HOLE/ZERO).
EXTENT_DATA = 0
EXTENT_HOLE = 1
EXTENT_ZERO = 2
_HOLE_ZERO = EXTENT_HOLE | EXTENT_ZERO

#: Map rows turned into Python ints at a time by :meth:`Layers.extents`.
_ROWS_AT_ONCE = 4096

#: Most extents one block-status reply carries: nbdkit accepts a reply that covers less than
#: was asked (the client asks again from where it ends), and a bound keeps a request for a whole
#: run-dense disk from mapping all of it at once.
EXTENTS_LIMIT = 4096

_ZEROS = memoryview(bytes(1 << 20))

Extent3 = tuple[int, int, int]


def _zero(view: memoryview) -> None:
    pos, n = 0, len(view)
    while pos < n:
        k = min(n - pos, len(_ZEROS))
        view[pos:pos + k] = _ZEROS[:k]
        pos += k


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Read into ``view`` from ``offset`` until it is full or the file ends; bytes read."""
    got, n = 0, len(view)
    while got < n:
        k = os.preadv(fd, [view[got:]], offset + got)
        if k <= 0:
            break
        got += k
    return got


def _add(out: list[Extent3], start: int, length: int, flags: int,
         limit: int = 1 << 62) -> bool:
    """Append ``(start, length, flags)`` to ``out``, merged into its last extent when that one
    ends at ``start`` with the same flags; False (and nothing added) when that would take a
    new extent past ``limit``: the reply is then complete, its last extent whole."""
    if length <= 0:
        return True
    if out:
        s, n, f = out[-1]
        if f == flags and s + n == start:
            out[-1] = (s, n + length, flags)
            return True
    if len(out) >= limit:
        return False
    out.append((start, length, flags))
    return True


class Layers:
    """Read-only access to the files that hold an open image's bytes 1:1; see the module
    docstring. :meth:`close` releases the image file's extra descriptor (not the image)."""

    def __init__(self, image: AddCowImage) -> None:
        self.image = image
        self._files = LayerFiles(image)
        self._own = self._files.image_file
        backing = image.backing
        raw = backing.raw_file() if backing is not None else None
        fd = raw.fileno() if raw is not None else None
        self._has_backing = backing is not None
        self._backing_fd = fd
        self._backing_size = int(backing.size) if backing is not None and fd is not None else 0
        self._cb = cb = int(image.cluster_bits)
        clusters = (int(image.virtual_size) + (1 << cb) - 1) >> cb
        self._known: bytearray | None = None
        self._unallocated: bytearray | None = None
        if clusters <= KNOWN_CLUSTERS_LIMIT:
            fill = 0xFF if image.all_allocated else 0
            self._known = bytearray([fill]) * ((clusters + 7) >> 3)
            self._unallocated = bytearray((clusters + 7) >> 3)
        self._lock = threading.Lock()
        self._writes = 0

    def _clusters(self, start: int, length: int) -> range:
        return range(start >> self._cb, ((start + length - 1) >> self._cb) + 1)

    def _remember(self, start: int, length: int, allocated: bool, writes: int) -> None:
        """The library said clusters ``[start, start + length)`` are (un)allocated, when
        ``writes`` writes had ended."""
        if allocated:
            known = self._known
            if known is not None:  # for good: no lock needed
                for c in self._clusters(start, length):
                    known[c >> 3] |= 1 << (c & 7)
            return
        holes = self._unallocated
        if holes is None:
            return
        with self._lock:
            if self._writes != writes:
                return  # a write ended meanwhile: the answer may be stale
            for c in self._clusters(start, length):
                holes[c >> 3] |= 1 << (c & 7)

    def forget(self, offset: int, length: int) -> None:
        """A write through the server into ``[offset, offset + length)`` has returned: its
        clusters may be allocated now."""
        holes = self._unallocated
        if holes is None or length <= 0:
            return
        with self._lock:
            self._writes += 1
            for c in self._clusters(offset, length):
                holes[c >> 3] &= ~(1 << (c & 7)) & 0xFF

    def _read_unallocated(self, part: memoryview, pos: int) -> None:
        n = len(part)
        if self._backing_fd is not None:
            m = max(0, min(n, self._backing_size - pos))
            got = _pread_into(self._backing_fd, part[:m], pos) if m else 0
            _zero(part[got:])
        elif not self._has_backing:
            _zero(part)
        else:
            part[:] = self.image.read(pos, n)

    def close(self) -> None:
        self._files.close()

    def _status(self, c: int) -> int:
        """What is remembered about cluster ``c``: 1 allocated, 0 unallocated, -1 nothing."""
        known, holes = self._known, self._unallocated
        if known is None or holes is None:
            return -1
        byte, bit = c >> 3, 1 << (c & 7)
        if known[byte] & bit:
            return 1
        return 0 if holes[byte] & bit else -1

    def read_into(self, buf: memoryview, offset: int) -> None:
        """Fill ``buf`` with the guest bytes at ``offset``.

        The request is walked as runs of clusters whose status is remembered (one read per
        run, from the file that holds it); only a cluster with nothing remembered asks the
        library, for the run that starts there, and that answer is remembered for the next
        request. A sequential copy of a half-allocated disk (every other cluster) then costs
        one read per cluster and no library call after the first pass over each cluster."""
        img = self.image
        end = offset + len(buf)
        own_fd = self._own.fileno()
        assert own_fd is not None
        known, holes, cb = self._known, self._unallocated, self._cb
        remembered = (known is not None and holes is not None
                      and 0 <= offset < end <= img.virtual_size)
        if known is not None and holes is not None and remembered:
            c = offset >> cb
            if c == (end - 1) >> cb:  # one cluster, its status remembered
                byte, bit = c >> 3, 1 << (c & 7)
                if known[byte] & bit:
                    if _pread_into(own_fd, buf, offset) < len(buf):
                        raise OSError(errno.EIO, "image file ends before the virtual size "
                                      "[IMG-SIZE]", img.image_path)
                    return
                if holes[byte] & bit:
                    self._read_unallocated(buf, offset)
                    return
        pos = offset
        while pos < end:
            c = pos >> cb
            status = self._status(c) if remembered else -1
            if status >= 0:  # extend over the following clusters remembered alike
                stop = min(end, (c + 1) << cb)
                while stop < end and self._status(stop >> cb) == status:
                    stop = min(end, stop + (1 << cb))
                allocated, n, writes = bool(status), stop - pos, -1
            else:
                writes = self._writes
                allocated, n = img.is_allocated(pos, end - pos)
                if n <= 0:  # is_allocated clips to the disk: the range was checked by the caller
                    raise ValueError(f"range [{offset}, {end}) is outside the disk "
                                     f"[0, {img.virtual_size})")
            part = buf[pos - offset:pos - offset + n]
            if allocated:
                if _pread_into(own_fd, part, pos) < n:
                    raise OSError(errno.EIO, "image file ends before the virtual size [IMG-SIZE]",
                                  img.image_path)
            else:
                self._read_unallocated(part, pos)
            if writes >= 0:
                self._remember(pos, n, allocated, writes)
            pos += n

    def extents(self, offset: int, count: int, limit: int = EXTENTS_LIMIT) -> list[Extent3]:
        """``(offset, length, flags)`` from ``offset`` on, covering ``[offset, offset + count)``
        clipped to the disk, or a prefix of it once ``limit`` extents are collected; adjacent
        ranges with equal flags merged.

        The library's map comes as columns (:meth:`AddCowImage.iter_extent_arrays`: no object
        per run), and each file's data segments are asked once per reply, from where the reply
        first needs that file, by a cursor (:class:`_Segments`) that every row of that file
        continues: a half-allocated disk costs ``SEEK_DATA``/``SEEK_HOLE`` calls per data
        segment of the image file, and two for a fully written backing file, instead of two
        per extent. The rows are those of :func:`~addcow_ref.ops.holes.split_extents` over the
        same map and files (``tests/addcow_ref/test_nbdlayers_paths.py`` compares the two);
        a reply that reaches ``limit`` extents ends with its last extent whole."""
        img = self.image
        end = min(offset + count, int(img.virtual_size))
        out: list[Extent3] = []
        if end <= offset:
            return out
        files = self._files.files
        cursors: dict[int, _Segments] = {}
        for cols in img.iter_extent_arrays(offset, end - offset):
            rows = len(cols.start)
            for lo in range(0, rows, _ROWS_AT_ONCE):  # a window may hold millions of rows
                hi = min(rows, lo + _ROWS_AT_ONCE)
                for s, n, depth, data in zip(_part(cols.start, lo, hi),
                                             _part(cols.length, lo, hi),
                                             _part(cols.depth, lo, hi),
                                             _part(cols.data, lo, hi), strict=True):
                    file = files[depth] if data and 0 <= depth < len(files) else None
                    if not data:
                        pieces = [(s, n, False)]
                    elif file is None:  # a layer whose file is not known: data (holes.py)
                        pieces = [(s, n, True)]
                    else:
                        cur = cursors.get(depth)
                        if cur is None:
                            cur = cursors[depth] = _Segments(file, s, end)
                        pieces = cur.pieces(s, n)
                    for ps, pn, pdata in pieces:
                        if not _add(out, ps, pn, EXTENT_DATA if pdata else _HOLE_ZERO, limit):
                            return out
        return out


class _Segments:
    """The data segments of ``file`` over ``[start, end)``, asked lazily and in order: the
    ``(start, length)`` pieces of :meth:`BlockFile.data_segments`, consumed by ascending,
    non-overlapping :meth:`pieces` queries."""

    def __init__(self, file: BlockFile, start: int, end: int) -> None:
        self._it = file.data_segments(start, end - start)
        self._seg: tuple[int, int] | None = None  # the current segment, or None before it
        self._done = False
        self._end = end

    def _next(self) -> None:
        nxt = next(self._it, None)
        if nxt is None:
            self._done = True
            self._seg = (self._end, 0)
        else:
            self._seg = nxt

    def pieces(self, start: int, length: int) -> list[tuple[int, int, bool]]:
        """``[start, start + length)`` as ``(start, length, is data)`` pieces."""
        out: list[tuple[int, int, bool]] = []
        pos, stop = start, start + length
        if self._seg is None:
            self._next()
        while pos < stop:
            assert self._seg is not None
            s, n = self._seg
            if s + n <= pos and not self._done:  # this segment ends before pos: the next
                self._next()
                continue
            if pos < s:  # a hole up to the segment (or to the end when there is none)
                k = min(stop, s) - pos
                out.append((pos, k, False))
                pos += k
                continue
            k = min(stop, s + n) - pos  # inside the segment
            out.append((pos, k, True))
            pos += k
        return out


def _part(column: RunColumn, lo: int, hi: int) -> list[int]:
    """Values ``[lo, hi)`` of a map column as plain ints (numpy and ``array.array`` columns
    both slice; the column protocol only promises indexing)."""
    part: RunColumn = cast(Any, column)[lo:hi]
    return [int(v) for v in part.tolist()]
