"""libFuzzer dictionaries, derived from the format's constants and header schema (never typed
out, so a new constant or field width reaches the fuzzer by itself).

A dictionary entry is a byte string libFuzzer may splice into an input. For the add-cow targets
they are the magic, the format names (bare and NUL-padded to the format field), the names of the
files in the scratch directory, and every boundary value of the header (each constant, one below
and one above it, and the largest value) encoded at the width of every integer field, big-endian
as the schema declares them. For the manifest target they are the JSON keys of the committed
manifest and its JSON schema, and the values the loader branches on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from addcow_ref.format import constants as c
from addcow_ref.format.layout import field_table
from addcow_ref.format.schema import HEADER_V1, HEADER_V2

__all__ = ["header_tokens", "manifest_tokens", "render", "write_dictionary"]

#: libFuzzer ignores dictionary entries longer than this (its ``kMaxDictElementSize``).
_MAX_TOKEN = 64

#: The constants whose neighbourhood is interesting (sizes, offsets, bit counts, versions).
_BOUNDARIES = (
    c.VERSION_1, c.VERSION_2, c.HEADER_LENGTH_V2, c.HEADER_LENGTH_V1, c.V1_NAME_FIELD_LENGTH,
    c.V1_CLUSTER_BITS, c.SECTOR_SIZE, c.BITMAP_ALIGNMENT, c.DEFAULT_BITMAP_OFFSET,
    c.MIN_CLUSTER_BITS, c.MAX_CLUSTER_BITS, c.DEFAULT_CLUSTER_BITS, c.MAX_VIRTUAL_SIZE,
    c.FORMAT_FIELD_LENGTH, c.MAX_CHAIN_DEPTH,
    1 << c.MIN_CLUSTER_BITS, 1 << c.DEFAULT_CLUSTER_BITS, 1 << c.MAX_CLUSTER_BITS,
)


def _feature_values() -> set[int]:
    """Each defined feature bit, the known masks, and the lowest undefined bit of each word."""
    values = {c.KNOWN_INCOMPATIBLE_FEATURES, c.KNOWN_COMPATIBLE_FEATURES,
              c.KNOWN_AUTOCLEAR_FEATURES}
    for flags in (c.IncompatibleFeature, c.CompatibleFeature, c.AutoclearFeature):
        values.update(int(m) for m in flags)
    for mask in tuple(values):
        values.add(1 << mask.bit_length())
    return values


def _integer_widths() -> set[int]:
    return {f.size for s in (HEADER_V2, HEADER_V1) for f in field_table(s) if f.is_integer}


def header_tokens(names: Iterable[str] = ()) -> list[bytes]:
    """Tokens for the add-cow file targets; ``names`` are file names worth offering."""
    tokens: list[bytes] = [c.MAGIC]
    for fmt in sorted(c.IMAGE_FORMATS | c.BACKING_FORMATS):
        raw = fmt.encode("ascii")
        tokens += [raw, raw.ljust(c.FORMAT_FIELD_LENGTH, b"\0"), raw.upper()]
    tokens += [n.encode() for n in names]
    values = {v + d for v in _BOUNDARIES for d in (-1, 0, 1)} | _feature_values() | {0}
    for width in sorted(_integer_widths()):
        top = (1 << (8 * width)) - 1
        for v in sorted(values | {top, top >> 1}):
            if 0 <= v <= top:
                tokens.append(v.to_bytes(width, "big"))
    return _unique(tokens)


def _keys(node: object, out: set[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(str(k))
            _keys(v, out)
    elif isinstance(node, list):
        for v in node:
            _keys(v, out)


def manifest_tokens(vectors_dir: Path | None) -> list[bytes]:
    """Tokens for the manifest target: the JSON syntax the loader's types branch on, and every
    key of ``manifest.json`` and ``manifest.schema.json`` in ``vectors_dir`` (if given)."""
    tokens = [b'"', b"{}", b"[]", b"null", b"true", b"false", b"-1", b"1e999", b"0.5",
              b'"\\u0000"', b'""', b": ", b", "]
    keys: set[str] = set()
    if vectors_dir is not None:
        for name in ("manifest.json", "manifest.schema.json"):
            path = vectors_dir / name
            if path.is_file():
                _keys(json.loads(path.read_bytes()), keys)
    tokens += [json.dumps(k).encode() for k in sorted(keys)]
    return _unique(tokens)


def _unique(tokens: Iterable[bytes]) -> list[bytes]:
    seen: dict[bytes, None] = {}
    for t in tokens:
        if 0 < len(t) <= _MAX_TOKEN:
            seen.setdefault(t, None)
    return list(seen)


def _escape(token: bytes) -> str:
    """A token in libFuzzer's dictionary syntax: printable ASCII as is, the rest ``\\xNN``."""
    out = []
    for b in token:
        ch = chr(b)
        out.append(ch if 0x20 <= b < 0x7F and ch not in '"\\' else f"\\x{b:02x}")
    return "".join(out)


def render(tokens: Iterable[bytes]) -> str:
    """The dictionary file's text: one ``kN="..."`` line per token."""
    return "".join(f'k{i}="{_escape(t)}"\n' for i, t in enumerate(tokens))


def write_dictionary(path: Path, tokens: Iterable[bytes]) -> Path:
    path.write_text(render(tokens), encoding="ascii")
    return path
