"""``SharedLock``'s plain acquire/release methods (the per-request fast path of every read)
keep the lock's promises: writer preference, per-thread re-entrancy while an exclusive locker
waits, exclusive refused from inside a request, and an unmatched release refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from addcow_ref.engine.locks import SharedLock


def _until(condition: Callable[[], bool]) -> None:
    """Wait (up to 10 s) until ``condition()``: what another thread does, on a loaded machine,
    takes no fixed time."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_exclusive_waits_for_readers_and_blocks_new_ones() -> None:
    lock = SharedLock()
    lock.acquire_shared()
    order: list[str] = []
    waiting = threading.Event()

    def writer() -> None:
        waiting.set()
        with lock.exclusive():
            order.append("exclusive")

    def late_reader() -> None:
        with lock.shared():
            order.append("late reader")

    w = threading.Thread(target=writer)
    w.start()
    waiting.wait()
    _until(lambda: lock._waiting == 1)  # the writer is queued now (a sleep was not enough)
    r = threading.Thread(target=late_reader)
    r.start()
    time.sleep(0.05)
    assert order == []  # neither the writer (a reader holds it) nor the late reader (queued)
    # The holding thread may still take it again: it must not queue behind the writer.
    with lock.shared():
        order.append("re-entrant")
    lock.release_shared()
    w.join(5)
    r.join(5)
    assert order == ["re-entrant", "exclusive", "late reader"]


def test_exclusive_inside_shared_and_unmatched_release_are_refused() -> None:
    lock = SharedLock()
    with lock.shared(), pytest.raises(RuntimeError, match="inside a request"), \
            lock.exclusive():
        pass
    with pytest.raises(RuntimeError, match="without a matching"):
        lock.release_shared()
    with lock.exclusive():  # and the lock is free again
        pass


def test_many_readers_and_writers_never_overlap() -> None:
    lock = SharedLock()
    state = {"readers": 0, "writer": False, "bad": 0}
    mutex = threading.Lock()

    def reader() -> None:
        for _ in range(300):
            lock.acquire_shared()
            try:
                with mutex:
                    state["readers"] += 1
                    state["bad"] += state["writer"]
                with mutex:
                    state["readers"] -= 1
            finally:
                lock.release_shared()

    def writer() -> None:
        for _ in range(30):
            with lock.exclusive():
                with mutex:
                    state["bad"] += state["readers"] > 0 or state["writer"]
                    state["writer"] = True
                time.sleep(0.0005)
                with mutex:
                    state["writer"] = False

    threads = [threading.Thread(target=reader) for _ in range(4)]
    threads += [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert state["bad"] == 0
