"""AddCowImage: reading, copy-on-write, map, resize and hydrate (spec: "Reading, writing and
resizing"; rules READ-*, WRITE-*, RESIZE-*, FEAT-AUTOCLEAR-UNKNOWN, FEAT-ALL-ALLOCATED).

Concurrency model (threads), answering the v9 review:

* Requests (read, write, map, flush, hydrate) hold a *shared* lock; resize and close hold it
  *exclusively*, so the geometry never changes under a request.
* A write whose clusters are all allocated goes straight to the image file: no lock beyond the
  shared one, so such writes proceed in parallel.
* A write that touches unallocated clusters takes *allocation ownership* of exactly those
  clusters (a per-cluster table, acquired in ascending order so two writers cannot deadlock),
  re-checks their bits, copies the untouched head/tail from the backing file, writes, sets the
  bits and releases. A second writer to the same cluster waits, then finds it allocated and
  writes plainly: a head/tail copy can never overwrite guest data (the third rule).
* The bitmap cache (``bitmapcache.py``) answers the first two rules.

Durability: a bit is set in memory after its cluster's data was written; the cache fsyncs the
image file before any bitmap chunk reaches the disk (WRITE-DATA-BEFORE-BIT). ``flush()`` makes
every completed write durable.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from addcow_ref.engine.backing import (
    Backing,
    BackingExtent,
    ChainState,
    open_backing,
    register_backing_format,
    resolve_name,
)
from addcow_ref.engine.bitmapcache import DEFAULT_CAPACITY, DEFAULT_CHUNK_SIZE, BitmapCache
from addcow_ref.engine.fileio import DEFAULT_FS, BlockFile, FileSystem
from addcow_ref.format.bitmap import padding_mask
from addcow_ref.format.constants import (
    FORMAT_ADD_COW,
    HEADER_LENGTH_V1,
    HEADER_LENGTH_V2,
    KNOWN_AUTOCLEAR_FEATURES,
    MAGIC,
    MAX_VIRTUAL_SIZE,
    SECTOR_SIZE,
    VERSION_1,
    CompatibleFeature,
)
from addcow_ref.format.errors import (
    AddCowError,
    BackingFileError,
    FormatError,
    ImageFileError,
    ReadOnlyError,
)
from addcow_ref.format.header import (
    HeaderV1,
    HeaderV2,
    bitmap_length_for,
    cluster_count_for,
    parse_header,
)
from addcow_ref.format.validate import header_violations, raise_violations

__all__ = ["AddCowBacking", "AddCowImage", "Extent", "open_image"]

#: Largest piece hydrate copies (and holds allocation ownership for) at a time.
HYDRATE_CHUNK = 4 << 20

#: Clusters mapped per request by :meth:`AddCowImage.iter_map`: 2**19 clusters (64 KiB of
#: bitmap), so a streaming caller holds a bounded number of extents (mapping a 64 TiB disk in
#: one pass peaked at 273 MiB RSS).
MAP_WINDOW_CLUSTERS = 1 << 19


def _mergeable(a: Extent, b: Extent) -> bool:
    """``b`` continues ``a`` with the same status, so the two are one extent."""
    return (a.start + a.length == b.start
            and (a.allocated, a.depth, a.data) == (b.allocated, b.depth, b.data))


@dataclasses.dataclass(frozen=True)
class Extent:
    """A byte range of the guest disk with one status, like a line of ``qemu-img map``.

    ``allocated``: the data is in *this* image's file. ``depth``: the layer of the chain that
    answers reads (0 = this image, 1 = its backing file, ...). ``data``: False where the range
    reads as zeros because no layer holds it (no backing file, or past its end).
    """

    start: int
    length: int
    allocated: bool
    depth: int
    data: bool = True

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _SharedLock:
    """Shared/exclusive lock with writer preference (resize and close must not starve).

    Shared holds are re-entrant per thread: a thread that already holds the lock shared (a
    hydrate whose progress callback reads the image) does not queue behind a waiting
    exclusive locker, which would otherwise wait for it forever.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0
        self._local = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth: int = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if getattr(self._local, "depth", 0):
            raise RuntimeError("resize() or close() called from inside a request on the "
                               "same image (e.g. a hydrate progress callback)")
        with self._cond:
            self._waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _os_error(e: OSError, file: str, offset: int | None, what: str,
              cls: type[AddCowError] = ImageFileError) -> AddCowError:
    name = errno.errorcode.get(e.errno or 0, "")
    text = f"{what} failed: {e.strerror or e}" + (f" ({name})" if name else "")
    return cls(text, file=file, offset=offset)


