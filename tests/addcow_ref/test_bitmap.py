"""Bitmap helpers against a naive per-bit model (small inputs: the model is slow on purpose)."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addcow_ref.format import bitmap


def naive_bits(data: bytes) -> list[bool]:
    return [bool(data[i >> 3] >> (i & 7) & 1) for i in range(len(data) * 8)]


@st.composite
def data_and_range(draw: st.DrawFn) -> tuple[bytes, int, int]:
    # Long uniform stretches exercise the whole-byte skipping.
    parts = draw(st.lists(st.one_of(st.binary(max_size=6),
                                    st.builds(lambda n: b"\0" * n, st.integers(0, 20)),
                                    st.builds(lambda n: b"\xff" * n, st.integers(0, 20))),
                          min_size=1, max_size=6))
    data = b"".join(parts) or b"\0"
    first = draw(st.integers(0, len(data) * 8 - 1))
    n = draw(st.integers(0, len(data) * 8 - first))
    return data, first, n


@given(st.binary(max_size=64))
def test_count_ones(data: bytes) -> None:
    assert bitmap.count_ones(data) == sum(naive_bits(data))


def test_padding_mask() -> None:
    assert bitmap.padding_mask(0) == 0
    assert bitmap.padding_mask(8) == 0
    assert bitmap.padding_mask(1) == 0xFE
    assert bitmap.padding_mask(7) == 0x80
    assert bitmap.padding_mask(17) == 0xFE
    for n in range(1, 64):
        used = n % 8 or 8
        assert bitmap.padding_mask(n) == sum(1 << b for b in range(used, 8))


@given(data_and_range())
def test_iter_runs_matches_model(case: tuple[bytes, int, int]) -> None:
    data, first, n = case
    bits = naive_bits(data)
    runs = list(bitmap.iter_runs(data, first, n))
    rebuilt: list[bool] = []
    pos = first
    for i, (start, length, value) in enumerate(runs):
        assert start == pos
        assert length > 0
        if i:
            assert value != runs[i - 1][2]
        rebuilt += [value] * length
        pos += length
    assert rebuilt == bits[first:first + n]


@given(data_and_range(), st.booleans())
def test_find_bit(case: tuple[bytes, int, int], value: bool) -> None:
    data, first, n = case
    bits = naive_bits(data)
    expected = next((i for i in range(first, first + n) if bits[i] == value), first + n)
    assert bitmap.find_bit(data, first, n, value) == expected


@given(data_and_range(), st.booleans())
def test_set_and_clear_range(case: tuple[bytes, int, int], value: bool) -> None:
    data, first, n = case
    buf = bytearray(data)
    if value:
        bitmap.set_bit_range(buf, first, n)
    else:
        bitmap.clear_bit_range(buf, first, n)
    expected = naive_bits(data)
    expected[first:first + n] = [value] * n
    assert naive_bits(bytes(buf)) == expected
    for i in range(len(data) * 8):
        assert bitmap.get_bit(buf, i) == expected[i]


def test_range_past_end_is_refused() -> None:
    with pytest.raises(IndexError):
        bitmap.set_bit_range(bytearray(1), 4, 5)
    with pytest.raises(IndexError):
        list(bitmap.iter_runs(b"\0", 0, 9))


_long_bitmaps = st.integers(0, 2**32).map(
    lambda seed: random.Random(seed).randbytes(4096 + seed % 101))


@given(_long_bitmaps, st.sampled_from([bytes, bytearray, memoryview]))
def test_count_ones_numpy_path_equals_big_integer_popcount(data: bytes, kind: type) -> None:
    """Inputs long enough for the numpy kernel, with a tail that is not a whole word."""
    assert bitmap.count_ones(kind(data)) == int.from_bytes(data, "little").bit_count()


def _set_numpy_mode(mp: pytest.MonkeyPatch, mode: str) -> None:
    """numpy loaded at once, or unavailable."""
    if mode == "numpy":
        mp.setattr(bitmap, "_IMPORT_NUMPY_AFTER", 0)
        assert bitmap._numpy(1) is not None
    else:
        mp.setattr(bitmap, "_np", None)
        mp.setattr(bitmap, "_np_unavailable", True)


@pytest.mark.parametrize("mode", ["numpy", "no-numpy"])
def test_count_ones_with_and_without_numpy(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_numpy_mode(monkeypatch, mode)
    data = bytes(range(256)) * 40 + b"\x7f"
    expected = sum(bin(b).count("1") for b in data)
    assert bitmap.count_ones(data) == expected


def test_numpy_is_loaded_only_once_a_scan_would_pay_for_it() -> None:
    """A short scan leaves numpy unimported (its import costs more than it saves); a long one
    loads it. A fresh interpreter, since this one has numpy loaded already."""
    code = (
        "import sys\n"
        "from addcow_ref import bitmap\n"
        "bitmap.count_ones(bytes(1 << 20))\n"
        "assert 'numpy' not in sys.modules, 'numpy imported for a 1 MiB scan'\n"
        "for _ in range(40):\n"
        "    bitmap.count_ones(bytes(1 << 20))\n"
        "assert 'numpy' in sys.modules, 'numpy never imported for a 41 MiB scan'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@st.composite
def long_runs_case(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """Long bitmaps mixing uniform stretches of 0x00/0xff with random bytes, and ranges that
    start and end inside bytes."""
    pieces = draw(st.lists(st.tuples(st.sampled_from([b"\0", b"\xff", None]),
                                     st.integers(1, 3000)), min_size=1, max_size=5))
    rng = random.Random(draw(st.integers(0, 2**32)))
    data = b"".join(fill * n if fill is not None else rng.randbytes(n) for fill, n in pieces)
    data += bytes(max(0, 700 - len(data)))
    first = draw(st.integers(0, 40))
    n = draw(st.integers(len(data) * 8 - first - 40, len(data) * 8 - first))
    return data, first, n


def _model_runs(data: bytes, first: int, n: int) -> list[tuple[int, int, bool]]:
    """The maximal runs of ``[first, first + n)``, bit by bit from the naive model."""
    bits = naive_bits(data)[first:first + n]
    out: list[tuple[int, int, bool]] = []
    for i, b in enumerate(bits):
        if out and out[-1][2] == b:
            out[-1] = (out[-1][0], out[-1][1] + 1, b)
        else:
            out.append((first + i, 1, b))
    return out


@given(case=long_runs_case())
def test_iter_runs_over_long_mixed_bitmaps_equals_the_model(
        case: tuple[bytes, int, int]) -> None:
    data, first, n = case
    assert list(bitmap.iter_runs(data, first, n)) == _model_runs(data, first, n)


def test_iter_runs_across_uniform_stretches() -> None:
    """Long stretches of ones and zeros between partial bytes: one run each."""
    data = b"\x0f" + b"\xff" * 40 + b"\x00" * 33 + b"\x01" + b"\xff" * 20
    model = naive_bits(data)
    runs = list(bitmap.iter_runs(data, 3, len(data) * 8 - 5))
    pos = 3
    for start, n, value in runs:
        assert start == pos
        assert n > 0
        assert all(b == value for b in model[start:start + n])
        pos += n
    assert pos == len(data) * 8 - 2
    assert all(a[2] != b[2] for a, b in itertools.pairwise(runs))


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("at", [0, 7, 255 * 8, 256 * 8 + 3, (256 + 4096) * 8 - 1,
                                (256 + 4096) * 8, (256 + 3 * 4096) * 8 + 5, 20000 * 8 + 6])
def test_find_bit_across_long_uniform_stretches(value: bool, at: int) -> None:
    """One differing bit in 20 KiB of uniform bytes, before, at and after the edges of the
    probe and of the blocks find_bit compares whole; searched from aligned and unaligned
    starts, and with the range ending just before the bit."""
    fill = 0x00 if value else 0xFF
    data = bytearray([fill]) * 20010
    data[at >> 3] ^= 1 << (at & 7)
    for first in (0, 3, 8):
        want = at if at >= first else len(data) * 8
        assert bitmap.find_bit(bytes(data), first, len(data) * 8 - first, value) == want
        if at > first:
            assert bitmap.find_bit(bytes(data), first, at - first, value) == at
    assert bitmap.find_bit(bytes(data), 0, len(data) * 8, not value) == (1 if at == 0 else 0)
