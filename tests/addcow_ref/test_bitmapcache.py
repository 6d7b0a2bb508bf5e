"""The bitmap cache against a set-of-clusters model: random set_range/get/runs/count_ones/flush
with tiny chunks and capacities, so eviction and write-back happen constantly and every range
walk crosses chunk boundaries."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addcow_ref.engine.bitmapcache import BitmapCache
from addcow_ref.engine.fileio import OSFileSystem
from addcow_ref.format.bitmap import padding_mask

OFFSET = 4096

ops = st.lists(st.one_of(
    st.tuples(st.just("set"), st.integers(0, 199), st.integers(1, 40)),
    st.tuples(st.just("get"), st.integers(0, 199), st.just(0)),
    st.tuples(st.just("runs"), st.integers(0, 199), st.integers(0, 200)),
    st.tuples(st.just("flush"), st.just(0), st.just(0)),
    st.tuples(st.just("count"), st.just(0), st.just(0)),
), max_size=40)


@given(count=st.integers(1, 200), chunk=st.integers(1, 9), capacity=st.integers(1, 3),
       script=ops)
def test_cache_matches_model(tmp_path_factory: pytest.TempPathFactory, count: int, chunk: int,
                             capacity: int, script: list[tuple[str, int, int]]) -> None:
    path = tmp_path_factory.mktemp("cache") / "meta"
    length = -(-count // 8)
    path.write_bytes(bytes(OFFSET + length))
    syncs: list[int] = []
    f = OSFileSystem().open(str(path), writable=True)
    cache = BitmapCache(f, OFFSET, count, chunk_size=chunk, capacity=capacity,
                        before_writeback=lambda: syncs.append(1))
    model: set[int] = set()
    try:
        for op, a, n in script:
            a %= count
            if op == "set":
                n = min(n, count - a)
                cache.set_range(a, n)
                model.update(range(a, a + n))
            elif op == "get":
                assert cache.get(a) == (a in model)
            elif op == "runs":
                runs = cache.runs(a, n)
                pos = a
                for start, m, value in runs:
                    assert start == pos
                    assert m > 0
                    assert all((c in model) == value for c in range(start, start + m))
                    pos += m
                assert pos == min(a + n, count)
                # maximal: runs that meet at a chunk boundary are merged
                assert all(x[2] != y[2] for x, y in itertools.pairwise(runs))
            elif op == "count":
                assert cache.count_ones() == len(model)
            else:
                cache.flush()
            assert len(cache) <= capacity + 1
        cache.flush()
        assert not cache.dirty
    finally:
        f.close()
    on_disk = path.read_bytes()[OFFSET:]
    assert {i for i in range(count) if on_disk[i >> 3] >> (i & 7) & 1} == model
    assert on_disk[-1] & padding_mask(count) == 0
    if model:
        assert syncs  # bits never reached the file without the data sync first


def test_runs_takes_numpy_from_the_chunk_after_the_import_threshold(
        tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long ``runs`` call that starts without numpy and passes the import threshold part way
    hands every later chunk to ``run_arrays`` (the choice is made per chunk, not once per
    call), and its runs are the same as bit by bit."""
    from pathlib import Path

    from addcow_ref.engine import bitmapcache
    from addcow_ref.format import bitmap

    chunk = 1024  # bytes: 8192 clusters per chunk, above the run_arrays threshold
    count = 8 * chunk * 4
    rng = random.Random(7)
    data = bytes(rng.choice((0x00, 0xFF, 0x0F, 0x81)) for _ in range(count // 8))
    path = Path(str(tmp_path)) / "meta"
    path.write_bytes(bytes(OFFSET) + data)
    asked: list[int] = []
    batched: list[int] = []
    real_run_arrays = bitmap.run_arrays

    def numpy_after_two(nbytes: int) -> object:
        asked.append(nbytes)
        return bitmap.load_numpy() if len(asked) > 2 else None

    def spy(d: bytes, first: int, n: int) -> bitmap.RunArrays:
        batched.append(n)
        return real_run_arrays(d, first, n)

    monkeypatch.setattr(bitmapcache, "numpy_for_scan", numpy_after_two)
    monkeypatch.setattr(bitmapcache, "run_arrays", spy)
    f = OSFileSystem().open(str(path), writable=False)
    cache = BitmapCache(f, OFFSET, count, chunk_size=chunk, capacity=2)
    try:
        runs = cache.runs(0, count)
    finally:
        f.close()
    assert asked == [chunk] * 4
    assert batched == [8 * chunk] * 2  # chunks 3 and 4
    bits = [bool(data[c >> 3] >> (c & 7) & 1) for c in range(count)]
    want: list[tuple[int, int, bool]] = []
    for c, b in enumerate(bits):
        if want and want[-1][2] == b:
            want[-1] = (want[-1][0], want[-1][1] + 1, b)
        else:
            want.append((c, 1, b))
    assert runs == want
