"""Sizes as people type and read them, with qemu-img's conventions.

``qemu-img`` accepts ``64K``, ``1G``, ``1.5M`` and plain byte counts, with binary (1024-based)
suffixes; users of the ``addcow`` tool will type what they type to ``qemu-img``, so the parser
accepts the same spellings and refuses anything that is not a whole number of bytes rather than
rounding silently.
"""

from __future__ import annotations

import math
import re

__all__ = ["SIZE_SUFFIXES", "format_size", "parse_size"]

#: Binary multipliers by suffix letter, as in qemu's ``qemu_strtosz`` (case-insensitive).
SIZE_SUFFIXES: dict[str, int] = {
    "b": 1,
    "k": 1 << 10,
    "m": 1 << 20,
    "g": 1 << 30,
    "t": 1 << 40,
    "p": 1 << 50,
    "e": 1 << 60,
}

_SIZE_RE = re.compile(
    r"""^\s*(?:
        0x(?P<hex>[0-9a-f]+)                         # hexadecimal byte count, no suffix
      | (?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)        # decimal, fraction allowed with a suffix
        \s*(?:(?P<suffix>[kmgtpe])(?:i?b)?|b)?       # K, KB, KiB, k, B... (all binary)
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def parse_size(text: str) -> int:
    """The byte count ``text`` denotes (``"64K"`` -> 65536).

    Raises ``ValueError`` with a message meant for a user when the text is not a size or names a
    fraction of a byte (``"1.3K"``).
    """
    m = _SIZE_RE.match(text)
    if m is None:
        raise ValueError(
            f"{text!r} is not a size (expected a byte count with an optional suffix "
            "K, M, G, T, P or E, e.g. 64K or 1G)"
        )
    if m.group("hex") is not None:
        return int(m.group("hex"), 16)
    suffix = (m.group("suffix") or "b").lower()
    # Fraction, not float or Decimal: exact at any magnitude, so "17179868369E" is not rounded.
    # Imported here: ``fractions`` loads ``decimal``, and printing a size (``addcow info``) needs
    # neither.
    from fractions import Fraction

    value = Fraction(m.group("num")) * SIZE_SUFFIXES[suffix]
    if value.denominator != 1:
        raise ValueError(f"{text!r} is not a whole number of bytes")
    return int(value)


_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_size(n: int) -> str:
    """A short human rendering (``"64 KiB"``, ``"1.5 GiB"``), as qemu-img prints sizes.

    Exact multiples print without decimals so the rendering of a round size reads like what the
    user typed; other values keep up to two decimals.
    """
    if n < 0:
        return "-" + format_size(-n)
    unit = 0
    value = float(n)
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{n} bytes" if n != 1 else "1 byte"
    if value == int(value):
        return f"{int(value)} {_UNITS[unit]}"
    # Truncate rather than round, so 1 MiB - 1 never reads as "1024 KiB".
    return f"{math.floor(value * 100) / 100:.2f}".rstrip("0").rstrip(".") + f" {_UNITS[unit]}"
