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

from addcow_ref.engine.image import AddCowImage
from addcow_ref.ops.holes import LayerFiles, split_extents

__all__ = ["EXTENTS_LIMIT", "EXTENT_DATA", "EXTENT_HOLE", "EXTENT_ZERO", "KNOWN_CLUSTERS_LIMIT",
           "Layers"]

#: Largest disk, in clusters, whose allocated clusters :class:`Layers` remembers (16 MiB of bits).
KNOWN_CLUSTERS_LIMIT = 1 << 27

#: NBD ``base:allocation`` flags, fixed by the NBD protocol (nbdkit.EXTENT_HOLE/ZERO).
EXTENT_DATA = 0
EXTENT_HOLE = 1
EXTENT_ZERO = 2
_HOLE_ZERO = EXTENT_HOLE | EXTENT_ZERO

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


def _add(out: list[Extent3], start: int, length: int, flags: int) -> None:
    if length <= 0:
        return
    if out:
        s, n, f = out[-1]
        if f == flags and s + n == start:
            out[-1] = (s, n + length, flags)
            return
    out.append((start, length, flags))


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

    def read_into(self, buf: memoryview, offset: int) -> None:
        """Fill ``buf`` with the guest bytes at ``offset``."""
        img = self.image
        end = offset + len(buf)
        pos = offset
        own_fd = self._own.fileno()
        assert own_fd is not None
        known, holes, cb = self._known, self._unallocated, self._cb
        if known is not None and holes is not None and 0 <= offset < end <= img.virtual_size:
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
        while pos < end:
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
            self._remember(pos, n, allocated, writes)
            pos += n

    def extents(self, offset: int, count: int, limit: int = EXTENTS_LIMIT) -> list[Extent3]:
        """``(offset, length, flags)`` from ``offset`` on, covering ``[offset, offset + count)``
        clipped to the disk, or a prefix of it once ``limit`` extents are collected; adjacent
        ranges with equal flags merged."""
        img = self.image
        end = min(offset + count, int(img.virtual_size))
        out: list[Extent3] = []
        if end <= offset:
            return out
        for span in split_extents(img.iter_map(offset, end - offset), self._files.files):
            if len(out) >= limit:
                break
            _add(out, span.start, span.length, EXTENT_DATA if span.data else _HOLE_ZERO)
        return out
