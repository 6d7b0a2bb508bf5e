"""The two locks of an open image (spec: "Reading, writing and resizing"; the concurrency model
in :mod:`addcow_ref.engine.image`).

* :class:`SharedLock`: requests (read, write, map, flush, hydrate) hold it shared; resize and
  close hold it exclusively, so the geometry never changes under a request.
* :class:`ClusterOwnership`: a write that allocates clusters owns exactly those clusters while
  it copies the head/tail from the backing file and sets their bits, so a second writer to the
  same cluster waits, then finds it allocated (a head/tail copy can never overwrite guest data).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType

__all__ = ["ClusterOwnership", "SharedLock"]


class SharedLock:
    """Shared/exclusive lock with writer preference (resize and close must not starve).

    Shared holds are re-entrant per thread: a thread that already holds the lock shared (a
    hydrate whose progress callback reads the image) does not queue behind a waiting
    exclusive locker, which would otherwise wait for it forever.

    Every request takes it, so its shared side is the per-call cost of a small read
    (``bench`` scenario *random-reads*, per-call row): :meth:`acquire_shared` and
    :meth:`release_shared` are plain methods (no generator context manager), take the mutex
    once each, and wake waiters only when an exclusive locker is waiting for the last reader
    to leave. Readers and the exclusive locker wait on one condition over that mutex.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._cond = threading.Condition(self._mutex)
        self._readers = 0
        self._writer = False
        self._waiting = 0
        self._local = threading.local()
        self._hold = _SharedHold(self)

    def acquire_shared(self) -> None:
        """Hold the lock shared (again, if this thread already does): pair with
        :meth:`release_shared`."""
        local = self._local
        depth: int = getattr(local, "depth", 0)
        if depth:
            local.depth = depth + 1
            return
        with self._mutex:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        local.depth = 1

    def release_shared(self) -> None:
        local = self._local
        depth: int = getattr(local, "depth", 0)
        if depth <= 0:
            raise RuntimeError("release_shared() without a matching acquire_shared()")
        local.depth = depth - 1
        if depth > 1:
            return
        with self._mutex:
            self._readers -= 1
            if not self._readers and self._waiting:
                self._cond.notify_all()

    def shared(self) -> _SharedHold:
        """``with lock.shared():`` holds it shared for the block."""
        return self._hold

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
            except BaseException:
                self._waiting -= 1
                self._cond.notify_all()  # readers held back by this waiter may go on
                raise
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class _SharedHold:
    """The context manager :meth:`SharedLock.shared` returns: one object per lock, reused,
    since all its state is the lock's and the thread's."""

    __slots__ = ("_lock",)

    def __init__(self, lock: SharedLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire_shared()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._lock.release_shared()


class ClusterOwnership:
    """Per-cluster allocation ownership: at most one owner per cluster at a time."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: dict[int, threading.Event] = {}

    @contextmanager
    def own(self, clusters: Sequence[int]) -> Iterator[None]:
        """Own ``clusters``, waiting for their other owners. They must be ascending: two owners
        then take shared clusters in the same order and cannot deadlock."""
        taken: list[int] = []
        try:
            for c in clusters:
                while True:
                    with self._mutex:
                        other = self._owner.get(c)
                        if other is None:
                            self._owner[c] = threading.Event()
                            taken.append(c)
                            break
                    other.wait()
            yield
        finally:
            with self._mutex:
                for c in taken:
                    self._owner.pop(c).set()
