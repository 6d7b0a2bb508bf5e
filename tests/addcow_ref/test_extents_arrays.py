"""The batch map (``iter_extent_arrays``, ``BitmapCache.run_arrays``, ``iter_span_arrays``,
``write_image_map_json``) against the per-extent map built from ``iter_runs``: the same
extents, the same hole-aware spans and the same JSON text, on hypothesis bitmaps over raw and
add-cow backing files with holes, with windows and bitmap chunks small enough that runs cross
them, and with numpy used from the start, from part way, or not at all."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import addcow_ref
from addcow_ref.engine import bitmapcache, extents
from addcow_ref.engine.extents import Extent, ExtentArrays, merge_windows
from addcow_ref.engine.image import AddCowImage, open_image
from addcow_ref.format import bitmap
from addcow_ref.ops import mapping
from addcow_ref.ops.holes import LayerFiles, split_extents

CB = 10  # 1 KiB clusters: many clusters in a small file, and a last one that can be half used
CLUSTER = 1 << CB

#: numpy for every window; numpy after the first few extents; no numpy at all.
MODES = ["numpy", "mixed", "no-numpy"]


def _mode(mp: pytest.MonkeyPatch, mode: str) -> None:
    mp.setattr(extents, "MAP_WINDOW_CLUSTERS", 64)  # many windows, runs across them
    if mode == "numpy":
        import numpy

        mp.setattr(extents, "numpy_if_loaded", lambda: numpy)
    elif mode == "mixed":
        mp.setattr(extents, "numpy_if_loaded", lambda: None)
        mp.setattr(extents, "ARRAYS_AFTER_EXTENTS", 3)
    else:
        mp.setattr(extents, "numpy_if_loaded", lambda: None)
        mp.setattr(extents, "load_numpy", lambda: None)


def _reference_map(img: AddCowImage, offset: int, length: int) -> list[Extent]:
    """The per-extent map: each window by ``_map_window`` (``BitmapCache.runs`` over
    ``iter_runs``), merged across windows by ``mergeable``, as ``iter_map`` did before the
    batch map."""
    out: list[Extent] = []
    step = extents.MAP_WINDOW_CLUSTERS << img.cluster_bits
    for win in range(offset, offset + length, step):
        for e in img._map_window(win, min(step, offset + length - win)):
            if out and extents.mergeable(out[-1], e):
                out[-1] = Extent(out[-1].start, out[-1].length + e.length, e.allocated,
                                 e.depth, e.data)
            else:
                out.append(e)
    return out


def _runs(draw: st.DrawFn, n: int) -> list[tuple[int, int]]:
    """``(first, count)`` ranges of ``[0, n)``: a few long and many short ones."""
    out = []
    for _ in range(draw(st.integers(0, 12))):
        first = draw(st.integers(0, n - 1))
        out.append((first, draw(st.integers(1, max(1, min(n - first, 200))))))
    return out


@st.composite
def chains(draw: st.DrawFn) -> dict[str, object]:
    clusters = draw(st.integers(1, 700))
    size = clusters * CLUSTER - draw(st.sampled_from([0, 0, 512]))  # a partial last cluster
    return {
        "size": size,
        "bits": _runs(draw, clusters),
        "backing": draw(st.sampled_from(["none", "raw", "addcow"])),
        # A backing file shorter or longer than the disk: zeros past its end.
        "backing_size": draw(st.integers(0, size + 3 * CLUSTER)),
        "base_bits": _runs(draw, clusters + 3),
        # Bytes written into the layers' raw files: data; the rest of a file is a hole.
        "image_data": _runs(draw, clusters),
        "base_data": _runs(draw, clusters + 3),
        "window": draw(st.integers(0, size - 1)),
    }


def _sparse(path: Path, size: int, pieces: list[tuple[int, int]]) -> None:
    with open(path, "r+b" if path.exists() else "wb") as f:
        f.truncate(size)
        for first, n in pieces:
            at = first * CLUSTER
            if at < size:
                f.seek(at)
                f.write(b"\xab" * min(n * CLUSTER, size - at))


def _set_bits(path: Path, bits: list[tuple[int, int]]) -> None:
    with open_image(path, "r+") as img:
        for first, n in bits:
            n = min(n, img._cache.cluster_count - first)
            if n > 0:
                img._cache.set_range(first, n)
        img.flush()


def _build(d: Path, case: dict[str, object]) -> Path:
    size = int(case["size"])  # type: ignore[call-overload]
    top = d / "top.addcow"
    backing = case["backing"]
    backing_file: str | None = None
    backing_format: str | None = None
    if backing != "none":
        bsize = int(case["backing_size"])  # type: ignore[call-overload]
        _sparse(d / "base.raw", bsize, case["base_data"])  # type: ignore[arg-type]
        if backing == "addcow":
            addcow_ref.create(d / "base.addcow", size=max(512, bsize - bsize % 512),
                              image_file="base.raw", cluster_bits=CB)
            _set_bits(d / "base.addcow", case["base_bits"])  # type: ignore[arg-type]
            backing_file, backing_format = "base.addcow", "add-cow"
        else:
            backing_file, backing_format = "base.raw", "raw"
    addcow_ref.create(top, size=size, image_file="top.raw", cluster_bits=CB,
                      backing_file=backing_file, backing_format=backing_format)
    _sparse(d / "top.raw", size, case["image_data"])  # type: ignore[arg-type]
    _set_bits(top, case["bits"])  # type: ignore[arg-type]
    return top


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=chains())
def test_batch_map_equals_per_extent_map(mode: str, case: dict[str, object], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / f"c{abs(hash(repr(case))) % 10**9}"
    d.mkdir(exist_ok=True)
    for p in d.iterdir():
        p.unlink()
    top = _build(d, case)
    with monkeypatch.context() as mp:
        _mode(mp, mode)
        with open_image(top, cache_chunk_size=16, cache_capacity=2) as img:
            size = img.virtual_size
            offset = int(case["window"])  # type: ignore[call-overload]
            for off, n in ((0, size), (offset, size - offset), (offset, min(777, size - offset))):
                # The per-extent map with the cache's runs from iter_runs only.
                with monkeypatch.context() as m2:
                    m2.setattr(bitmapcache, "numpy_for_scan", lambda nbytes: None)
                    want = _reference_map(img, off, n)
                got = img.map(off, n)
                assert got == want
                assert [type(e.allocated) for e in got] == [bool] * len(got)
                windows = list(img.iter_extent_arrays(off, n))
                assert [e for w in windows for e in w.extents()] == want
                if mode != "no-numpy":
                    assert img.extent_arrays(off, n).extents() == want
                with LayerFiles(img) as files:
                    spans = list(split_extents(iter(want), files.files))
                    batch = [s for w in mapping.iter_span_arrays(img, files.files, off, n)
                             for s in w.spans()]
                    assert batch == spans
                    text = io.StringIO()
                    mapping.write_map_json(mapping.iter_map_entries(spans), text)
                    fast = io.StringIO()
                    mapping.write_image_map_json(img, files.files, fast, off, n)
                    assert fast.getvalue() == text.getvalue()


@given(data=st.binary(min_size=1, max_size=3000), chunk=st.sampled_from([1, 3, 16, 512]),
       first=st.integers(0, 30000), count=st.integers(0, 30000))
@settings(max_examples=200, deadline=None)
def test_cache_run_arrays_equal_runs(data: bytes, chunk: int, first: int, count: int) -> None:
    import numpy

    from addcow_ref.engine.fileio import OSFile

    clusters = len(data) * 8 - (first % 7)
    first = first % clusters
    path = f"/tmp/test_extents_arrays_{os.getpid()}.bin"
    with open(path, "wb") as f:
        f.write(data)
    try:
        fd = os.open(path, os.O_RDONLY)
        cache = bitmapcache.BitmapCache(OSFile(path, fd), 0, clusters, chunk_size=chunk,
                                        capacity=2)
        try:
            got = cache.run_arrays(numpy, first, count).tolist()
            # The cache clears the padding bits as it loads the last chunk: so does the model.
            pad = bytearray(data[:-(-clusters // 8)])
            pad[-1] &= ~bitmap.padding_mask(clusters) & 0xFF
            want = list(bitmap.iter_runs(bytes(pad), first, min(count, clusters - first)))
            assert got == want
            assert cache.runs(first, count) == want
        finally:
            os.close(fd)
    finally:
        os.unlink(path)


def test_merge_windows_joins_across_windows_and_mixed_columns() -> None:
    import numpy as np

    a = ExtentArrays.of([Extent(0, 5, True, 0, True), Extent(5, 3, False, 1, True)])
    b = ExtentArrays(np.array([8, 10]), np.array([2, 4]), np.array([False, True]),
                     np.array([1, 0]), np.array([True, True]))
    empty = ExtentArrays.of([])
    c = ExtentArrays.of([Extent(14, 1, True, 0, True)])
    rows = [e for w in merge_windows([a, empty, b, c]) for e in w.extents()]
    assert rows == [Extent(0, 5, True, 0, True), Extent(5, 5, False, 1, True),
                    Extent(10, 5, True, 0, True)]


def test_small_map_imports_no_numpy_and_big_one_switches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A map of few extents stays on the per-extent path (no numpy import); past
    ARRAYS_AFTER_EXTENTS extents the windows come as numpy columns."""
    import numpy

    monkeypatch.setattr(extents, "MAP_WINDOW_CLUSTERS", 64)
    monkeypatch.setattr(extents, "numpy_if_loaded", lambda: None)
    loads: list[int] = []

    def load() -> object:
        loads.append(1)
        return numpy

    monkeypatch.setattr(extents, "load_numpy", load)
    path = tmp_path / "d.addcow"
    addcow_ref.create(path, size=4096 * CLUSTER, image_file="d.raw", cluster_bits=CB)
    _set_bits(path, [(i, 1) for i in range(0, 4096, 2)])
    with open_image(path) as img:
        few = list(img.iter_extent_arrays(0, 64 * CLUSTER))
        assert loads == []
        assert all(not hasattr(w.start, "dtype") for w in few)
        monkeypatch.setattr(extents, "ARRAYS_AFTER_EXTENTS", 100)
        many = list(img.iter_extent_arrays())
        assert loads == [1]
        assert not hasattr(many[0].start, "dtype")
        assert hasattr(many[-1].start, "dtype")
        assert [e for w in many for e in w.extents()] == \
            _reference_map(img, 0, img.virtual_size)
