"""Threads: concurrent writers never lose each other's bytes to head/tail copies, the bitmap
cache never loads one chunk twice, and writes to allocated clusters do not wait for an
allocation in progress elsewhere (the three rules of Stefan Hajnoczi's v9 review)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.engine.bitmapcache import BitmapCache
from addcow_ref.engine.fileio import OSFileSystem

from .faultfs import FaultFS
from .helpers import check_valid, make_image

CLUSTER_BITS = 12
CLUSTERS = 12
SIZE = CLUSTERS << CLUSTER_BITS
SEGMENT = 256  # byte ownership: segment s belongs to thread s % THREADS
THREADS = 4


def slow_backing_fs(delay: float) -> FaultFS:
    """Backing-file reads sleep, so head/tail copies overlap other threads' writes."""
    def hook(op: str, path: str) -> None:
        if op == "pread" and path.endswith("-base.raw"):
            time.sleep(delay)
    return FaultFS(hook)


@pytest.mark.parametrize("zeroes", [False, True], ids=["writes", "with-write-zeroes"])
@pytest.mark.parametrize("seed", range(3))
def test_concurrent_writers_keep_each_others_bytes(tmp_path: Path, seed: int,
                                                   zeroes: bool) -> None:
    """``zeroes``: every third request is a write-zeroes, which allocates like a write
    (WRITE-ZEROES-ALLOCATE), so its head/tail copies race the other threads' bytes too."""
    rng = random.Random(seed)
    backing = rng.randbytes(SIZE)
    path = make_image(tmp_path, size=SIZE, cluster_bits=CLUSTER_BITS, backing=backing)
    segments = SIZE // SEGMENT
    # expected[i]: the last value the owner of byte i wrote there (backing if never).
    expected = bytearray(backing)
    plans: list[list[tuple[int, bytes]]] = []
    for t in range(THREADS):
        mine = [s for s in range(segments) if s % THREADS == t]
        plan = []
        for k in range(40):
            s = rng.choice(mine)
            a = rng.randrange(SEGMENT)
            b = rng.randrange(a + 1, SEGMENT + 1)
            off = s * SEGMENT + a
            data = bytes([(t * 64 + k) & 0xFF if not (zeroes and k % 3 == 0) else 0]) * (b - a)
            plan.append((off, data))
            expected[off:off + len(data)] = data  # per-thread order is the plan's order
        plans.append(plan)
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)
    with addcow_ref.open_image(path, "r+", fs=slow_backing_fs(0.0005)) as img:

        def worker(plan: list[tuple[int, bytes]]) -> None:
            try:
                barrier.wait()
                for off, data in plan:
                    if zeroes and not any(data):
                        img.write_zeroes(off, len(data))
                    else:
                        img.write(off, data)
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(p,)) for p in plans]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors
        got = img.read(0, SIZE)
        assert got == expected, _first_difference(got, expected)
    check_valid(path)
    with addcow_ref.open_image(path) as img:
        assert img.read(0, SIZE) == expected


def _first_difference(a: bytes, b: bytes | bytearray) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            return f"byte {i} (segment {i // SEGMENT}, cluster {i >> CLUSTER_BITS}): {x} != {y}"
    return "equal"