class AddCowImage:
    """An open add-cow image. Use :func:`open_image`; close it (or use ``with``)."""

    path: str
    header: HeaderV2 | HeaderV1
    readonly: bool
    version: int
    cluster_bits: int
    cluster_size: int
    virtual_size: int
    image_path: str

    def __init__(self, path: str | os.PathLike[str], mode: str = "r", *,
                 fs: FileSystem | None = None, chain: ChainState | None = None,
                 cache_chunk_size: int = DEFAULT_CHUNK_SIZE,
                 cache_capacity: int = DEFAULT_CAPACITY) -> None:
        """Prefer :func:`open_image`; ``chain`` is for opening backing files."""
        if mode not in ("r", "r+"):
            raise ValueError(f"mode must be 'r' or 'r+', not {mode!r}")
        self.path = os.fspath(path)
        self._fs: FileSystem = fs or DEFAULT_FS
        self._files: list[BlockFile] = []
        self._backing: Backing | None = None
        self._closed = False
        try:
            self._open_files(mode, chain, cache_chunk_size, cache_capacity)
        except BaseException:
            self._close_files()
            raise

    @classmethod
    def _open(cls, path: str | os.PathLike[str], mode: str = "r", *,
              fs: FileSystem | None = None, chain: ChainState | None = None) -> AddCowImage:
        return cls(path, mode, fs=fs, chain=chain)

    def _open_files(self, mode: str, chain: ChainState | None, chunk: int,
                    capacity: int) -> None:
        fs = self._fs
        kind = fs.kind(self.path)
        if kind == "missing":
            raise AddCowError("add-cow file does not exist", file=self.path)
        if kind not in ("file", "block"):
            raise AddCowError("add-cow file is not a regular file", file=self.path)
        writable = mode == "r+"
        try:
            self._meta = fs.open(self.path, writable=writable)
        except OSError as e:
            raise _os_error(e, self.path, None, "open", AddCowError) from None
        self._files.append(self._meta)
        meta_size = self._meta.size()
        head = self._meta.pread(0, HEADER_LENGTH_V2)
        if len(head) >= 8 and head[:8] != MAGIC:
            raise FormatError(f"magic is {head[:8].hex(' ')}; not an add-cow file",
                              file=self.path, offset=0, field="magic", rule_id="HDR-MAGIC")
        if len(head) >= 12 and int.from_bytes(head[8:12], "big") == VERSION_1:
            from addcow_ref.engine.legacy import read_v1_header

            self.header = read_v1_header(self._meta, self.path, fs)
            writable = False
        else:
            header = parse_header(head, file=self.path)
            raise_violations(header_violations(header, self._meta.pread, meta_size), self.path)
            self.header = header
        self.readonly = not writable
        self.version = int(self.header.version)
        self.cluster_bits = int(self.header.cluster_bits)
        self.cluster_size = 1 << self.cluster_bits
        self.virtual_size = int(self.header.virtual_size)
        self._all_allocated = self._compute_all_allocated()
        self.image_path = resolve_name(self.path, self._image_name())
        self._open_image_file(writable)
        self._chain = chain or ChainState(frozenset({self._identity()}), 0)
        if self._has_backing() and not self.all_allocated:
            self._backing = open_backing(self.path, self._backing_name(),
                                         self._backing_format(), fs,
                                         ChainState(self._chain.seen, self._chain.depth + 1))
        self._rw = _SharedLock()
        self._alloc_mutex = threading.Lock()
        self._alloc_owner: dict[int, threading.Event] = {}
        self._sync_lock = threading.Lock()
        self._data_unsynced = False
        self._header_lock = threading.Lock()
        self._prepared = False
        self._cache = BitmapCache(self._meta, int(self.header.bitmap_offset),
                                  self.header.cluster_count, chunk_size=chunk,
                                  capacity=capacity, before_writeback=self._sync_data)

    def _identity(self) -> tuple[int, int]:
        try:
            return self._fs.identity(self.path)
        except OSError as e:
            raise _os_error(e, self.path, None, "stat", AddCowError) from None

    def _image_name(self) -> bytes:
        h = self.header
        if isinstance(h, HeaderV1):
            return h.image_name
        return self._meta.pread(int(h.image_name_offset), int(h.image_name_length))

    def _has_backing(self) -> bool:
        h = self.header
        return bool(h.backing_name) if isinstance(h, HeaderV1) else h.has_backing

    def _backing_name(self) -> bytes:
        h = self.header
        if isinstance(h, HeaderV1):
            return h.backing_name
        return self._meta.pread(int(h.backing_name_offset), int(h.backing_name_length))

    def _backing_format(self) -> str:
        h = self.header
        if isinstance(h, HeaderV1):
            from addcow_ref.engine.legacy import V1_BACKING_FORMAT

            return V1_BACKING_FORMAT
        return h.backing_format_name

    def _open_image_file(self, writable: bool) -> None:
        path = self.image_path
        kind = self._fs.kind(path)
        if kind not in ("file", "block"):
            what = "does not exist" if kind == "missing" else "is not a regular file"
            raise ImageFileError(f"image file {what}", file=path, field="image_name_offset",
                                 rule_id="IMG-EXISTS")
        try:
            self._raw = self._fs.open(path, writable=writable)
        except OSError as e:
            raise ImageFileError(f"cannot open image file: {e.strerror}", file=path,
                                 field="image_name_offset", rule_id="IMG-EXISTS") from None
        self._files.append(self._raw)
        size = self._raw.size()
        if size < self.virtual_size:
            raise ImageFileError(f"image file is {size} bytes long, shorter than the virtual "
                                 f"size {self.virtual_size}", file=path, field="virtual_size",
                                 rule_id="IMG-SIZE")

    # -- public properties ------------------------------------------------------------------

    @property
    def all_allocated(self) -> bool:
        return self._all_allocated

    def _compute_all_allocated(self) -> bool:
        h = self.header
        if isinstance(h, HeaderV1):
            return False
        return bool(int(h.compatible_features) & CompatibleFeature.ALL_ALLOCATED)

    @property
    def backing(self) -> Backing | None:
        return self._backing

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> AddCowImage:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("r" if self.readonly else "r+")
        return f"<AddCowImage {self.path!r} v{self.version} {self.virtual_size} bytes {state}>"

    # -- helpers ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("I/O operation on a closed add-cow image")

    @contextmanager
    def _request(self) -> Iterator[None]:
        """The shared lock of a request, re-checking ``closed`` under it (a close() may have
        finished between the caller's first check and the lock)."""
        with self._rw.shared():
            self._check_open()
            yield

    def _check_range(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.virtual_size:
            raise ValueError(f"range [{offset}, {offset + length}) is outside the disk "
                             f"[0, {self.virtual_size})")

    def _check_writable(self) -> None:
        if self.readonly:
            if self.version == VERSION_1:
                raise ReadOnlyError("version 1 images are read-only; upgrade to version 2 "
                                    "first", file=self.path, rule_id="V1-READ-ONLY")
            raise ReadOnlyError("image is open read-only", file=self.path)

    def _cluster_runs(self, first: int, count: int) -> list[tuple[int, int, bool]]:
        if self.all_allocated:
            return [(first, count, True)] if count > 0 else []
        try:
            return self._cache.runs(first, count)
        except OSError as e:
            raise _os_error(e, self.path, None, "bitmap read", AddCowError) from None

    def _byte_runs(self, offset: int, length: int) -> Iterator[tuple[int, int, bool]]:
        """``(start, length, allocated)`` over the byte range."""
        if length <= 0:
            return
        cb = self.cluster_bits
        first = offset >> cb
        last = (offset + length - 1) >> cb
        end = offset + length
        for c, n, value in self._cluster_runs(first, last - first + 1):
            s = max(offset, c << cb)
            e = min(end, (c + n) << cb)
            yield s, e - s, value

    def _read_raw(self, offset: int, length: int) -> bytes:
        try:
            data = self._raw.pread(offset, length)
        except OSError as e:
            raise _os_error(e, self.image_path, offset, "read") from None
        if len(data) < length:
            raise ImageFileError("image file ends before the virtual size", file=self.image_path,
                                 offset=offset + len(data), rule_id="IMG-SIZE")
        return data

    def _read_backing(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        if self._backing is None:
            return bytes(length)
        return self._backing.read(offset, length)

    def _write_raw(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        try:
            self._raw.pwrite(offset, data)
        except OSError as e:
            raise _os_error(e, self.image_path, offset, "write") from None
        self._data_unsynced = True

    def _sync_data(self) -> None:
        """fsync the image file if anything was written since the last fsync. Serialised, so
        a caller never skips the fsync while another caller's is still running."""
        with self._sync_lock:
            if not self._data_unsynced:
                return
            self._data_unsynced = False
            try:
                self._raw.fsync()
            except OSError as e:
                self._data_unsynced = True
                raise _os_error(e, self.image_path, None, "fsync") from None

    def _write_header(self, header: HeaderV2) -> None:
        try:
            self._meta.pwrite(0, header.build())
            self._meta.fsync()
        except OSError as e:
            raise _os_error(e, self.path, 0, "header write", AddCowError) from None
        self.header = header
        self._all_allocated = self._compute_all_allocated()

    def _prepare_modify(self) -> None:
        """Clear unknown autoclear bits before the first modification (FEAT-AUTOCLEAR-UNKNOWN):
        this writer cannot keep whatever they promise up to date."""
        with self._header_lock:
            if self._prepared:
                return
            h = self.header
            assert isinstance(h, HeaderV2)
            autoclear = int(h.autoclear_features)
            if autoclear & ~KNOWN_AUTOCLEAR_FEATURES:
                self._write_header(h.replace(
                    autoclear_features=autoclear & KNOWN_AUTOCLEAR_FEATURES))
            self._prepared = True

    @contextmanager
    def _own_clusters(self, clusters: list[int]) -> Iterator[None]:
        """Allocation ownership of ``clusters`` (ascending), waiting for other owners."""
        taken: list[int] = []
        try:
            for c in clusters:
                while True:
                    with self._alloc_mutex:
                        other = self._alloc_owner.get(c)
                        if other is None:
                            self._alloc_owner[c] = threading.Event()
                            taken.append(c)
                            break
                    other.wait()
            yield
        finally:
            with self._alloc_mutex:
                for c in taken:
                    self._alloc_owner.pop(c).set()

    def _unallocated(self, first: int, last: int) -> list[int]:
        out: list[int] = []
        for c, n, value in self._cluster_runs(first, last - first + 1):
            if not value:
                out.extend(range(c, c + n))
        return out

    # -- I/O --------------------------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes:
        """Guest bytes ``[offset, offset + length)``."""
        self._check_open()
        self._check_range(offset, length)
        with self._request():
            return self._read_locked(offset, length)

    def _read_locked(self, offset: int, length: int) -> bytes:
        parts = []
        for s, n, allocated in self._byte_runs(offset, length):
            parts.append(self._read_raw(s, n) if allocated else self._read_backing(s, n))
        return b"".join(parts)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write guest bytes, copying on write (WRITE-COW-HEAD-TAIL, WRITE-SET-BIT)."""
        self._check_open()
        self._check_writable()
        length = len(data)
        self._check_range(offset, length)
        if not length:
            return
        with self._request():
            self._prepare_modify()
            self._write_locked(offset, data)

    def _write_locked(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        cb = self.cluster_bits
        end = offset + len(data)
        first, last = offset >> cb, (end - 1) >> cb
        need = self._unallocated(first, last)
        if not need:
            self._write_raw(offset, data)
            return
        with self._own_clusters(need):
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

    def flush(self) -> None:
        """Make every completed write durable: image data first, then the bitmap."""
        self._check_open()
        if self.readonly:
            return
        with self._request():
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._sync_data()
        try:
            self._cache.flush()
        except OSError as e:
            raise _os_error(e, self.path, None, "bitmap write", AddCowError) from None

    def close(self) -> None:
        """Flush (when writable) and release every file. Closing twice is harmless."""
        with self._rw.exclusive():
            if self._closed:
                return
            try:
                if not self.readonly:
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

    # -- status -----------------------------------------------------------------------------

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

    def map(self, offset: int = 0, length: int | None = None) -> list[Extent]:
        """Merged extents covering ``[offset, offset + length)`` (the whole disk by default)."""
        return list(self.iter_map(offset, length))

    def iter_map(self, offset: int = 0, length: int | None = None) -> Iterator[Extent]:
        """:meth:`map`, one merged extent at a time.

        The range is mapped ``MAP_WINDOW_CLUSTERS`` clusters per request, so a caller that
        streams the extents holds a bounded number of them whatever the disk's size; extents
        are merged across window boundaries, so the result equals one pass over the range.
        """
        self._check_open()
        if length is None:
            length = self.virtual_size - offset
        self._check_range(offset, length)
        step = MAP_WINDOW_CLUSTERS << self.cluster_bits
        pending: Extent | None = None
        end = offset + length
        for win in range(offset, end, step):
            for e in self._map_window(win, min(step, end - win)):
                if pending is not None and _mergeable(pending, e):
                    pending = dataclasses.replace(pending, length=pending.length + e.length)
                    continue
                if pending is not None:
                    yield pending
                pending = e
        if pending is not None:
            yield pending

    def _map_window(self, offset: int, length: int) -> list[Extent]:
        out: list[Extent] = []

        def add(e: Extent) -> None:
            if e.length <= 0:
                return
            if out and _mergeable(out[-1], e):
                out[-1] = dataclasses.replace(out[-1], length=out[-1].length + e.length)
                return
            out.append(e)

        with self._request():
            for s, n, allocated in self._byte_runs(offset, length):
                if allocated:
                    add(Extent(s, n, True, 0, True))
                elif self._backing is None:
                    add(Extent(s, n, False, 0, False))
                else:
                    for b in self._backing.extents(s, n):
                        add(Extent(b.start, b.length, False, b.depth + 1, b.data))
        return out

    def allocated_clusters(self) -> int:
        self._check_open()
        if self.all_allocated:
            return self.header.cluster_count
        with self._request():
            try:
                return self._cache.count_ones()
            except OSError as e:
                raise _os_error(e, self.path, None, "bitmap read", AddCowError) from None

    def info(self) -> dict[str, Any]:
        """JSON-able description, in the spirit of ``qemu-img info``."""
        self._check_open()
        h = self.header
        backing = os.fsdecode(self._backing_name()) if self._has_backing() else None
        if isinstance(h, HeaderV1):
            features = (0, 0, 0)
            header_length = HEADER_LENGTH_V1
            image_format = "raw"
            backing_format = self._backing_format() if backing else None
        else:
            features = (int(h.incompatible_features), int(h.compatible_features),
                        int(h.autoclear_features))
            header_length = int(h.header_length)
            image_format = h.image_format_name
            backing_format = h.backing_format_name or None
        return {
            "filename": self.path,
            "version": self.version,
            "virtual_size": self.virtual_size,
            "cluster_bits": self.cluster_bits,
            "cluster_size": self.cluster_size,
            "bitmap_offset": int(h.bitmap_offset),
            "bitmap_length": h.bitmap_length,
            "header_length": header_length,
            "image_file": os.fsdecode(self._image_name()),
            "image_path": self.image_path,
            "backing_file": backing,
            "backing_path": resolve_name(self.path, backing) if backing else None,
            "image_format": image_format,
            "backing_format": backing_format,
            "incompatible_features": features[0],
            "compatible_features": features[1],
            "autoclear_features": features[2],
            "all_allocated": self.all_allocated,
            "allocated_clusters": self.allocated_clusters(),
            "cluster_count": h.cluster_count,
            "readonly": self.readonly,
        }

    # -- resize -----------------------------------------------------------------------------

    def resize(self, new_size: int) -> None:
        """Change the virtual size (RESIZE-GROW, RESIZE-SHRINK).

        Crash-safe order. Growing from S0 to S1:

        1. allocate the cluster that holds byte S0 - 1 if it is not (its head copied from the
           backing file), fsync the data, write and fsync the bitmap;
        2. cut the image file to S0 and extend it to S1, so every new byte is zero; fsync;
        3. write the bitmap bytes past the old bitmap end (all ones, padding clear); fsync. The
           header still says S0, so these are trailing bytes, which readers ignore;
        4. write the header with S1; fsync. The image is now S1 long;
        5. set the bits of the new clusters that share the old last bitmap byte; flush.

        A crash before 4 leaves the old image (plus ignorable trailing bytes); a crash between 4
        and 5 leaves a valid image whose first few new clusters (at most 7) read from the
        backing file instead of zeros. Shrinking from S0 to S1:

        1. flush; clear the bits past the new last cluster in the new last bitmap byte; fsync
           (under the old header, those clusters fall back to the backing file: they are
           being dropped);
        2. write the header with S1; fsync (the old bitmap's tail is now trailing bytes);
        3. truncate the add-cow file after the new bitmap, and the image file to S1; fsync.

        Every intermediate state passes the spec's structural checks.
        """
        self._check_open()
        self._check_writable()
        if new_size < 0 or new_size % SECTOR_SIZE or new_size > MAX_VIRTUAL_SIZE:
            raise FormatError(f"new size {new_size} is not a multiple of {SECTOR_SIZE} below "
                              "2^63", file=self.path, field="virtual_size",
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

    def _meta_io(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except OSError as e:
            raise _os_error(e, self.path, None, what, AddCowError) from None

    def _grow(self, new_size: int) -> None:
        h = self.header
        assert isinstance(h, HeaderV2)
        cb = self.cluster_bits
        old_size = self.virtual_size
        old_count = h.cluster_count
        old_len = h.bitmap_length
        new_count = cluster_count_for(new_size, cb)
        new_len = bitmap_length_for(new_size, cb)
        # 1. the old partial last cluster
        if old_size & (self.cluster_size - 1) and not self.all_allocated:
            last = old_count - 1
            if not self._cache.get(last):
                start = last << cb
                self._write_raw(start, self._read_backing(start, old_size - start))
                self._cache.set_range(last, 1)
        self._flush_locked()
        # 2. the image file: zeros from S0 to S1
        try:
            if self._fs.kind(self.image_path) == "block":
                if self._raw.size() < new_size:
                    raise ImageFileError(f"block device is smaller than {new_size} bytes",
                                         file=self.image_path, rule_id="IMG-SIZE")
                self._write_zeros(old_size, new_size - old_size)
            else:
                if self._raw.size() > old_size:
                    self._raw.truncate(old_size)
                self._raw.truncate(new_size)
            self._raw.fsync()
        except OSError as e:
            raise _os_error(e, self.image_path, old_size, "resize") from None
        self._cache.invalidate()
        # 3. new bitmap bytes past the old end
        bo = int(h.bitmap_offset)
        if new_len > old_len:
            piece = 1 << 20
            pos = old_len
            while pos < new_len:
                n = min(piece, new_len - pos)
                buf = bytearray(b"\xff" * n)
                if pos + n == new_len:
                    buf[-1] &= ~padding_mask(new_count) & 0xFF
                self._meta_io("bitmap write", functools.partial(self._meta.pwrite, bo + pos, buf))
                pos += n
            self._meta_io("bitmap write", lambda: self._meta.truncate(bo + new_len))
            self._meta_io("fsync", self._meta.fsync)
        # 4. header
        self._write_header(h.replace(virtual_size=new_size))
        self.virtual_size = new_size
        self._cache.cluster_count = new_count
        # 5. new clusters that share the old last byte
        share_end = min(new_count, old_len * 8)
        if share_end > old_count:
            self._cache.set_range(old_count, share_end - old_count)
            self._flush_locked()

    def _shrink(self, new_size: int) -> None:
        h = self.header
        assert isinstance(h, HeaderV2)
        cb = self.cluster_bits
        new_count = cluster_count_for(new_size, cb)
        new_len = bitmap_length_for(new_size, cb)
        bo = int(h.bitmap_offset)
        # 1. flush, then clear the bits past the new last cluster in the new last byte
        self._flush_locked()
        self._cache.invalidate()
        mask = padding_mask(new_count)
        if mask and new_len:
            old = self._meta_io("bitmap read", lambda: self._meta.pread(bo + new_len - 1, 1))
            if old and old[0] & mask:
                self._meta_io("bitmap write", lambda: self._meta.pwrite(
                    bo + new_len - 1, bytes([old[0] & ~mask & 0xFF])))
                self._meta_io("fsync", self._meta.fsync)
        # 2. header
        self._write_header(h.replace(virtual_size=new_size))
        self.virtual_size = new_size
        self._cache.cluster_count = new_count
        # 3. cut both files
        self._meta_io("truncate", lambda: self._meta.truncate(bo + new_len))
        self._meta_io("fsync", self._meta.fsync)
        try:
            if self._fs.kind(self.image_path) == "file" and self._raw.size() > new_size:
                self._raw.truncate(new_size)
                self._raw.fsync()
        except OSError as e:
            raise _os_error(e, self.image_path, new_size, "truncate") from None

    # -- hydrate ----------------------------------------------------------------------------

    def hydrate(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Copy every unallocated cluster from the backing chain (zeros past its end), then set
        ``all_allocated``: afterwards the image file alone is the guest disk."""
        self._check_open()
        self._check_writable()
        total = self.virtual_size
        with self._request():
            self._prepare_modify()
            if self.all_allocated:
                if progress:
                    progress(total, total)
                return
            cb = self.cluster_bits
            count = self.header.cluster_count
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
            self._flush_locked()
            missing = count - self._cache.count_ones()
            if missing:
                raise AddCowError(f"{missing} cluster(s) still unallocated after hydrate",
                                  file=self.path)
            h = self.header
            assert isinstance(h, HeaderV2)
            with self._header_lock:
                self._write_header(h.replace(compatible_features=int(h.compatible_features)
                                             | CompatibleFeature.ALL_ALLOCATED))

    def _hydrate_clusters(self, first: int, n: int) -> None:
        cb = self.cluster_bits
        with self._own_clusters(list(range(first, first + n))):
            for c, m, allocated in self._cluster_runs(first, n):
                if allocated:
                    continue
                start = c << cb
                end = min((c + m) << cb, self.virtual_size)
                self._copy_from_backing(start, end - start)
                self._cache.set_range(c, m)

    def _copy_from_backing(self, start: int, length: int) -> None:
        """Fill ``[start, start + length)`` of the image file with what readers see there now:
        the backing file's bytes, zeros past its end."""
        backing = self._backing
        in_backing = 0 if backing is None else max(0, min(length, backing.size - start))
        copied = self._copy_file_range(start, in_backing) if in_backing else 0
        if copied < in_backing:
            self._write_raw(start + copied,
                            self._read_backing(start + copied, in_backing - copied))
        if in_backing < length:
            self._write_zeros(start + in_backing, length - in_backing)

    def _copy_file_range(self, start: int, length: int) -> int:
        """Copy from a raw backing file in the kernel when both sides are OS files; returns
        how many bytes were copied (0 when not supported: the caller reads and writes)."""
        raw = self._backing.raw_file() if self._backing is not None else None
        src_fd = raw.fileno() if raw is not None else None
        dst_fd = self._raw.fileno()
        if src_fd is None or dst_fd is None:
            return 0
        copied = 0
        try:
            while copied < length:
                k = os.copy_file_range(src_fd, dst_fd, length - copied, start + copied,
                                       start + copied)
                if k <= 0:
                    break
                copied += k
        except OSError:
            pass  # e.g. EXDEV or EINVAL on this file system: fall back
        if copied:
            self._data_unsynced = True
        return copied

    def _write_zeros(self, start: int, length: int) -> None:
        """Zero a range of the image file. Holes of a sparse file already read as zeros, so
        only the parts holding data are written (hydrating a huge, mostly empty disk stays
        cheap)."""
        fd = self._raw.fileno()
        end = start + length
        pos = start
        while pos < end:
            seg_end = end
            if fd is not None:
                try:
                    pos = max(pos, os.lseek(fd, pos, os.SEEK_DATA))
                except OSError as e:
                    if e.errno == errno.ENXIO:
                        return  # only holes from here to the end of the file
                if pos >= end:
                    return
                try:
                    seg_end = min(end, os.lseek(fd, pos, os.SEEK_HOLE))
                except OSError:
                    seg_end = end
            while pos < seg_end:
                n = min(1 << 20, seg_end - pos)
                self._write_raw(pos, bytes(n))
                pos += n


def open_image(path: str | os.PathLike[str], mode: str = "r", *,
               fs: FileSystem | None = None,
               cache_chunk_size: int = DEFAULT_CHUNK_SIZE,
               cache_capacity: int = DEFAULT_CAPACITY) -> AddCowImage:
    """Open an add-cow image (``mode`` ``"r"`` or ``"r+"``). Version 1 images always open
    read-only (V1-READ-ONLY)."""
    return AddCowImage(path, mode, fs=fs, cache_chunk_size=cache_chunk_size,
                       cache_capacity=cache_capacity)


class AddCowBacking:
    """An add-cow backing file, opened read-only as an image of its own."""

    format = FORMAT_ADD_COW

    def __init__(self, image: AddCowImage) -> None:
        self.image = image
        self.path = image.path

    @property
    def size(self) -> int:
        return self.image.virtual_size

    def read(self, offset: int, length: int) -> bytes:
        size = self.image.virtual_size
        if offset >= size or length <= 0:
            return bytes(max(length, 0))
        n = min(length, size - offset)
        return self.image.read(offset, n).ljust(length, b"\0")

    def extents(self, offset: int, length: int) -> list[BackingExtent]:
        size = self.image.virtual_size
        end = offset + length
        out: list[BackingExtent] = []
        if offset < size:
            for e in self.image.map(offset, min(end, size) - offset):
                out.append(BackingExtent(e.start, e.length, e.allocated, e.depth, e.data))
        if end > size:
            s = max(offset, size)
            out.append(BackingExtent(s, end - s, False, 0, False))
        return out

    def raw_file(self) -> BlockFile | None:
        return None

    def close(self) -> None:
        self.image.close()


def _open_add_cow_backing(path: str, fs: FileSystem, chain: ChainState) -> Backing:
    """The :data:`~addcow_ref.engine.backing.BackingOpener` of add-cow backing files."""
    try:
        image = AddCowImage._open(path, "r", fs=fs, chain=chain)
    except BackingFileError:
        raise
    except AddCowError as e:
        raise BackingFileError(f"backing file is not a valid add-cow image: {e}",
                               file=path, rule_id="BACK-FORMAT") from None
    return AddCowBacking(image)


register_backing_format(FORMAT_ADD_COW, _open_add_cow_backing)
