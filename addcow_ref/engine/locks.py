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

__all__ = ["ClusterOwnership", "SharedLock"]


class SharedLock:
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
