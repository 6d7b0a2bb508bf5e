"""An independent oracle for guest contents and operation results (spec: "Reading, writing").

Expected values in the manifest must not come from the reference implementation, or a bug there
would be copied into the vectors and the vectors would test nothing. This model is deliberately
naive: the image file is a ``bytearray``, the bitmap is a ``set`` of cluster numbers, and every
rule of the semantics page is written out once in the most literal way.
"""

from __future__ import annotations

import dataclasses
import hashlib

from addcow_conformance.records import Extent

__all__ = ["Disk", "bitmap_bytes", "cluster_runs", "extents", "sha256"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bitmap_bytes(bits: set[int], cluster_count: int) -> bytes:
    """Cluster ``i`` is bit ``i & 7`` of byte ``i >> 3`` (LSB first), written out by hand."""
    out = bytearray((cluster_count + 7) // 8)
    for i in sorted(bits):
        out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def cluster_runs(bits: set[int], cluster_count: int) -> list[tuple[int, int, bool]]:
    """Maximal runs ``(first_cluster, n_clusters, allocated)`` of clusters ``0..count-1``.

    Each cluster is looked up in ``bits`` one at a time; only the runs are kept, so a disk of
    half a million clusters costs one set lookup per cluster and a handful of slices."""
    out: list[tuple[int, int, bool]] = []
    start = 0
    for i in range(1, cluster_count + 1):
        if i == cluster_count or (i in bits) != (start in bits):
            out.append((start, i - start, start in bits))
            start = i
    return out


def extents(bits: set[int], virtual_size: int, cluster_size: int) -> list[Extent]:
    """Merged ``{start, length, allocated}`` runs covering ``[0, virtual_size)``."""
    count = (virtual_size + cluster_size - 1) // cluster_size
    return [{"start": first * cluster_size,
             "length": min((first + n) * cluster_size, virtual_size) - first * cluster_size,
             "allocated": allocated}
            for first, n, allocated in cluster_runs(bits, count)]


@dataclasses.dataclass
class Disk:
    """One add-cow layer: image file bytes, allocated clusters, and the backing guest view.

    ``backing`` is what a reader of the backing file sees (a raw file's bytes, or the guest
    contents of a backing add-cow image); bytes past its end read as zeros. ``lower``, when set,
    is the backing add-cow image itself, for the operations that write into it (a commit): the
    backing view is then its guest disk, computed afresh at every read, and ``backing`` is not
    used.
    """

    virtual_size: int
    cluster_bits: int
    image: bytearray
    bits: set[int]
    backing: bytes | None = None
    #: Byte ranges ``[start, end)`` a discard left to the writer (DISCARD-PUNCH: they may read
    #: as zeros or as the old data); never compared.
    open_ranges: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    lower: Disk | None = None

    @property
    def cluster_size(self) -> int:
        return 1 << self.cluster_bits

    @property
    def cluster_count(self) -> int:
        return (self.virtual_size + self.cluster_size - 1) // self.cluster_size

    def _backing_bytes(self, start: int, end: int) -> bytes:
        src = self.lower.guest() if self.lower is not None else self.backing or b""
        chunk = src[start:end]
        return chunk + bytes(end - start - len(chunk))

    def guest(self) -> bytes:
        """Allocated clusters read the image file (zeros past its end), the others the backing
        view; computed run by run of equal bits, which is the same cluster by cluster."""
        out = bytearray()
        for first, n, allocated in cluster_runs(self.bits, self.cluster_count):
            start = first * self.cluster_size
            end = min(start + n * self.cluster_size, self.virtual_size)
            if allocated:
                chunk = bytes(self.image[start:end])
                out += chunk + bytes(end - start - len(chunk))
            else:
                out += self._backing_bytes(start, end)
        return bytes(out)

    def copy(self) -> Disk:
        return Disk(self.virtual_size, self.cluster_bits, bytearray(self.image), set(self.bits),
                    self.backing, list(self.open_ranges),
                    None if self.lower is None else self.lower.copy())

    def _allocate(self, cluster: int, before: bytes) -> None:
        """Copy what the guest saw into the image file, then set the bit (WRITE-COW-HEAD-TAIL)."""
        start = cluster * self.cluster_size
        end = min(start + self.cluster_size, self.virtual_size)
        self.image[start:end] = before[start:end]
        self.bits.add(cluster)

    def write(self, offset: int, data: bytes) -> None:
        if offset < 0 or offset + len(data) > self.virtual_size:
            raise ValueError("write past the end of the disk")
        if not data:
            return
        before = self.guest()
        first = offset // self.cluster_size
        last = (offset + len(data) - 1) // self.cluster_size
        for c in range(first, last + 1):
            if c not in self.bits:
                self._allocate(c, before)
        self.image[offset:offset + len(data)] = data

    def write_zeroes(self, offset: int, length: int) -> None:
        """WRITE-ZEROES-ALLOCATE: exactly a write of ``length`` zero bytes."""
        self.write(offset, bytes(length))

    def discard(self, offset: int, length: int) -> None:
        """DISCARD-KEEP-BITS: no bit changes; unallocated clusters still read the backing file.
        The discarded bytes of allocated clusters become open (DISCARD-PUNCH, a MAY)."""
        if offset < 0 or offset + length > self.virtual_size:
            raise ValueError("discard past the end of the disk")
        for c in sorted(self.bits):
            lo = max(offset, c * self.cluster_size)
            hi = min(offset + length, (c + 1) * self.cluster_size, self.virtual_size)
            if lo < hi:
                self.open_ranges.append((lo, hi))

    def hydrate(self) -> None:
        """HYDRATE-COMPLETE: every cluster copied into the image file and allocated."""
        guest = self.guest()
        for c in range(self.cluster_count):
            if c not in self.bits:
                self._allocate(c, guest)

    def resize(self, new_size: int) -> None:
        """RESIZE-GROW / RESIZE-SHRINK, literally."""
        if new_size < self.virtual_size:
            self.virtual_size = new_size
            self.bits = {c for c in self.bits if c < self.cluster_count}
            return
        if new_size == self.virtual_size:
            return
        old_size = self.virtual_size
        if old_size % self.cluster_size:
            last = old_size // self.cluster_size
            if last not in self.bits:
                self._allocate(last, self.guest())
        # The old end's cluster now reads as image data; everything past the old end is zeros.
        del self.image[old_size:]
        self.image += bytes(new_size - old_size)
        self.virtual_size = new_size
        first_new = -(-old_size // self.cluster_size)
        self.bits |= set(range(first_new, self.cluster_count))
        if old_size % self.cluster_size:
            self.bits.add(old_size // self.cluster_size)

    def allocated_runs(self) -> list[tuple[int, int]]:
        """Byte ranges ``[start, end)`` of the runs of allocated clusters, the last one ending at
        ``virtual_size``."""
        return [(first * self.cluster_size,
                 min((first + n) * self.cluster_size, self.virtual_size))
                for first, n, allocated in cluster_runs(self.bits, self.cluster_count)
                if allocated]

    def commit(self, keep: bool) -> None:
        """COMMIT-COMPLETE, literally: what the guest read over each allocated run is written
        into the backing file at the same offset (a raw file grows with zeros up to it; an
        add-cow backing image takes it as a guest write, ``Disk.write``, which refuses data past
        its end); then, unless ``keep``, every bit is cleared. The spec's promise that the
        guest still reads the same is checked on the oracle's own result."""
        if self.open_ranges:
            raise ValueError("a commit after a discard: the committed bytes would be open")
        if self.lower is None and self.backing is None:
            raise ValueError("commit of an image without a backing file")
        before = self.guest()
        runs = self.allocated_runs()
        if self.lower is not None:
            for start, end in runs:
                self.lower.write(start, before[start:end])
        else:
            raw = bytearray(self.backing or b"")
            for start, end in runs:
                if len(raw) < end:
                    raw += bytes(end - len(raw))
                raw[start:end] = before[start:end]
            self.backing = bytes(raw)
        if not keep:
            self.bits = set()
        if self.guest() != before:  # pragma: no cover - the model contradicting the spec
            raise AssertionError("the oracle's commit changed the guest disk")

    def rebase(self, backing: bytes | None, *, unsafe: bool) -> set[int]:
        """REBASE-COMPLETE, literally, onto a raw backing file of bytes ``backing`` (None: no
        backing file). The safe form allocates, with what the guest read, every unallocated
        cluster where the old and the new backing views differ; the unsafe form only swaps the
        view. Returns the unallocated clusters where the views agree: the safe form MAY
        allocate them too, so their bits and image bytes are the writer's choice."""
        if self.open_ranges:
            raise ValueError("a rebase after a discard: the guest would be open")
        same: set[int] = set()
        before = self.guest()
        if not unsafe:
            new = Disk(self.virtual_size, self.cluster_bits, bytearray(), set(), backing)
            for c in range(self.cluster_count):
                if c in self.bits:
                    continue
                lo = c * self.cluster_size
                hi = min(lo + self.cluster_size, self.virtual_size)
                if self._backing_bytes(lo, hi) != new._backing_bytes(lo, hi):
                    self._allocate(c, before)
                else:
                    same.add(c)
        self.backing, self.lower = backing, None
        if not unsafe and self.guest() != before:  # pragma: no cover - see commit
            raise AssertionError("the oracle's safe rebase changed the guest disk")
        return same

    def bitmap(self) -> bytes:
        return bitmap_bytes(self.bits, self.cluster_count)

    def extents(self) -> list[Extent]:
        return extents(self.bits, self.virtual_size, self.cluster_size)