def test_allocated_writes_do_not_wait_for_an_allocation(tmp_path: Path) -> None:
    """While one writer is stuck copying a cluster's head from the backing file, writes to
    an already allocated cluster complete (no global lock across allocation I/O)."""
    backing = bytes(range(256)) * (SIZE // 256)
    path = make_image(tmp_path, size=SIZE, cluster_bits=CLUSTER_BITS, backing=backing)
    release = threading.Event()
    entered = threading.Event()

    def hook(op: str, p: str) -> None:
        if op == "pread" and p.endswith("-base.raw") and blocking.is_set():
            entered.set()
            assert release.wait(10)

    blocking = threading.Event()
    with addcow_ref.open_image(path, "r+", fs=FaultFS(hook)) as img:
        img.write(0, b"A" * 4096)  # cluster 0 allocated
        blocking.set()
        stuck = threading.Thread(target=img.write, args=(5 * 4096 + 10, b"B" * 10))
        stuck.start()
        assert entered.wait(10)
        t0 = time.monotonic()
        for i in range(20):
            img.write(i * 100, b"C" * 50)  # allocated cluster: must not block
        assert img.read(0, 50) == b"C" * 50
        assert time.monotonic() - t0 < 5
        assert stuck.is_alive()  # the allocation is still in progress
        release.set()
        stuck.join(10)
        assert img.read(5 * 4096, 4096) == (
            backing[5 * 4096:5 * 4096 + 10] + b"B" * 10 + backing[5 * 4096 + 20:6 * 4096])


def test_second_writer_to_a_cluster_waits_for_its_allocation(tmp_path: Path) -> None:
    """Writer 1 allocates cluster 3 (copying its tail from the backing file, slowly); writer 2
    writes that tail meanwhile. Writer 2's bytes must win: the copy never overwrites them."""
    backing = b"\xee" * SIZE
    path = make_image(tmp_path, size=SIZE, cluster_bits=CLUSTER_BITS, backing=backing)
    release = threading.Event()
    entered = threading.Event()

    def hook(op: str, p: str) -> None:
        if op == "pread" and p.endswith("-base.raw") and not entered.is_set():
            entered.set()
            assert release.wait(10)

    base = 3 * 4096
    with addcow_ref.open_image(path, "r+", fs=FaultFS(hook)) as img:
        w1 = threading.Thread(target=img.write, args=(base, b"1" * 100))
        w1.start()
        assert entered.wait(10)
        w2 = threading.Thread(target=img.write, args=(base + 2000, b"2" * 100))
        w2.start()
        time.sleep(0.05)
        assert w2.is_alive()  # waiting for the allocation of cluster 3
        release.set()
        w1.join(10)
        w2.join(10)
        got = img.read(base, 4096)
    assert got[:100] == b"1" * 100
    assert got[2000:2100] == b"2" * 100
    assert got[100:2000] == b"\xee" * 1900
    assert got[2100:] == b"\xee" * (4096 - 2100)


class _SlowFile:
    """A file whose reads take a while, counting them per offset."""

    def __init__(self, inner: object, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.reads: dict[int, int] = {}
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def pread(self, offset: int, length: int) -> bytes:
        with self.lock:
            self.reads[offset] = self.reads.get(offset, 0) + 1
        time.sleep(self.delay)
        return self.inner.pread(offset, length)  # type: ignore[attr-defined, no-any-return]


def test_cache_never_loads_one_chunk_twice_at_once(tmp_path: Path) -> None:
    meta = tmp_path / "bitmap"
    meta.write_bytes(bytes(4096) + bytes([0b1010_1010]) * 64)
    f = _SlowFile(OSFileSystem().open(str(meta), writable=True), 0.02)
    cache = BitmapCache(f, 4096, 64 * 8, chunk_size=16, capacity=2)  # type: ignore[arg-type]
    results: list[bool] = []

    def reader(cluster: int) -> None:
        results.append(cache.get(cluster))

    threads = [threading.Thread(target=reader, args=(c,)) for c in [1, 3, 5, 7, 9, 11] * 4]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert f.reads == {4096: 1}  # 24 concurrent readers of chunk 0, one read
    assert sorted(set(results)) == [True]
    f.inner.close()  # type: ignore[attr-defined]


def test_pinned_chunks_survive_eviction(tmp_path: Path) -> None:
    """Capacity 1: a chunk in use by one thread is not evicted by another's load."""
    meta = tmp_path / "bitmap"
    meta.write_bytes(bytes(4096) + bytes(64))
    raw = OSFileSystem().open(str(meta), writable=True)
    cache = BitmapCache(raw, 4096, 64 * 8, chunk_size=8, capacity=1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def setter(first: int) -> None:
        try:
            for i in range(200):
                cache.set_range(first + (i % 64), 1)
        except BaseException as e:
            errors.append(e)
        finally:
            stop.set()

    threads = [threading.Thread(target=setter, args=(k * 64,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    cache.flush()
    assert len(cache) <= 1
    assert (tmp_path / "bitmap").read_bytes()[4096:] == b"\xff" * 64
    raw.close()


def test_progress_callback_may_read_while_close_waits(tmp_path: Path) -> None:
    """A hydrate progress callback that reads the image must not deadlock against a close()
    waiting in another thread (shared holds are re-entrant)."""
    path = make_image(tmp_path, size=SIZE, cluster_bits=CLUSTER_BITS, backing=b"\x61" * SIZE)
    img = addcow_ref.open_image(path, "r+")
    closer_started = threading.Event()
    reads: list[bytes] = []

    def progress(done: int, total: int) -> None:
        if done and not closer_started.is_set():
            threading.Thread(target=img.close, daemon=True).start()
            closer_started.set()
            time.sleep(0.05)  # let close() queue for the exclusive lock
        reads.append(img.read(0, 1))

    hydrator = threading.Thread(target=img.hydrate, args=(progress,), daemon=True)
    hydrator.start()
    hydrator.join(10)
    assert not hydrator.is_alive(), "hydrate deadlocked against close()"
    assert reads
    assert set(reads) == {b"\x61"}
    for _ in range(100):
        if img.closed:
            break
        time.sleep(0.05)
    assert img.closed


def test_requests_racing_close_fail_cleanly(tmp_path: Path) -> None:
    """Reads racing a close() either complete or raise ValueError('closed'): never an
    OSError from a descriptor closed under them."""
    path = make_image(tmp_path, size=SIZE, cluster_bits=CLUSTER_BITS, backing=b"\x01" * SIZE)
    for _ in range(20):
        img = addcow_ref.open_image(path, "r+")
        errors: list[BaseException] = []

        def reader(img: addcow_ref.AddCowImage = img,
                   errors: list[BaseException] = errors) -> None:
            try:
                while True:
                    img.read(0, SIZE)
                    img.write(100, b"r")
            except ValueError as e:
                if "closed" not in str(e):
                    errors.append(e)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for th in threads:
            th.start()
        time.sleep(0.002)
        img.close()
        for th in threads:
            th.join(10)
        assert not errors, errors
