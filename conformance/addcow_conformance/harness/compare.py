"""Comparisons of what an adapter printed with what the manifest expects.

Kept apart from the runner so each rule of comparison (integers as numbers or decimal strings,
which info fields are mandatory, what a well-formed map is) is one small, tested function.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypedDict

from addcow_conformance.records import REQUIRED_INFO_KEYS, AfterFile, compared_bytes

__all__ = [
    "REQUIRED_INFO",
    "ByteDifference",
    "InfoMismatch",
    "MapProblem",
    "after_file_mismatch",
    "compare_info",
    "compare_map",
    "first_difference",
    "normalize_int",
    "virtual_size_of",
]

#: The info fields every adapter must print (the interface's "at least" list).
REQUIRED_INFO = REQUIRED_INFO_KEYS

_CHUNK = 1 << 20


class InfoMismatch(TypedDict):
    """One info field the adapter got wrong (``actual`` is ``"<missing>"`` when not printed)."""

    field: str
    expected: Any
    actual: Any


class ByteDifference(TypedDict):
    """The first guest byte a read got wrong; ``actual`` is None past the end of the output."""

    offset: int
    expected: int
    actual: int | None


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
) -> tuple[list[InfoMismatch], list[str]]:
    """Mismatching fields, and optional expected fields the adapter did not print.

    Only fields present in the expectation are compared; extra fields in the output are the
    adapter's business. A missing mandatory field is a mismatch, a missing optional one is only
    listed.
    """
    mismatches: list[InfoMismatch] = []
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
) -> ByteDifference | None:
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


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _normalized_sha256(path: Path, want: AfterFile) -> tuple[int, str]:
    """The file's size and the SHA-256 of the bytes ``want`` compares (``compared_bytes``)."""
    data = path.read_bytes()  # after-op files of the vectors are small
    return len(data), hashlib.sha256(compared_bytes(data, want)).hexdigest()


def after_file_mismatch(path: Path,
                        want: AfterFile) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(expected, actual) when a file after the operations differs from ``want``."""
    exp: dict[str, Any] = {k: v for k, v in want.items()
                           if k in ("size", "sha256", "compare_length")}
    if not path.is_file():
        return exp, {"missing": True}
    if "compare_length" not in want and "ignore" not in want:
        actual: dict[str, Any] = {"size": path.stat().st_size, "sha256": _file_sha256(path)}
    else:
        size, digest = _normalized_sha256(path, want)
        actual = {"size": size, "sha256": digest}
        if "compare_length" in want:
            actual["compare_length"] = want["compare_length"]
            if size < int(want["compare_length"]):
                return exp, actual
    if any(actual.get(k) != v for k, v in exp.items()):
        return exp, actual
    return None


def virtual_size_of(expect: Mapping[str, Any]) -> int | None:
    """The disk size an expectation (or its ``info``) states, if any."""
    info = expect.get("info")
    for source in (expect, info if isinstance(info, Mapping) else {}):
        for key in ("virtual_size", "guest_size"):
            if key in source:
                value = normalize_int(source[key])
                if isinstance(value, int):
                    return value
    return None
