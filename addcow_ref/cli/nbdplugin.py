"""nbdkit Python plugin (API version 2) serving an add-cow image through the reference library.

Run by ``addcow serve`` (``serve.py``), which passes ``image=PATH`` and ``readonly=true|false``
and a ``PYTHONPATH`` that makes ``addcow_ref`` importable in nbdkit's own interpreter. nbdkit
loads this file as ``__main__`` and calls the module-level functions below by name.

Why the choices below are truthful:

* One ``AddCowImage`` per server, opened in ``get_ready`` and shared by every connection.
  ``AddCowImage`` is thread-safe by design (``image.py``: requests share a lock, a write into
  unallocated clusters takes allocation ownership of exactly those clusters, so two first
  writes into one cluster cannot copy the backing head/tail over each other's bytes). So
  nbdkit's ``parallel`` thread model is safe, and file I/O (which releases the GIL) overlaps.
  Because every connection goes through the same object, a ``flush`` on any connection makes
  every write that any connection completed durable and visible: exactly what NBD
  ``can_multi_conn`` promises. Separate image objects per connection would not give that (each
  would cache its own bitmap), which is why the image is not opened in ``open``.
* Extents (NBD ``base:allocation``) describe the disk the client sees, which has no backing
  file in the client's view. A range reads from the image file or from the backing chain as
  data (flags 0); only where no layer holds data and the bytes really read as zeros (no backing
  file, or past the end of the last backing file) is it reported ``HOLE|ZERO``. Reporting
  backing data as a hole would make ``qemu-img map`` print ``data: false, zero: false`` for
  bytes that are there, and a copy tool could skip them.
* Writes are refused (``EROFS``) when the server or the image is read-only; v1 images are always
  read-only in the reference.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

try:  # Present only inside nbdkit; importing this module elsewhere (tests, docs) is fine.
    import nbdkit
except ImportError:  # pragma: no cover - depends on the interpreter
    nbdkit = None

from addcow_ref import AddCowImage, open_image
from addcow_ref.format.errors import AddCowError, ReadOnlyError

API_VERSION = 2

#: NBD ``base:allocation`` flags, fixed by the NBD protocol (nbdkit.EXTENT_HOLE/ZERO).
EXTENT_DATA = 0
EXTENT_HOLE = 1
EXTENT_ZERO = 2

#: nbdkit's FLAG_FUA / FLAG_REQ_ONE and THREAD_MODEL_PARALLEL, fixed by its plugin ABI.
_FLAG_FUA = 1 << 1
_FLAG_REQ_ONE = 1 << 2
_THREAD_MODEL_PARALLEL = 3

_T = TypeVar("_T")


@dataclass
class _Config:
    image: Path | None = None
    readonly: bool = False


@dataclass
class _Export:
    """The one open image behind every connection."""

    image: AddCowImage


@dataclass
class _Handle:
    """Per-connection state: whether the client may write and whether it did."""

    readonly: bool
    wrote: bool = False


_config = _Config()
_export: _Export | None = None


def _parse_bool(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{key}={value!r}: expected true or false")


def _errno_for(exc: BaseException) -> int:
    """The errno a client should see: the OS's own when there is one."""
    if isinstance(exc, ReadOnlyError):
        return errno.EROFS
    if isinstance(exc, ValueError):
        return errno.EINVAL
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.errno:
        return cause.errno
    return errno.EIO


def _call(fn: Callable[[AddCowImage], _T]) -> _T:
    """Run ``fn(image)``, turning failures into an errno for nbdkit."""
    export = _require_export()
    try:
        return fn(export.image)
    except (AddCowError, OSError, ValueError) as e:
        if nbdkit is not None:
            nbdkit.set_error(_errno_for(e))
        raise


def _require_export() -> _Export:
    if _export is None:
        raise RuntimeError("the image is not open (get_ready was not called)")
    return _export


# --- server lifetime ---------------------------------------------------------------------------

def config(key: str, value: str) -> None:
    if key == "image":
        _config.image = Path(value)
    elif key == "readonly":
        _config.readonly = _parse_bool(key, value)
    else:
        raise ValueError(f"unknown parameter {key!r} (expected image=PATH, readonly=BOOL)")


def config_complete() -> None:
    if _config.image is None:
        raise ValueError("image=PATH is required")


def thread_model() -> int:
    return int(getattr(nbdkit, "THREAD_MODEL_PARALLEL", _THREAD_MODEL_PARALLEL))


