"""Sizes typed the qemu-img way parse to the bytes they mean, and nothing else parses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addcow_ref.cli.humanize import SIZE_SUFFIXES, format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("512", 512),
        ("64K", 65536),
        ("64k", 65536),
        ("64KiB", 65536),
        ("64 KB", 65536),
        ("1M", 1 << 20),
        ("1.5M", 3 << 19),
        ("1G", 1 << 30),
        ("2T", 2 << 40),
        ("1P", 1 << 50),
        ("1E", 1 << 60),
        ("7B", 7),
        (".5K", 512),
        ("0x10000", 65536),
        ("  4096 ", 4096),
    ],
)
def test_parse_size_accepts_qemu_spellings(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "K", "-1", "1.3K", "0.1", "1Q", "1ib", "1bb", "1 2", "0x"])
def test_parse_size_refuses_non_sizes(text: str) -> None:
    with pytest.raises(ValueError, match=r"size|whole number"):
        parse_size(text)


@given(st.integers(min_value=0, max_value=1 << 62),
       st.sampled_from(sorted(SIZE_SUFFIXES)))
def test_parse_size_scales_integers_by_suffix(n: int, suffix: str) -> None:
    assert parse_size(f"{n}{suffix}") == n * SIZE_SUFFIXES[suffix]
    assert parse_size(f"{n}{suffix.upper()}") == n * SIZE_SUFFIXES[suffix]
    assert parse_size(hex(n)) == n


@given(st.integers(min_value=0, max_value=(1 << 63) - 1))
def test_format_size_is_never_more_than_truncated(n: int) -> None:
    text = format_size(n)
    number, unit = text.split(" ")
    scale = {"byte": 1, "bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
             "TiB": 1 << 40, "PiB": 1 << 50, "EiB": 1 << 60}[unit]
    shown = float(number) * scale
    # Truncation to two decimals: never above the true size, and within 1% of the unit below.
    assert shown <= n * (1 + 1e-12)
    assert n - shown < scale / 100 + 1
    assert float(number) < 1024 or unit == "EiB"


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 bytes"), (1, "1 byte"), (512, "512 bytes"), (65536, "64 KiB"),
     (3 << 29, "1.5 GiB"), ((1 << 20) - 1, "1023.99 KiB")],
)
def test_format_size_examples(n: int, text: str) -> None:
    assert format_size(n) == text
