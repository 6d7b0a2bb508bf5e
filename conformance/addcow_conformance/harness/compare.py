"""Comparisons of what an adapter printed with what the manifest expects.

Kept apart from the runner so each rule of comparison (integers as numbers or decimal strings,
which info fields are mandatory, what a well-formed map is) is one small, tested function.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "REQUIRED_INFO",
    "MapProblem",
    "compare_info",
    "compare_map",
    "first_difference",
    "normalize_int",
]

#: The info fields every adapter must print (the interface's "at least" list).
REQUIRED_INFO = (
    "version",
    "virtual_size",
    "cluster_bits",
    "bitmap_offset",
    "image_file",
    "backing_file",
    "image_format",
    "backing_format",
    "incompatible_features",
    "compatible_features",
    "autoclear_features",
    "allocated_clusters",
)

_CHUNK = 1 << 20


def normalize_int(value: Any) -> Any:
    """Integers may come as JSON numbers or decimal strings (for values past 2^53)."""
    if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int):
        return normalize_int(actual) == expected and not isinstance(actual, bool)
    return bool(expected == actual)


def compare_info(
    expected: Mapping[str, Any], actual: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Mismatching fields, and optional expected fields the adapter did not print.

    Only fields present in the expectation are compared; extra fields in the output are the
    adapter's business. A missing mandatory field is a mismatch, a missing optional one is only
    listed.
    """
    mismatches = []
    ignored = []
    for key, exp in expected.items():
        if key not in actual:
            if key in REQUIRED_INFO:
                mismatches.append({"field": key, "expected": exp, "actual": "<missing>"})
            else:
                ignored.append(key)
            continue
        if not _same(exp, actual[key]):
            mismatches.append({"field": key, "expected": exp, "actual": actual[key]})
    return mismatches, ignored


@dataclasses.dataclass(frozen=True)
class MapProblem:
    message: str
    offset: int | None


def _runs(extents: Any) -> list[tuple[int, int, bool]] | str:
    if not isinstance(extents, list):
        return "not a JSON list"
    runs = []
    for i, e in enumerate(extents):
        if not isinstance(e, dict):
            return f"entry {i} is not an object"
        start, length, alloc = (normalize_int(e.get(k)) for k in ("start", "length", "allocated"))
        if not isinstance(start, int) or not isinstance(length, int) or isinstance(start, bool):
            return f"entry {i} lacks integer start/length"
        if not isinstance(alloc, bool):
            return f"entry {i}: 'allocated' is not true/false"
        runs.append((start, length, alloc))
    return runs


def _state_at(runs: list[tuple[int, int, bool]], offset: int) -> bool | None:
    for start, length, alloc in runs:
        if start <= offset < start + length:
            return alloc
    return None


def compare_map(expected: list[Any], actual: Any) -> MapProblem | None:
    """None when the maps are equal; otherwise what is wrong and the first guest offset at fault.

    The interface asks for merged runs that cover the disk, so a map equal in content but
    split differently is still a failure: its first split point is reported.
    """
    exp = _runs(expected)
    if isinstance(exp, str):
        raise ValueError(f"manifest extents: {exp}")
    act = _runs(actual)
    if isinstance(act, str):
        return MapProblem(f"map output: {act}", None)
    if exp == act:
        return None
    pos = 0
    for i, (start, length, alloc) in enumerate(act):
        if start != pos:
            return MapProblem(
                f"map entry {i} starts at {start}, expected {pos} (gap or overlap)", pos
            )
        if length <= 0:
            return MapProblem(f"map entry {i} has length {length}", start)
        if i and act[i - 1][2] == alloc:
            return MapProblem(f"map entries {i - 1} and {i} are adjacent and not merged", start)
        pos = start + length
    # Well-formed but different: find the first offset where the allocation status differs.
    points = sorted({s for s, _, _ in exp + act} | {s + n for s, n, _ in exp + act})
    for p in points:
        e, a = _state_at(exp, p), _state_at(act, p)
        if e != a:
            def word(x: bool | None) -> str:
                return {True: "allocated", False: "unallocated", None: "outside the map"}[x]

            return MapProblem(f"at guest offset {p}: expected {word(e)}, got {word(a)}", p)
    return MapProblem("map differs", None)  # pragma: no cover - equal runs are caught above


class _Readable(Protocol):
    def read(self, offset: int, length: int) -> bytes: ...


def first_difference(
    reference: _Readable, output: Path, offset: int, length: int
) -> dict[str, Any] | None:
    """First guest offset where ``output`` differs from the reference's bytes, streamed.

    Returns ``{"offset", "expected", "actual"}`` (actual None past the end of the output), or
    None when the first ``length`` bytes agree.
    """
    try:
        with output.open("rb") as f:
            done = 0
            while done < length:
                n = min(_CHUNK, length - done)
                want = reference.read(offset + done, n)
                got = f.read(n)
                if want != got:
                    for i, b in enumerate(want):
                        if i >= len(got):
                            return {"offset": offset + done + i, "expected": b, "actual": None}
                        if got[i] != b:
                            return {"offset": offset + done + i, "expected": b, "actual": got[i]}
                    return None
                done += n
        return None
    finally:
        close = getattr(reference, "close", None)
        if callable(close):
            close()
