"""Changing an image's virtual size, crash-safely (spec: "Resizing"; rules RESIZE-GROW,
RESIZE-SHRINK).

Every byte goes through the image's file layer (:mod:`addcow_ref.engine.fileio`), so the
crash tests can stop a resize at each write and fsync and check what a power loss leaves.
"""

from __future__ import annotations

import functools

from addcow_ref.engine.imagebase import ImageBase, os_error
from addcow_ref.format.bitmap import padding_mask
from addcow_ref.format.constants import MAX_VIRTUAL_SIZE, SECTOR_SIZE
from addcow_ref.format.errors import FormatError, ImageFileError
from addcow_ref.format.header import bitmap_length_for, cluster_count_for

__all__ = ["BITMAP_PIECE", "ResizeMixin"]

#: Largest piece of new bitmap bytes written at a time when growing.
BITMAP_PIECE = 1 << 20


class ResizeMixin(ImageBase):
    """``resize`` of :class:`~addcow_ref.engine.image.AddCowImage`."""

    def resize(self, new_size: int) -> None:
        """Change the virtual size (RESIZE-GROW, RESIZE-GROW-ORDER, RESIZE-SHRINK,
        RESIZE-SHRINK-ORDER), crash-safely, each step durable before the next.

        Growing from S0 to S1 (RESIZE-GROW-ORDER):

        1. allocate the partial old last cluster, if S0 is not cluster-aligned and it is not
           allocated, as an ordinary allocating write (its head copied from the backing file);
           flush (image file synced, then its bitmap byte written and synced);
        2. make the image file read as zeros over [S0, S1): a regular file is cut to S0 and
           extended to S1 (so it is exactly S1 long however long it was: IMG-LENGTH), a block
           device is zeroed or punched there; sync it;
        3. set the bits of the new clusters in the add-cow file: the padding bits of the old
           last bitmap byte and every byte past the old bitmap (the new padding bits 0); sync;
        4. write the header with S1; sync.

        A crash before 4 leaves the old image, whose set padding bits and trailing bytes readers
        ignore (BMP-PADDING, BMP-TRAILING); after 4 the new one, in which every new byte reads
        zeros. ``all_allocated`` stays true throughout: every bit of the old and the new size is
        1 at every step. Shrinking from S0 to S1 (RESIZE-SHRINK, then RESIZE-SHRINK-ORDER):

        1. flush; write the header with S1; sync (the old bits past S1 are now padding bits and
           trailing bytes, which readers ignore);
        2. clear the new padding bits, truncate the add-cow file after the new bitmap; sync;
        3. truncate a regular image file to S1; sync.

        Unknown autoclear bits are cleared durably before step 1 (FEAT-AUTOCLEAR-DURABLE).
        """
        self._check_open()
        self._check_writable()
        if new_size < 0 or new_size > MAX_VIRTUAL_SIZE:
            raise FormatError(f"new size {new_size} is outside 0 .. 2^63 - 1", file=self.path,
                              field="virtual_size", rule_id="HDR-VIRTUAL-SIZE-MAX")
        if new_size % SECTOR_SIZE:
            raise FormatError(f"new size {new_size} is not a multiple of {SECTOR_SIZE}",
                              file=self.path, field="virtual_size",
                              rule_id="HDR-VIRTUAL-SIZE-ALIGN")
        with self._rw.exclusive():
            self._check_open()
            self._prepare_modify()
            if new_size > self.virtual_size:
                self._grow(new_size)
            elif new_size < self.virtual_size:
                self._shrink(new_size)
            else:
                self._flush_locked()  # a resize is durable when it returns, even a no-op

    def _grow(self, new_size: int) -> None:
        d = self._desc
        cb = d.cluster_bits
        old_size = d.virtual_size
        old_count = d.cluster_count
        new_count = cluster_count_for(new_size, cb)
        # 1. the partial old last cluster, allocated like any write, then a flush
        if old_size & (d.cluster_size - 1) and not self.all_allocated:
            last = old_count - 1
            if not self._cache.get(last):
                start = last << cb
                self._write_raw(start, self._read_backing(start, old_size - start))
                self._cache.set_range(last, 1)
        self._flush_locked()
        self._cache.invalidate()
        # 2. the image file reads zeros over [old_size, new_size)
        self._zero_grown(old_size, new_size)
        # 3. the new clusters' bits, old padding bits included
        self._set_grown_bits(old_count, new_count)
        # 4. the header
        self._rewrite_header(virtual_size=new_size)
        self._cache.cluster_count = new_count

    def _zero_grown(self, old_size: int, new_size: int) -> None:
        try:
            if self._fs.kind(self.image_path) == "block":
                if self._raw.size() < new_size:
                    raise ImageFileError(f"block device is smaller than {new_size} bytes",
                                         file=self.image_path, rule_id="IMG-SIZE")
                self._raw.punch_hole(old_size, new_size - old_size)
            else:
                if self._raw.size() > old_size:
                    self._raw.truncate(old_size)  # old bytes past S0 must not reappear
                self._raw.truncate(new_size)
        except OSError as e:
            raise os_error(e, self.image_path, old_size, "resize") from None
        self._sync_image_file(old_size)

    def _set_grown_bits(self, old_count: int, new_count: int) -> None:
        """Write ones for clusters ``[old_count, new_count)`` straight to the add-cow file (the
        cache still describes the old size, whose padding bits it keeps 0), then sync."""
        bo = self._desc.bitmap_offset
        first = old_count >> 3
        new_len = -(-new_count // 8)
        pos = first
        while pos < new_len:
            n = min(BITMAP_PIECE, new_len - pos)
            buf = bytearray(b"\xff" * n)
            if pos == first and old_count & 7:
                at = bo + first
                old = self._meta_io("bitmap read", functools.partial(self._meta.pread, at, 1))
                buf[0] = (old[0] if old else 0) | (0xFF << (old_count & 7)) & 0xFF
            if pos + n == new_len:
                buf[-1] &= ~padding_mask(new_count) & 0xFF
            self._meta_io("bitmap write", functools.partial(self._meta.pwrite, bo + pos, buf))
            pos += n
        if self._meta_io("size", self._meta.size) > bo + new_len:
            self._meta_io("bitmap write", lambda: self._meta.truncate(bo + new_len))
        self._sync_addcow_file()

    def _shrink(self, new_size: int) -> None:
        d = self._desc
        cb = d.cluster_bits
        bo = d.bitmap_offset
        new_count = cluster_count_for(new_size, cb)
        new_len = bitmap_length_for(new_size, cb)
        # 1. flush, then the header: until it is durable the old image stays whole
        self._flush_locked()
        self._cache.invalidate()
        self._rewrite_header(virtual_size=new_size)
        self._cache.cluster_count = new_count
        # 2. clear the new padding bits, cut the add-cow file after the new bitmap
        mask = padding_mask(new_count)
        if mask and new_len:
            last = bo + new_len - 1
            old = self._meta_io("bitmap read", lambda: self._meta.pread(last, 1))
            if old and old[0] & mask:
                kept = bytes([old[0] & ~mask & 0xFF])
                self._meta_io("bitmap write", lambda: self._meta.pwrite(last, kept))
        self._meta_io("truncate", lambda: self._meta.truncate(bo + new_len))
        self._sync_addcow_file()
        # 3. cut a regular image file to the new size
        self._cut_image_file_to(new_size)
