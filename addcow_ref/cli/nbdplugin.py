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
* Reads fill nbdkit's buffer straight from the file that holds the bytes, and block status
  tells holes from data (``nbdlayers.py``): a range whose supplying file holds a hole, or that
  no layer holds, is ``HOLE|ZERO``, so copy tools stay thin; all else is data.
* ``zero`` and ``trim`` are the library's ``write_zeroes`` and ``discard`` (spec: write-zeroes
  allocates like a write of zeros and may leave a hole in the image file; a discard punches
  only allocated clusters and never clears a bit). A fast zero is refused (``ENOTSUP``, so
  the client falls back) only when the client forbids holes: punching is then not allowed and
  writing zeros is not fast.
* nbdkit starts ``--threads`` workers per connection (``serve.py`` picks the default): the
  callbacks hold the GIL for almost all of their time, so more workers add GIL hand-offs
  (futex calls) rather than parallel work.
* Writes are refused (``EROFS``) when the server or the image is read-only; v1 images are always
  read-only in the reference.
* A failed request or startup is one line in the server's log. nbdkit's Python plugin logs an
  exception raised by a callback as ``traceback.format_exception`` renders it, one multi-line
  message per failure. A refusal the library reports (an ``AddCowError`` or ``OSError``) is not
  a bug, so inside nbdkit this module has that function render those two as their one-line
  message (names escaped for the terminal); anything else, a bug, keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

try:  # Present only inside nbdkit; importing this module elsewhere (tests, docs) is fine.
    import nbdkit
except ImportError:  # pragma: no cover - depends on the interpreter
    nbdkit = None

from addcow_ref import AddCowImage, open_image
from addcow_ref.cli.nbdlayers import (  # noqa: F401  (EXTENT_*: the flags, re-exported)
    EXTENT_DATA,
    EXTENT_HOLE,
    EXTENT_ZERO,
    EXTENTS_LIMIT,
    Layers,
)
from addcow_ref.format.errors import AddCowError, ReadOnlyError
from addcow_ref.format.text import printable

API_VERSION = 2

#: nbdkit's FLAG_MAY_TRIM / FUA / REQ_ONE / FAST_ZERO and THREAD_MODEL_PARALLEL, fixed by its
#: plugin ABI.
_FLAG_MAY_TRIM = 1 << 0
_FLAG_FUA = 1 << 1
_FLAG_REQ_ONE = 1 << 2
_FLAG_FAST_ZERO = 1 << 3
_THREAD_MODEL_PARALLEL = 3

_T = TypeVar("_T")


@dataclass
class _Config:
    image: Path | None = None
    readonly: bool = False
    confine: str | None = None


class _Export:
    """The one open image behind every connection, and its files for the read path."""

    def __init__(self, image: AddCowImage) -> None:
        self.image = image
        self.layers = Layers(image)

    def close(self) -> None:
        self.layers.close()
        self.image.close()  # flushes first when writable


@dataclass
class _Handle:
    """Per-connection state: whether the client may write and whether it did."""

    readonly: bool
    wrote: bool = False


_config = _Config()
_export: _Export | None = None


def one_line(exc: BaseException) -> str:
    """The log line for a failure the library reported: its message, naming the file."""
    if isinstance(exc, OSError) and not isinstance(exc, AddCowError):
        text = exc.strerror or str(exc)
        if exc.filename is not None:
            text = f"{os.fsdecode(exc.filename)}: {text}"
        return printable(text)
    return printable(str(exc))


_full_format_exception = traceback.format_exception
_UNSET = object()


def _format_exception(exc: type[BaseException] | BaseException | None, /,
                      value: object = _UNSET, tb: object = _UNSET, limit: int | None = None,
                      chain: bool = True) -> list[str]:
    """``traceback.format_exception`` as nbdkit calls it (type, value, traceback), with a
    library refusal rendered as its one line."""
    shown = exc if value is _UNSET else value
    if isinstance(shown, (AddCowError, OSError)):
        return [one_line(shown)]
    if value is _UNSET:
        assert isinstance(exc, BaseException)
        return _full_format_exception(exc, limit=limit, chain=chain)
    assert exc is None or isinstance(exc, type)
    trace = tb if isinstance(tb, TracebackType) else None
    return _full_format_exception(exc, value if isinstance(value, BaseException) else None,
                                  trace, limit=limit, chain=chain)


