"""The state of an open image and the byte-level steps its operations share.

:class:`ImageBase` is what :class:`~addcow_ref.engine.image.AddCowImage` is made of below its
public API: the two files, the backing file, the bitmap cache, the locks and the
:class:`~addcow_ref.engine.descriptor.ImageDescriptor`, plus the steps that reading, writing,
mapping, resizing and hydrating all take (bitmap runs, raw reads and writes that raise typed
errors, the data-before-bitmap flush, header rewrites). The operations live in their own modules
as mixins over this class (``extents``, ``resize``, ``hydrate``), so none of them imports
another and the image module only assembles them.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from addcow_ref.engine.backing import Backing, ChainState
from addcow_ref.engine.bitmapcache import BitmapCache
from addcow_ref.engine.descriptor import ImageDescriptor
from addcow_ref.engine.fileio import BlockFile, FileSystem
from addcow_ref.engine.locks import ClusterOwnership, SharedLock
from addcow_ref.format.constants import KNOWN_AUTOCLEAR_FEATURES
from addcow_ref.format.errors import AddCowError, BackingFileError, ImageFileError, ReadOnlyError
from addcow_ref.format.header import HeaderV1, HeaderV2

__all__ = ["ImageBase", "RangeError", "os_error"]

T = TypeVar("T")


class RangeError(AddCowError, ValueError):
    """A read, write, write-zeroes or discard that reaches past the end of the disk: refused
    whole (READ-RANGE, WRITE-RANGE). A ``ValueError`` too, as a bad argument."""


def os_error(e: OSError, file: str, offset: int | None, what: str,
             cls: type[AddCowError] = ImageFileError) -> AddCowError:
    """The typed error for an ``OSError`` of ``what`` on ``file``: one line naming the errno."""
    name = errno.errorcode.get(e.errno or 0, "")
    text = f"{what} failed: {e.strerror or e}" + (f" ({name})" if name else "")
    return cls(text, file=file, offset=offset)


class ImageBase:
    """An open image's state and shared steps; see the module docstring."""

    path: str
    header: HeaderV2 | HeaderV1
    readonly: bool
    image_path: str
    #: Why the image cannot be read: set only by a ``lenient_backing`` open whose backing chain
    #: could not be opened (else None); such an image refuses every data change.
    unreadable: str | None
    # Copies of the descriptor's values that every request reads, kept as plain attributes
    # (properties over the descriptor, with its IntFlag test, made cached reads markedly slower);
    # _set_descriptor is the one place that sets them.
    version: int
    cluster_bits: int
    cluster_size: int
    virtual_size: int
    _all_allocated: bool
    _desc: ImageDescriptor
    _fs: FileSystem
    _files: list[BlockFile]
    _meta: BlockFile
    _raw: BlockFile
    _backing: Backing | None
    _chain: ChainState
    _cache: BitmapCache
    _closed: bool
    _rw: SharedLock
    _owners: ClusterOwnership
    _sync_mutex: threading.Lock
    _header_lock: threading.Lock
    _data_unsynced: bool
    _prepared: bool
    #: Set when a sync failed (WRITE-SYNC-FAILED): the image refuses every change until reopened.
    _failed: AddCowError | None
    _force_share: bool
    _confine: str | None

    # -- the description ----------------------------------------------------------------------

    @property
    def descriptor(self) -> ImageDescriptor:
        """The image's header facts, from either header version."""
        return self._desc

    def _set_descriptor(self, desc: ImageDescriptor) -> None:
        self._desc = desc
        self.version = desc.version
        self.cluster_bits = desc.cluster_bits
        self.cluster_size = desc.cluster_size
        self.virtual_size = desc.virtual_size
        self._all_allocated = desc.all_allocated

    @property
    def all_allocated(self) -> bool:
        return self._all_allocated

    @property
    def backing(self) -> Backing | None:
        return self._backing

    @property
    def closed(self) -> bool:
        return self._closed

    def metadata_bytes(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)`` of the add-cow file itself (the header and the
        name area), read through the image's own open file: the file whose header the image
        checked, even if another process renamed a different one in under its name since."""
        with self._request():
            return self._meta_io("read", lambda: self._meta.pread(offset, length))

    # -- checks -------------------------------------------------------------------------------

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

    def _check_range(self, offset: int, length: int, rule_id: str = "READ-RANGE") -> None:
        """Refuse, never clip, a request that reaches past the disk (READ-RANGE; writers pass
        WRITE-RANGE): before any file is touched."""
        if offset < 0 or length < 0 or offset + length > self.virtual_size:
            raise RangeError(f"range [{offset}, {offset + length}) is outside the disk "
                             f"[0, {self.virtual_size})", file=self.path, rule_id=rule_id)

    def _check_writable(self) -> None:
        self._check_not_failed()
        if self.readonly:
            if not self._desc.writable:
                raise ReadOnlyError("version 1 images are read-only; upgrade to version 2 "
                                    "first", file=self.path, rule_id="V1-READ-ONLY")
            raise ReadOnlyError("image is open read-only", file=self.path)
        if self.unreadable is not None:
            raise BackingFileError(f"cannot change an image whose backing chain cannot be "
                                   f"opened: {self.unreadable}", file=self.path,
                                   rule_id="BACK-EXISTS")

    # -- bitmap runs ----------------------------------------------------------------------------

    def _cluster_runs(self, first: int, count: int) -> list[tuple[int, int, bool]]:
        if self.all_allocated:
            return [(first, count, True)] if count > 0 else []
        try:
            return self._cache.runs(first, count)
        except OSError as e:
            raise os_error(e, self.path, None, "bitmap read", AddCowError) from None

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

    def _unallocated(self, first: int, last: int) -> list[int]:
        out: list[int] = []
        for c, n, value in self._cluster_runs(first, last - first + 1):
            if not value:
                out.extend(range(c, c + n))
        return out

    # -- bytes ----------------------------------------------------------------------------------

    def _read_raw(self, offset: int, length: int) -> bytes:
        try:
            data = self._raw.pread(offset, length)
        except OSError as e:
            raise os_error(e, self.image_path, offset, "read") from None
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
            raise os_error(e, self.image_path, offset, "write") from None
        self._data_unsynced = True

    def _punch_raw(self, start: int, length: int) -> None:
        """Make ``[start, start + length)`` of the image file read zeros, as a hole (the data
        is then unsynced, as after a write)."""
        self._data_unsynced = True
        try:
            self._raw.punch_hole(start, length)
        except OSError as e:
            raise os_error(e, self.image_path, start, "punch hole") from None

    def _cut_image_file_to(self, size: int) -> None:
        """Truncate a regular image file longer than ``size`` to ``size`` and sync it
        (IMG-LENGTH; resize's shrink and hydrate); a block device or a short file is left."""
        try:
            cut = self._fs.kind(self.image_path) == "file" and self._raw.size() > size
            if cut:
                self._raw.truncate(size)
        except OSError as e:
            raise os_error(e, self.image_path, size, "truncate") from None
        if cut:
            self._sync_image_file(size)

    def _meta_io(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, an operation on the add-cow file, with its ``OSError`` typed."""
        try:
            return fn()
        except OSError as e:
            raise os_error(e, self.path, None, what, AddCowError) from None

    # -- durability -----------------------------------------------------------------------------

    def _check_not_failed(self) -> None:
        """Refuse a change, a flush or a bitmap write-back once a sync has failed."""
        failed = self._failed
        if failed is not None:
            raise AddCowError(f"an earlier sync failed ({failed.message}); the image refuses "
                              "every change until it is closed and opened again",
                              file=failed.file, rule_id="WRITE-SYNC-FAILED")

    def _fail(self, error: AddCowError) -> AddCowError:
        """Mark the image failed by ``error`` (a failed sync) and return it, to be raised."""
        if self._failed is None:
            self._failed = error
        return error

    def _sync_data(self) -> None:
        """fsync the image file if anything was written since the last fsync. Serialised, so
        a caller never skips the fsync while another caller's is still running.

        A failed fsync is final (WRITE-SYNC-FAILED): the kernel may have dropped the dirty
        pages and reports the error once, so a retry would succeed without the data. The image
        is marked failed, and since every bitmap write-back and flush comes through here, no
        bit set since the last good sync ever reaches the disk."""
        with self._sync_mutex:
            self._check_not_failed()
            if not self._data_unsynced:
                return
            self._data_unsynced = False
            try:
                self._raw.fsync()
            except OSError as e:
                raise self._fail(os_error(e, self.image_path, None, "fsync")) from None

    def _sync_image_file(self, offset: int | None = None) -> None:
        """fsync the image file after a change outside the data path (a truncate or punch of
        resize or hydrate). A failure is as final as one in :meth:`_sync_data`
        (WRITE-SYNC-FAILED): the next step of the operation, and every later change, would
        otherwise build on bytes that may never reach the disk."""
        self._check_not_failed()
        try:
            self._raw.fsync()
        except OSError as e:
            raise self._fail(os_error(e, self.image_path, offset, "fsync")) from None

    def _sync_addcow_file(self) -> None:
        """fsync the add-cow file after a header or bitmap change made outside the cache (resize,
        the header rewrite); a failure marks the image failed (WRITE-SYNC-FAILED)."""
        self._check_not_failed()
        try:
            self._meta.fsync()
        except OSError as e:
            raise self._fail(os_error(e, self.path, None, "fsync", AddCowError)) from None

    def _flush_locked(self) -> None:
        self._sync_data()
        try:
            self._cache.flush()
        except OSError as e:
            raise self._fail(os_error(e, self.path, None, "bitmap write",
                                      AddCowError)) from None
        except AddCowError as e:
            # The cache's own typed error. A failed bitmap write may be retried (ENOSPC may
            # pass); a failed fsync of the add-cow file is as final as one of the image file.
            if e.message.startswith("bitmap fsync"):
                raise self._fail(e) from None
            raise

    # -- the header -----------------------------------------------------------------------------

    def _rewrite_header(self, **changes: int) -> None:
        """Write the header with ``changes`` and fsync it. Only writers call this, after
        :meth:`_check_writable`: a writable image has a version 2 header."""
        self._check_not_failed()
        old = self.header
        assert isinstance(old, HeaderV2), "only version 2 images open writable"
        header: HeaderV2 = old.replace(**changes)
        try:
            self._meta.pwrite(0, header.build())
        except OSError as e:
            raise os_error(e, self.path, 0, "header write", AddCowError) from None
        self._sync_addcow_file()
        self.header = header
        self._set_descriptor(self._desc.updated(header))

    def _prepare_modify(self) -> None:
        """Clear unknown autoclear bits before the first modification (FEAT-AUTOCLEAR-UNKNOWN):
        this writer cannot keep whatever they promise up to date."""
        with self._header_lock:
            if self._prepared:
                return
            autoclear = self._desc.autoclear_features
            if autoclear & ~KNOWN_AUTOCLEAR_FEATURES:
                self._rewrite_header(autoclear_features=autoclear & KNOWN_AUTOCLEAR_FEATURES)
            self._prepared = True

    def _write_zeros(self, start: int, length: int) -> None:
        """Zero a range of the image file. Holes of a sparse file already read as zeros, so
        only the parts that may hold data are written (hydrating a huge, mostly empty disk
        stays cheap)."""
        segments = self._raw.data_segments(start, length)
        while True:
            try:
                segment = next(segments, None)
            except OSError as e:
                raise os_error(e, self.image_path, start, "data segments query") from None
            if segment is None:
                return
            pos, n = segment
            end = pos + n
            while pos < end:
                k = min(1 << 20, end - pos)
                self._write_raw(pos, bytes(k))
                pos += k
