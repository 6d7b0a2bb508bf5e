"""AddCowImage: opening an image and copy-on-write I/O on it (spec: "Reading, writing and
resizing"; rules READ-*, WRITE-*, FEAT-AUTOCLEAR-UNKNOWN, FEAT-ALL-ALLOCATED).

The class is assembled from mixins over :class:`~addcow_ref.engine.imagebase.ImageBase` (the
state and shared steps): :class:`~addcow_ref.engine.extents.MapMixin` (map),
:class:`~addcow_ref.engine.resize.ResizeMixin` and :class:`~addcow_ref.engine.hydrate.HydrateMixin`;
this module opens the files and holds read, write, flush and close.

Concurrency model (threads), answering the v9 review:

* Requests (read, write, map, flush, hydrate) hold a *shared* lock; resize and close hold it
  *exclusively*, so the geometry never changes under a request (:mod:`~addcow_ref.engine.locks`).
* A write whose clusters are all allocated goes straight to the image file: no lock beyond the
  shared one, so such writes proceed in parallel.
* A write that touches unallocated clusters takes *allocation ownership* of exactly those
  clusters (acquired in ascending order so two writers cannot deadlock), re-checks their bits,
  copies the untouched head/tail from the backing file, writes, sets the bits and releases. A
  second writer to the same cluster waits, then finds it allocated and writes plainly: a
  head/tail copy can never overwrite guest data (the third rule).
* The bitmap cache (``bitmapcache.py``) answers the first two rules.

Opening (spec: "Image file and backing file"): every file's type is learnt by ``stat`` before it
is opened (IMG-FILE-TYPE, READ-FILE-TYPE), the image file is compared by ``(st_dev, st_ino)``
with every other file of the chain (IMG-IDENTITY, :mod:`~addcow_ref.engine.identity`), and the
whole backing chain is opened with the image, so a missing or invalid backing file refuses the
image at once (BACK-EXISTS), whatever the bitmap says. The reference's choice under
READ-BACKING-SKIP: an image with ``all_allocated`` set never opens its backing chain, so a
missing backing file does not refuse it. Only :func:`addcow_ref.ops.info.open_for_info` opens
a broken chain leniently, to show the header. A version 1 image opened for writing is refused
(V1-NO-WRITE-OPEN), and a request past the end of the disk is refused, never clipped
(READ-RANGE, WRITE-RANGE).

Durability: a bit is set in memory after its cluster's data was written; the cache fsyncs the
image file before any bitmap chunk reaches the disk (WRITE-DATA-BEFORE-BIT). ``flush()`` makes
every completed write durable.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from types import TracebackType

from addcow_ref.engine.addcowbacking import add_cow_opener
from addcow_ref.engine.backing import (
    Backing,
    ChainState,
    MissingBacking,
    NameConfinedError,
    confine_root,
    is_confined,
    open_backing,
    register_backing_format,
    resolve_name,
)
from addcow_ref.engine.bitmapcache import DEFAULT_CAPACITY, DEFAULT_CHUNK_SIZE, BitmapCache
from addcow_ref.engine.descriptor import read_descriptor
from addcow_ref.engine.extents import Extent, MapMixin
from addcow_ref.engine.fileio import DEFAULT_FS, FileSystem
from addcow_ref.engine.hydrate import HydrateMixin
from addcow_ref.engine.identity import check_image_identity, refuse_missing
from addcow_ref.engine.imagebase import ImageBase, os_error
from addcow_ref.engine.locks import ClusterOwnership, SharedLock
from addcow_ref.engine.oslocks import lock_file
from addcow_ref.engine.resize import ResizeMixin
from addcow_ref.format.constants import FORMAT_ADD_COW
from addcow_ref.format.errors import AddCowError, BackingFileError, ImageFileError, ReadOnlyError
from addcow_ref.format.header import HeaderV1, HeaderV2

__all__ = ["ZERO_CHUNK", "AddCowImage", "Extent", "open_image"]

#: Largest piece of a write-zeroes that holds allocation ownership at a time.
ZERO_CHUNK = 4 << 20


class AddCowImage(MapMixin, ResizeMixin, HydrateMixin):
    """An open add-cow image. Use :func:`open_image`; close it (or use ``with``)."""

    # The whole public API is named here, the inherited part included, so that the class lists
    # (and the API reference documents) all of it in one place.
    path: str
    header: HeaderV2 | HeaderV1
    readonly: bool
    version: int
    cluster_bits: int
    cluster_size: int
    virtual_size: int
    image_path: str
    unreadable: str | None
    all_allocated = ImageBase.all_allocated
    backing = ImageBase.backing
    closed = ImageBase.closed
    map = MapMixin.map
    iter_map = MapMixin.iter_map
    resize = ResizeMixin.resize
    hydrate = HydrateMixin.hydrate

    def __init__(self, path: str | os.PathLike[str], mode: str = "r", *,
                 fs: FileSystem | None = None, chain: ChainState | None = None,
                 cache_chunk_size: int = DEFAULT_CHUNK_SIZE,
                 cache_capacity: int = DEFAULT_CAPACITY, force_share: bool = False,
                 confine: str | os.PathLike[str] | None = None,
                 lenient_backing: bool = False) -> None:
        """Prefer :func:`open_image`; ``chain`` is for opening backing files.

        ``lenient_backing`` is for header-only work: showing the header (``addcow info``) or
        renaming the backing file (``rebase -u``). An open whose backing chain cannot be opened
        (BACK-EXISTS, BACK-FORMAT, ...) then succeeds, with the reason in :attr:`unreadable`;
        reading an unallocated cluster raises, and so does every data change (write,
        write-zeroes, discard, resize, hydrate), so nothing is written over a chain that is
        not there."""
        if mode not in ("r", "r+"):
            raise ValueError(f"mode must be 'r' or 'r+', not {mode!r}")
        if force_share and mode != "r":
            raise ValueError("force_share is only for read-only opens: a writer always locks "
                             "(LOCK-WRITER)")
        self.path = os.fspath(path)
        self._fs = fs or DEFAULT_FS
        if chain is None:
            root = None if confine is None else confine_root(confine)
            chain = ChainState(frozenset(), 0, force_share=force_share, confine=root)
        self._force_share = chain.force_share
        self._lenient_backing = lenient_backing
        self.unreadable = None
        self._confine = chain.confine
        self._failed = None
        self._files = []
        self._backing = None
        self._closed = False
        try:
            self._open_files(mode, chain, cache_chunk_size, cache_capacity)
        except BaseException:
            self._close_files()
            raise

    @classmethod
    def _open_in_chain(cls, path: str, fs: FileSystem, chain: ChainState) -> AddCowImage:
        """Open read-only at a place in a backing chain (the add-cow backing opener)."""
        return cls(path, "r", fs=fs, chain=chain)

    # -- opening ------------------------------------------------------------------------------

    def _open_files(self, mode: str, chain: ChainState, chunk: int,
                    capacity: int) -> None:
        fs = self._fs
        if self._confine is not None and chain.depth == 0 and not is_confined(self.path,
                                                                              self._confine):
            raise NameConfinedError(f"resolves outside the confinement directory "
                                    f"{self._confine}; not opened", file=self.path,
                                    rule_id="NAME-CONFINED")
        kind = fs.kind(self.path)
        if kind == "missing":
            raise AddCowError("add-cow file does not exist", file=self.path)
        if kind not in ("file", "block"):
            raise AddCowError("add-cow file is not a regular file", file=self.path)
        try:
            self._meta = fs.open(self.path, writable=mode == "r+")
        except OSError as e:
            raise os_error(e, self.path, None, "open", AddCowError) from None
        self._files.append(self._meta)
        if not self._force_share:  # before the first read (LOCK-WRITER, LOCK-READER)
            lock_file(self._meta, self.path, exclusive=mode == "r+")
        self.header, desc = read_descriptor(self._meta, self.path, fs)
        self._set_descriptor(desc)
        if mode == "r+" and not self._desc.writable:
            raise ReadOnlyError("version 1 images are read-only, even for a flush; upgrade to "
                                "version 2 first", file=self.path, rule_id="V1-NO-WRITE-OPEN")
        writable = mode == "r+" and self._desc.writable
        self.readonly = not writable
        self.image_path = resolve_name(self.path, self._desc.image_name, confine=self._confine,
                                       field="image_name_offset")
        image_id = check_image_identity(fs, self.path, self.image_path, chain)
        self._open_image_file(writable)
        self._chain = (chain if chain.seen
                       else dataclasses.replace(chain, seen=frozenset({self._identity()})))
        if image_id is not None:
            self._chain = dataclasses.replace(self._chain, images=self._chain.images | {image_id})
        backing_name = self._desc.backing_name
        # The whole chain is opened now (BACK-EXISTS); with all_allocated set it is skipped, as
        # READ-BACKING-SKIP allows: no read ever reaches it.
        if backing_name is not None and self.all_allocated and self._confine is not None:
            # Not opened, but tools show and follow it (info --backing-chain): confine it too.
            resolve_name(self.path, backing_name, confine=self._confine,
                         field="backing_name_offset")
        if backing_name is not None and not self.all_allocated:
            self._backing = self._open_backing_chain(backing_name)
        self._rw = SharedLock()
        self._owners = ClusterOwnership()
        self._sync_mutex = threading.Lock()
        self._data_unsynced = False
        self._header_lock = threading.Lock()
        self._prepared = False
        self._cache = BitmapCache(self._meta, self._desc.bitmap_offset,
                                  self._desc.cluster_count, chunk_size=chunk,
                                  capacity=capacity, before_writeback=self._sync_data)

    def _open_backing_chain(self, name: bytes) -> Backing:
        fmt = self._desc.backing_format or ""
        chain = dataclasses.replace(self._chain, depth=self._chain.depth + 1)
        try:
            return refuse_missing(open_backing(self.path, name, fmt, self._fs, chain), self.path)
        except BackingFileError as e:
            if not self._lenient_backing or isinstance(e, NameConfinedError):
                raise
            self.unreadable = str(e)
            return MissingBacking(resolve_name(self.path, name), fmt, "cannot be opened")

    @property
    def force_share(self) -> bool:
        """Whether the image was opened without its shared locks (LOCK-FORCE-SHARE)."""
        return self._force_share

    @property
    def confine(self) -> str | None:
        """The directory every file of the image was confined to, symlinks resolved."""
        return self._confine

    def _identity(self) -> tuple[int, int]:
        try:
            return self._fs.identity(self.path)
        except OSError as e:
            raise os_error(e, self.path, None, "stat", AddCowError) from None

    def _open_image_file(self, writable: bool) -> None:
        path = self.image_path
        kind = self._fs.kind(path)
        if kind == "missing":
            raise ImageFileError("image file does not exist", file=path,
                                 field="image_name_offset", rule_id="IMG-EXISTS")
        if kind not in ("file", "block"):  # learnt by stat: a FIFO is never opened
            raise ImageFileError(f"image file is a {kind}, not a regular file or block device",
                                 file=path, field="image_name_offset", rule_id="IMG-FILE-TYPE")
        try:
            self._raw = self._fs.open(path, writable=writable)
        except OSError as e:
            raise ImageFileError(f"cannot open image file: {e.strerror}", file=path,
                                 field="image_name_offset", rule_id="IMG-EXISTS") from None
        self._files.append(self._raw)
        if not self._force_share:
            lock_file(self._raw, path, exclusive=writable)
        size = self._raw.size()
        if size < self.virtual_size:
            raise ImageFileError(f"image file is {size} bytes long, shorter than the virtual "
                                 f"size {self.virtual_size}", file=path, field="virtual_size",
                                 rule_id="IMG-SIZE")

    def __enter__(self) -> AddCowImage:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("r" if self.readonly else "r+")
        return f"<AddCowImage {self.path!r} v{self.version} {self.virtual_size} bytes {state}>"

    # -- I/O ----------------------------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes:
        """Guest bytes ``[offset, offset + length)``.

        The same checks and lock as every request (closed, READ-RANGE, the shared request
        lock, closed again under it), written out here rather than through the generic
        helpers, because a small read's cost is mostly that per-call machinery (``bench``
        scenario *random-reads*, per-call row). A read inside one cluster asks the bitmap for
        that one bit instead of computing runs."""
        if self._closed:
            self._check_open()
        if offset < 0 or length < 0 or offset + length > self.virtual_size:
            self._check_range(offset, length)
        rw = self._rw
        rw.acquire_shared()
        try:
            if self._closed:  # a close() finished between the check above and the lock
                self._check_open()
            cb = self.cluster_bits
            cluster = offset >> cb
            if length and cluster == (offset + length - 1) >> cb:
                if not self._all_allocated:
                    try:
                        allocated = self._cache.get(cluster)
                    except OSError as e:
                        raise os_error(e, self.path, None, "bitmap read",
                                       AddCowError) from None
                    if not allocated:
                        return self._read_backing(offset, length)
                try:
                    data = self._raw.pread(offset, length)
                except OSError as e:
                    raise os_error(e, self.image_path, offset, "read") from None
                if len(data) == length:
                    return data
                raise ImageFileError("image file ends before the virtual size",
                                     file=self.image_path, offset=offset + len(data),
                                     rule_id="IMG-SIZE")
            return self._read_locked(offset, length)
        finally:
            rw.release_shared()

    def _read_locked(self, offset: int, length: int) -> bytes:
        parts = []
        for s, n, allocated in self._byte_runs(offset, length):
            parts.append(self._read_raw(s, n) if allocated else self._read_backing(s, n))
        return b"".join(parts)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write guest bytes, copying on write (WRITE-COW-HEAD-TAIL, WRITE-SET-BIT)."""
        self._modify(offset, len(data), lambda: self._write_locked(offset, data))

    def _modify(self, offset: int, length: int, change: Callable[[], None]) -> None:
        """Run ``change`` as one request that changes ``[offset, offset + length)`` of the
        guest: the checks every change needs (open, writable, WRITE-RANGE), nothing for an empty
        range, and the unknown autoclear bits cleared durably first (FEAT-AUTOCLEAR-DURABLE)."""
        self._check_open()
        self._check_writable()
        self._check_range(offset, length, "WRITE-RANGE")
        if not length:
            return
        with self._request():
            self._prepare_modify()
            change()

    def _write_locked(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        cb = self.cluster_bits
        end = offset + len(data)
        first, last = offset >> cb, (end - 1) >> cb
        need = self._unallocated(first, last)
        if not need:
            self._write_raw(offset, data)
            return
        with self._owners.own(need):
            todo = self._unallocated(first, last)  # another writer may have won meanwhile
            if not todo:
                self._write_raw(offset, data)
                return
            head = tail = b""
            start = offset
            if todo[0] == first and offset > first << cb:
                start = first << cb
                head = self._read_backing(start, offset - start)
            if todo[-1] == last:
                cend = min((last + 1) << cb, self.virtual_size)
                tail = self._read_backing(end, cend - end)
            buf = b"".join((head, data, tail)) if head or tail else data
            self._write_raw(start, buf)
            run_start = prev = todo[0]
            for c in todo[1:]:
                if c != prev + 1:
                    self._cache.set_range(run_start, prev - run_start + 1)
                    run_start = c
                prev = c
            self._cache.set_range(run_start, prev - run_start + 1)

    def write_zeroes(self, offset: int, length: int, *, punch: bool = False) -> None:
        """Make ``[offset, offset + length)`` read as zeros, allocating its clusters exactly as
        a write of zeros would (WRITE-ZEROES-ALLOCATE): the head and tail of a partly covered
        unallocated cluster are copied from the backing file. The fully covered clusters are
        zeroed in the image file without a buffer of zeros: with ``punch`` as a hole
        (``fallocate`` PUNCH_HOLE), else by writing zeros only where it may hold data."""
        def change() -> None:
            cs = self.cluster_size
            end = offset + length
            lo = -(-offset // cs) * cs
            hi = end if end == self.virtual_size else end // cs * cs
            if lo >= hi:  # inside one or two clusters: an ordinary write of zeros
                self._write_locked(offset, bytes(length))
                return
            if offset < lo:
                self._write_locked(offset, bytes(lo - offset))
            if hi < end:
                self._write_locked(hi, bytes(end - hi))
            self._zero_clusters(lo >> self.cluster_bits, -(-(hi - lo) // cs), punch)

        self._modify(offset, length, change)

    def _zero_clusters(self, first: int, count: int, punch: bool) -> None:
        cb = self.cluster_bits
        step = max(1, ZERO_CHUNK >> cb)
        for c, n, allocated in self._cluster_runs(first, count):
            for pos in range(c, c + n, step):
                m = min(step, c + n - pos)
                start, stop = pos << cb, min((pos + m) << cb, self.virtual_size)
                if allocated:
                    self._zero_raw(start, stop - start, punch)
                    continue
                with self._owners.own(range(pos, pos + m)):
                    todo = self._cluster_runs(pos, m)  # another writer may have won meanwhile
                    self._zero_raw(start, stop - start, punch)
                    for t, k, bit in todo:
                        if not bit:
                            self._cache.set_range(t, k)

    def _zero_raw(self, start: int, length: int, punch: bool) -> None:
        if not punch:
            self._write_zeros(start, length)
            return
        self._punch_raw(start, length)

    def discard(self, offset: int, length: int) -> None:
        """The guest no longer needs ``[offset, offset + length)``: punch holes in the image
        file where its clusters are allocated (DISCARD-PUNCH; those bytes then read zeros or
        as before). A bit is never cleared and unallocated clusters are left alone, so they
        keep reading the backing file (DISCARD-KEEP-BITS)."""
        def change() -> None:
            for s, n, allocated in self._byte_runs(offset, length):
                if allocated:
                    self._zero_raw(s, n, punch=True)

        self._modify(offset, length, change)

    def flush(self) -> None:
        """Make every completed write durable: image data first, then the bitmap."""
        self._check_open()
        if self.readonly:
            return
        with self._request():
            self._flush_locked()

    def close(self) -> None:
        """Flush (when writable) and release every file. Closing twice is harmless."""
        with self._rw.exclusive():
            if self._closed:
                return
            try:
                if not self.readonly and self._failed is None:
                    # After a failed sync nothing is committed (WRITE-SYNC-FAILED): the bits
                    # still pending are for data that may never have reached the disk.
                    self._flush_locked()
            finally:
                self._closed = True
                self._close_files()

    def _close_files(self) -> None:
        backing, self._backing = self._backing, None
        if backing is not None:
            backing.close()
        for f in self._files:
            f.close()
        self._files.clear()

    # -- status -------------------------------------------------------------------------------

    def is_allocated(self, offset: int, length: int) -> tuple[bool, int]:
        """Whether the byte at ``offset`` is in this image, and how many bytes from ``offset``
        (at most ``length``, clipped to the end of the disk) share that status."""
        self._check_open()
        self._check_range(offset, 0)
        length = min(length, self.virtual_size - offset)
        if not length:
            return (False, 0)
        with self._request():
            for _s, n, allocated in self._byte_runs(offset, length):
                return (allocated, n)
        raise AssertionError("unreachable")  # pragma: no cover

    def allocated_clusters(self) -> int:
        """How many clusters this image's file holds (counts the bitmap's ones)."""
        self._check_open()
        if self.all_allocated:
            return self._desc.cluster_count
        with self._request():
            try:
                return self._cache.count_ones()
            except OSError as e:
                raise os_error(e, self.path, None, "bitmap read", AddCowError) from None


def open_image(path: str | os.PathLike[str], mode: str = "r", *,
               fs: FileSystem | None = None,
               cache_chunk_size: int = DEFAULT_CHUNK_SIZE,
               cache_capacity: int = DEFAULT_CAPACITY, force_share: bool = False,
               confine: str | os.PathLike[str] | None = None) -> AddCowImage:
    """Open an add-cow image (``mode`` ``"r"`` or ``"r+"``). Version 1 images are read-only:
    ``"r+"`` refuses them with :class:`~addcow_ref.format.errors.ReadOnlyError`
    (V1-NO-WRITE-OPEN), whatever the caller meant to write.

    The files are locked while the image is open (spec page "Locking and concurrent use"):
    a file another process holds in a conflicting way raises
    :class:`~addcow_ref.engine.oslocks.ImageLockedError` at once. ``force_share`` (read-only
    opens only, ``-U`` of the tools) skips the shared locks. ``confine`` is a directory every
    file of the image must resolve inside, after symlinks; a name that leaves it raises
    :class:`~addcow_ref.engine.backing.NameConfinedError` before anything outside is opened."""
    return AddCowImage(path, mode, fs=fs, cache_chunk_size=cache_chunk_size,
                       cache_capacity=cache_capacity, force_share=force_share,
                       confine=confine)


register_backing_format(FORMAT_ADD_COW, add_cow_opener(AddCowImage._open_in_chain))