if nbdkit is not None:  # pragma: no cover - only inside nbdkit's interpreter
    traceback.format_exception = _format_exception


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
        _set_error(_errno_for(e))
        raise


def _set_error(err: int) -> None:
    if nbdkit is not None:
        nbdkit.set_error(err)


def _refuse_readonly(h: _Handle) -> None:
    if h.readonly:
        _set_error(errno.EROFS)
        raise ReadOnlyError("the export is read-only")


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
    elif key == "confine":
        _config.confine = value
    else:
        raise ValueError(f"unknown parameter {key!r} (expected image=PATH, readonly=BOOL, "
                         "confine=DIR)")


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
    image = open_image(str(_config.image), mode="r" if _config.readonly else "r+",
                       confine=_config.confine)
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
    export, _export = _export, None
    export.close()


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
    # A discard punches allocated clusters of the image file; bits are never cleared.
    return not h.readonly


def can_zero(h: _Handle) -> bool:
    return not h.readonly


def can_fast_zero(h: _Handle) -> bool:
    return not h.readonly


def pread(h: _Handle, buf: memoryview | bytearray, offset: int, flags: int) -> None:
    """Fill nbdkit's buffer in place (``nbdlayers.Layers.read_into``): no bytes object, no
    second copy."""
    export = _require_export()
    try:
        export.layers.read_into(buf if isinstance(buf, memoryview) else memoryview(buf), offset)
    except (AddCowError, OSError, ValueError) as e:
        _set_error(_errno_for(e))
        raise


def pwrite(h: _Handle, buf: bytes | memoryview, offset: int, flags: int) -> None:
    """``buf`` is valid for the duration of the call, and the library is done with it when
    ``write`` returns, so it is passed on without a copy."""
    _refuse_readonly(h)
    export = _require_export()
    img = export.image
    try:
        try:
            img.write(offset, buf)
        finally:  # even a failed write may have allocated clusters
            export.layers.forget(offset, len(buf))
        if flags & _FLAG_FUA:
            img.flush()
    except (AddCowError, OSError, ValueError) as e:
        _set_error(_errno_for(e))
        raise
    h.wrote = True


def zero(h: _Handle, count: int, offset: int, flags: int) -> None:
    """``write_zeroes``, punching the fully covered clusters when the client allows holes.
    Without that permission the zeros are written, which is not fast: a fast-zero request
    is then refused with ``ENOTSUP``, as the NBD protocol asks, and the client falls back."""
    _refuse_readonly(h)
    may_trim = bool(flags & _FLAG_MAY_TRIM)
    if flags & _FLAG_FAST_ZERO and not may_trim:
        _set_error(errno.ENOTSUP)
        raise OSError(errno.ENOTSUP, "a fast zero that may not leave a hole would write zeros")

    def run(img: AddCowImage) -> None:
        try:
            img.write_zeroes(offset, count, punch=may_trim)
        finally:
            _require_export().layers.forget(offset, count)
        if flags & _FLAG_FUA:
            img.flush()

    _call(run)
    h.wrote = True


def trim(h: _Handle, count: int, offset: int, flags: int) -> None:
    """``discard``: holes are punched where the image file holds the range's clusters; the
    rest keeps reading the backing file."""
    _refuse_readonly(h)

    def run(img: AddCowImage) -> None:
        img.discard(offset, count)
        if flags & _FLAG_FUA:
            img.flush()

    _call(run)
    h.wrote = True


def flush(h: _Handle, flags: int) -> None:
    if not h.readonly:
        _call(lambda img: img.flush())


def extents(h: _Handle, count: int, offset: int, flags: int) -> list[tuple[int, int, int]]:
    export = _require_export()
    limit = 1 if flags & _FLAG_REQ_ONE else EXTENTS_LIMIT
    try:
        result = export.layers.extents(offset, count, limit)
    except (AddCowError, OSError, ValueError) as e:
        _set_error(_errno_for(e))
        raise
    return result[:1] if flags & _FLAG_REQ_ONE else result


def extents_of(image: AddCowImage, offset: int, count: int) -> list[tuple[int, int, int]]:
    """``(offset, length, flags)`` covering ``[offset, offset + count)`` of the guest disk
    (clipped to its end), adjacent ranges with equal flags merged: the block status the server
    reports (``nbdlayers.Layers.extents``), for one call outside a server."""
    layers = Layers(image)
    try:
        return layers.extents(offset, count, limit=max(1, count))
    finally:
        layers.close()
