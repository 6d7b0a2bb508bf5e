"""run_arrays (the batch form of iter_runs) against iter_runs itself, and the numpy paths on
numpy releases without ``bitwise_count`` (Debian 12 ships numpy 1.24) against the big-integer
popcount."""

from __future__ import annotations

import random
from array import array

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from addcow_ref.format import bitmap


def _set_numpy_mode(mp: pytest.MonkeyPatch, mode: str) -> None:
    """numpy loaded at once (with or without its popcount kernel), or unavailable."""
    if mode == "no-numpy":
        mp.setattr(bitmap, "_np", None)
        mp.setattr(bitmap, "_np_unavailable", True)
        return
    mp.setattr(bitmap, "_IMPORT_NUMPY_AFTER", 0)
    assert bitmap._numpy(1) is not None
    if mode == "numpy-1.24":
        if hasattr(numpy, "bitwise_count"):
            mp.delattr(numpy, "bitwise_count")
        mp.setattr(bitmap, "_BYTE_POPCOUNT", None)


MODES = ["numpy", "numpy-1.24", "no-numpy"]


@st.composite
def bitmap_and_range(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """Bitmaps of uniform stretches, short runs and random bytes, long enough (past
    ``_NUMPY_MIN_RUN_BITS``) for the numpy path in most draws, with ranges that start and end
    inside bytes and words; some ranges are short."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    pieces = draw(st.lists(st.tuples(st.sampled_from(["zero", "ones", "random", "runs"]),
                                     st.integers(1, 1500)), min_size=1, max_size=5))
    parts = []
    for kind, n in pieces:
        if kind == "random":
            parts.append(rng.randbytes(n))
        elif kind == "runs":  # runs of 1 to 80 bits: several boundaries in one word
            bits, value = 0, rng.random() < 0.5
            out = 0
            while bits < n * 8:
                k = rng.randint(1, 80)
                if value:
                    out |= ((1 << k) - 1) << bits
                bits += k
                value = not value
            parts.append((out & ((1 << (n * 8)) - 1)).to_bytes(n, "little"))
        else:
            parts.append((b"\0" if kind == "zero" else b"\xff") * n)
    data = b"".join(parts)
    first = draw(st.integers(0, len(data) * 8 - 1))
    if draw(st.booleans()):
        n = len(data) * 8 - first - draw(st.integers(0, min(70, len(data) * 8 - first)))
    else:
        n = draw(st.integers(0, len(data) * 8 - first))
    return data, first, n


@pytest.mark.parametrize("mode", MODES)
@given(case=bitmap_and_range(), kind=st.sampled_from([bytes, bytearray, memoryview]))
def test_run_arrays_equals_iter_runs(mode: str, case: tuple[bytes, int, int],
                                     kind: type) -> None:
    data, first, n = case
    with pytest.MonkeyPatch.context() as mp:
        _set_numpy_mode(mp, mode)
        got = bitmap.run_arrays(kind(data), first, n)
    assert got.tolist() == list(bitmap.iter_runs(data, first, n))
    assert len(got.starts) == len(got.lengths) == len(got.values)


@pytest.mark.parametrize("mode", MODES)
def test_run_arrays_edge_cases(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_numpy_mode(monkeypatch, mode)
    data = bytes(random.Random(3).randbytes(4096)) + b"\x0f"
    assert bitmap.run_arrays(data, 100, 0).tolist() == []
    assert bitmap.run_arrays(data, 5, 1).tolist() == [(5, 1, bitmap.get_bit(data, 5))]
    # A range ending mid-byte: the bits past its end do not start a run.
    end = len(data) * 8 - 5
    runs = bitmap.run_arrays(data, 3, end - 3).tolist()
    assert runs == list(bitmap.iter_runs(data, 3, end - 3))
    assert runs[-1][0] + runs[-1][1] == end
    # Padding bits (the high four of the last byte are 0) are outside the range: ignored.
    clusters = len(data) * 8 - 4
    runs = bitmap.run_arrays(data, 0, clusters).tolist()
    assert runs[-1] == (clusters - 4, 4, True)
    assert sum(n for _, n, _ in runs) == clusters
    with pytest.raises(IndexError):
        bitmap.run_arrays(data, 0, len(data) * 8 + 1)


def test_run_arrays_long_uniform_and_dense_bitmaps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several windows of ``_RUN_ARRAY_WORDS``: runs carried across window edges."""
    _set_numpy_mode(monkeypatch, "numpy")
    monkeypatch.setattr(bitmap, "_RUN_ARRAY_WORDS", 16)
    data = b"\xff" * 300 + (b"\xff" * 8 + b"\0" * 8) * 40 + b"\x55" * 130 + bytes(257)
    for first, n in [(0, len(data) * 8), (7, len(data) * 8 - 20), (2400, 3000)]:
        assert bitmap.run_arrays(data, first, n).tolist() == \
            list(bitmap.iter_runs(data, first, n))
    uniform = b"\xff" * (1 << 16)
    assert bitmap.run_arrays(uniform, 1, len(uniform) * 8 - 1).tolist() == \
        [(1, len(uniform) * 8 - 1, True)]


def test_run_arrays_are_numpy_arrays_once_numpy_is_loaded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _set_numpy_mode(monkeypatch, "numpy")
    runs = bitmap.run_arrays(b"\x0f" * 1024, 0, 8192)
    starts, values = runs.starts, runs.values
    assert isinstance(starts, numpy.ndarray)
    assert isinstance(values, numpy.ndarray)
    assert starts.dtype == numpy.int64
    assert values.dtype == bool
    monkeypatch.setattr(bitmap, "_np", None)
    monkeypatch.setattr(bitmap, "_np_unavailable", True)
    assert isinstance(bitmap.run_arrays(b"\x0f" * 1024, 0, 8192).starts, array)


_long_bitmaps = st.integers(0, 2**32).map(
    lambda seed: random.Random(seed).randbytes(4096 + seed % 101))


@given(data=_long_bitmaps, kind=st.sampled_from([bytes, bytearray, memoryview]))
def test_count_ones_without_bitwise_count_equals_big_integer_popcount(
        data: bytes, kind: type) -> None:
    """The lookup-table popcount that numpy 1.x gets (no ``np.bitwise_count``)."""
    with pytest.MonkeyPatch.context() as mp:
        _set_numpy_mode(mp, "numpy-1.24")
        assert not hasattr(numpy, "bitwise_count")
        got = bitmap.count_ones(kind(data))
    assert got == int.from_bytes(data, "little").bit_count()


def test_popcounts_per_word_without_bitwise_count(monkeypatch: pytest.MonkeyPatch) -> None:
    words = numpy.array([0, 1, 2**64 - 1, 0x8000000000000001, 0x0F0F], dtype=numpy.uint64)
    _set_numpy_mode(monkeypatch, "numpy-1.24")
    assert bitmap._popcounts(numpy, words).tolist() == [0, 1, 64, 2, 8]
    assert bitmap._popcounts(numpy, words[::2]).tolist() == [0, 64, 8]


def test_expect_scan_imports_numpy_only_for_big_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scan announced as big loads numpy before its first chunk (a 128 MiB checker scan
    otherwise counted 32 MiB with big integers first); a small one leaves it alone."""
    loads: list[int] = []
    monkeypatch.setattr(bitmap, "load_numpy", lambda: loads.append(1))
    bitmap.expect_scan(bitmap._IMPORT_NUMPY_AFTER - 1)
    assert loads == []
    bitmap.expect_scan(bitmap._IMPORT_NUMPY_AFTER)
    assert loads == [1]


@pytest.mark.parametrize("fill", [b"\0", b"\xff"])
def test_run_arrays_skips_uniform_windows_across_a_boundary(
        fill: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows equal to the bit before them are skipped whole; a run boundary just before,
    inside and just after such windows is still found."""
    _set_numpy_mode(monkeypatch, "numpy")
    monkeypatch.setattr(bitmap, "_RUN_ARRAY_WORDS", 4)
    other = bytes([fill[0] ^ 0xFF])
    data = bytearray(fill * 200)
    for at in (31, 32, 95, 160):
        data[at] = other[0]
    for first in (0, 3, 64 * 8 + 1):
        n = len(data) * 8 - first - 2
        assert bitmap.run_arrays(bytes(data), first, n).tolist() == \
            list(bitmap.iter_runs(bytes(data), first, n))