def get_ready() -> None:
    """Open the image before the first client, so a bad image stops the server at startup
    with the library's message instead of failing every connection."""
    global _export
    assert _config.image is not None
    image = open_image(str(_config.image), mode="r" if _config.readonly else "r+")
    if image.readonly and not _config.readonly:
        # The reference opens v1 images read-only whatever the mode; say so instead of
        # silently serving a read-only disk to a user who asked for a writable one.
        image.close()
        raise ReadOnlyError(
            f"version {image.version} images are read-only: serve with --readonly, or "
            "upgrade the image to version 2 first (addcow upgrade)",
            file=str(_config.image), rule_id="V1-READ-ONLY")
    _export = _Export(image)


def cleanup() -> None:
    """Called once when nbdkit shuts down (after SIGINT/SIGTERM): flush and close the image
    so the bitmap on disk matches the data (the spec's flush semantics)."""
    global _export
    if _export is None:
        return
    image, _export = _export.image, None
    image.close()  # flushes first when writable


# --- connections -------------------------------------------------------------------------------

def open(readonly: bool) -> _Handle:  # shadows the builtin: nbdkit calls it by this name
    export = _require_export()
    return _Handle(readonly=readonly or bool(export.image.readonly))


def close(h: _Handle) -> None:
    """A client that wrote and left without flushing still gets its bitmap made durable."""
    if h.wrote and _export is not None:
        _call(lambda img: img.flush())


def get_size(h: _Handle) -> int:
    return int(_require_export().image.virtual_size)


def block_size(h: _Handle) -> tuple[int, int, int]:
    """Any byte range works (minimum 1); whole clusters are preferred, because a write that
    covers a whole unallocated cluster needs no copy of the backing head and tail."""
    preferred = min(max(int(_require_export().image.cluster_size), 512), 32 << 20)
    return (1, preferred, 0xFFFFFFFF)


def can_write(h: _Handle) -> bool:
    return not h.readonly


def can_flush(h: _Handle) -> bool:
    return True


def can_multi_conn(h: _Handle) -> bool:
    # One shared image object, and flush() flushes the shared files: what one
    # connection wrote and flushed is what every other connection reads.
    return True


def can_extents(h: _Handle) -> bool:
    return True


def can_trim(h: _Handle) -> bool:
    # add-cow has no way to deallocate a cluster (bits are never cleared by writes).
    return False


def pread(h: _Handle, buf: memoryview | bytearray, offset: int, flags: int) -> None:
    length = len(buf)
    data = _call(lambda img: img.read(offset, length))
    if len(data) != length:
        if nbdkit is not None:
            nbdkit.set_error(errno.EIO)
        raise OSError(errno.EIO, f"short read: {len(data)} of {length} bytes at {offset}")
    buf[:] = data


def pwrite(h: _Handle, buf: bytes | memoryview, offset: int, flags: int) -> None:
    """``buf`` is valid for the duration of the call, and the library is done with it when
    ``write`` returns, so it is passed on without a copy."""
    if h.readonly:
        if nbdkit is not None:
            nbdkit.set_error(errno.EROFS)
        raise ReadOnlyError("the export is read-only")

    def write(img: AddCowImage) -> None:
        img.write(offset, buf)
        if flags & _FLAG_FUA:
            img.flush()

    _call(write)
    h.wrote = True


def flush(h: _Handle, flags: int) -> None:
    if not h.readonly:
        _call(lambda img: img.flush())


def extents(h: _Handle, count: int, offset: int, flags: int) -> list[tuple[int, int, int]]:
    result = _call(lambda img: extents_of(img, offset, count))
    if flags & _FLAG_REQ_ONE:
        return result[:1]
    return result


# --- extents -----------------------------------------------------------------------------------

def extents_of(image: AddCowImage, offset: int, count: int) -> list[tuple[int, int, int]]:
    """``(offset, length, flags)`` covering ``[offset, offset + count)`` of the guest disk
    (clipped to its end), adjacent ranges with equal flags merged.

    ``Extent.data`` of the reference's ``map`` is False exactly where no layer of the chain
    holds the bytes, so they read as zeros: those ranges are ``HOLE|ZERO``; all else is data.
    """
    end = min(offset + count, int(image.virtual_size))
    out: list[tuple[int, int, int]] = []
    if end <= offset:
        return out
    for e in image.map(offset, end - offset):
        flags = EXTENT_DATA if e.data else EXTENT_HOLE | EXTENT_ZERO
        if out and out[-1][2] == flags and out[-1][0] + out[-1][1] == e.start:
            out[-1] = (out[-1][0], out[-1][1] + e.length, flags)
        else:
            out.append((e.start, e.length, flags))
    return out
