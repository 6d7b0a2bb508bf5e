"""Hydrating an image: copying every cluster the backing chain still answers into the image
file, then setting ``all_allocated`` (spec: "Hydrating"; rules HYDRATE-ORDER, HYDRATE-COMPLETE,
FEAT-ALL-ALLOCATED-SET). Afterwards the image file alone is the guest disk.

Holes are kept: a raw backing file is copied segment by segment (``data_segments``, i.e.
``SEEK_DATA``/``SEEK_HOLE``), each data segment through the file layer's ``copy_range``
(``copy_file_range`` in the kernel when both files are OS files), and where the backing file has
a hole, or ends, the image file is punched (``punch_hole``) only where it may hold data. So a
sparse base hydrates into an equally sparse image file, and a huge, mostly empty disk stays
cheap.
"""

from __future__ import annotations

from collections.abc import Callable

from addcow_ref.engine.fileio import BlockFile
from addcow_ref.engine.imagebase import ImageBase, os_error
from addcow_ref.format.constants import CompatibleFeature
from addcow_ref.format.errors import AddCowError

__all__ = ["HYDRATE_CHUNK", "HydrateMixin"]

#: Largest piece hydrate copies (and holds allocation ownership for) at a time.
HYDRATE_CHUNK = 4 << 20


class HydrateMixin(ImageBase):
    """``hydrate`` of :class:`~addcow_ref.engine.image.AddCowImage`."""

    def hydrate(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Copy every unallocated cluster from the backing chain (zeros past its end), then set
        ``all_allocated``: afterwards the image file alone is the guest disk. ``progress`` is
        called with ``(bytes done, total)``, from inside the request (it may read the image,
        but not resize or close it).

        The order is HYDRATE-ORDER's: (1) allocate every 0-bit cluster as a write of no guest
        data; (2) flush, so every bit is 1 and durable; (3) truncate a longer regular image file
        to ``virtual_size`` and sync it; (4) set ``all_allocated`` and sync the header. An
        image that already has ``all_allocated`` only gets step 3."""
        self._check_open()
        self._check_writable()
        total = self.virtual_size
        with self._request():
            self._prepare_modify()
            if self.all_allocated:
                self._cut_image_file()
                if progress:
                    progress(total, total)
                return
            cb = self.cluster_bits
            count = self._desc.cluster_count
            step = max(1, HYDRATE_CHUNK >> cb)
            done = 0
            if progress:
                progress(0, total)
            for c, n, allocated in self._cluster_runs(0, count):
                pos = c
                while pos < c + n:
                    m = min(step, c + n - pos)
                    if not allocated:
                        self._hydrate_clusters(pos, m)
                    start = pos << cb
                    done += min((pos + m) << cb, total) - start
                    if progress:
                        progress(done, total)
                    pos += m
            self._flush_locked()  # step 2: every bit 1 and durable
            missing = count - self._cache.count_ones()
            if missing:
                raise AddCowError(f"{missing} cluster(s) still unallocated after hydrate",
                                  file=self.path)
            self._cut_image_file()  # step 3
            with self._header_lock:  # step 4
                self._rewrite_header(compatible_features=self._desc.compatible_features
                                     | CompatibleFeature.ALL_ALLOCATED)

    def _cut_image_file(self) -> None:
        """Truncate a regular image file longer than the disk to ``virtual_size`` and sync it
        (IMG-LENGTH): afterwards the image file, as a raw file, is the guest disk."""
        self._cut_image_file_to(self.virtual_size)

    def _hydrate_clusters(self, first: int, n: int) -> None:
        cb = self.cluster_bits
        with self._owners.own(range(first, first + n)):
            for c, m, allocated in self._cluster_runs(first, n):
                if allocated:
                    continue
                start = c << cb
                end = min((c + m) << cb, self.virtual_size)
                self._copy_from_backing(start, end - start)
                self._cache.set_range(c, m)

    def _copy_from_backing(self, start: int, length: int) -> None:
        """Fill ``[start, start + length)`` of the image file with what readers see there now:
        the backing file's bytes, zeros past its end, keeping the backing file's holes."""
        backing = self._backing
        in_backing = 0 if backing is None else max(0, min(length, backing.size - start))
        source = backing.raw_file() if backing is not None else None
        if in_backing and source is not None:
            # A raw backing file maps guest offsets 1:1: copy its data segments file to file.
            pos = start
            try:
                segments = list(source.data_segments(start, in_backing))
            except OSError as e:
                raise os_error(e, source.path, start, "data segments query") from None
            for seg, n in segments:
                self._zero_image(pos, seg - pos)
                self._copy_segment(source, seg, n)
                pos = seg + n
            self._zero_image(pos, start + in_backing - pos)
        elif in_backing:
            self._write_raw(start, self._read_backing(start, in_backing))
        self._zero_image(start + in_backing, length - in_backing)

    def _copy_segment(self, source: BlockFile, start: int, length: int) -> None:
        self._data_unsynced = True
        try:
            copied = self._raw.copy_range(source, start, start, length)
        except OSError as e:
            raise os_error(e, self.image_path, start, f"copy from {source.path}") from None
        if copied < length:  # the backing file shrank under us: zeros, as past its end
            self._zero_image(start + copied, length - copied)

    def _zero_image(self, start: int, length: int) -> None:
        """Make ``[start, start + length)`` of the image file read zeros, as a hole."""
        if length > 0:
            self._punch_raw(start, length)
