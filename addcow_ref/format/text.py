"""File names made safe to print on a terminal.

A name stored in an add-cow header is arbitrary bytes chosen by whoever made the image. Printed
as is, an ESC or BEL starts a terminal control sequence (an OSC can retitle the window or worse)
and a newline lets the name forge a line of its own, such as a fake verdict. Every human line and
error message that shows a name therefore passes it through :func:`printable`, which leaves an
ordinary name byte-identical and escapes any name holding a character that is not printable.
"""

from __future__ import annotations

import os

__all__ = ["printable"]

#: The lone surrogates ``os.fsdecode`` makes of bytes that are not UTF-8 (``surrogateescape``).
_SURROGATE_LOW, _SURROGATE_HIGH = "\udc80", "\udcff"


def _escape_char(c: str) -> str:
    if c == "\\":
        return "\\\\"
    if c.isprintable():
        return c
    if _SURROGATE_LOW <= c <= _SURROGATE_HIGH:
        return f"\\x{ord(c) - 0xDC00:02x}"  # the undecodable byte itself
    return repr(c)[1:-1]  # \n, \t, \x1b, \x7f, \x85, \u2028 ...


def printable(name: str | bytes | os.PathLike[str]) -> str:
    """``name`` as text that cannot drive a terminal: unchanged when every character is
    printable (``str.isprintable``: no C0 or C1 control, DEL, line or paragraph separator),
    otherwise with each such character written as a Python escape (``\\x1b``, ``\\n``) and
    backslashes doubled, so the escaped form cannot be mistaken for a plain name. Bytes that
    are not UTF-8 show as ``\\xNN``."""
    text = os.fsdecode(name) if isinstance(name, bytes) else os.fspath(name)
    if text.isprintable():
        return text
    return "".join(_escape_char(c) for c in text)
