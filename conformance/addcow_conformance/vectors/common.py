"""Shared recipes of the area modules: deterministic data, and the three vector shapes.

Every byte of data is derived from ``sha256(vector id + label)``, so a vector's contents depend
on its id only, never on generation order, clocks or the machine.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable

from addcow_conformance.records import ExpectBlock, ExpectedFinding
from addcow_conformance.vectors.builder import AddCow
from addcow_conformance.vectors.core import File, Vector, info_v2, read_expect
from addcow_conformance.vectors.model import Disk
from addcow_ref.format.rules import all_rules

__all__ = [
    "FILE_RULES",
    "pattern",
    "producer",
    "read_vector",
    "refusal_vector",
    "std_files",
    "twin_of",
]

#: Every rule a conforming file obeys, listed in ``exercises`` of the plain valid vectors.
FILE_RULES = sorted(r.id for r in all_rules().values()
                    if r.testability == "file" and not r.id.startswith("V1-"))

Producer = Callable[[], list[Vector]]


def producer(fn: Producer) -> Producer:
    """Mark a function as a vector source and stamp its dotted name on what it returns."""
    @functools.wraps(fn)
    def wrapper() -> list[Vector]:
        out = fn()
        for v in out:
            v.generator = f"{fn.__module__}.{fn.__qualname__}"
        return out
    wrapper.is_producer = True  # type: ignore[attr-defined]
    return wrapper


def pattern(seed: str, size: int) -> bytes:
    """``size`` pseudo-random bytes from ``sha256(seed)`` in counter mode (no zero runs)."""
    out = bytearray()
    counter = 0
    key = seed.encode()
    while len(out) < size:
        out += hashlib.sha256(key + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def std_files(add_cow: bytes, image: bytes | None, backing: bytes | None, *,
              a: AddCow | None = None, image_synth: int | None = None,
              backing_path: str = "backing.raw") -> list[File]:
    files = [File("add-cow", "image.add-cow", add_cow)]
    image_path = a.image_name.decode() if a is not None else "image.raw"
    if image_synth is not None:
        files.append(File("image", image_path, None, image_synth, "zeros"))
    elif image is not None:
        files.append(File("image", image_path, image))
    if backing is not None:
        files.append(File("backing", backing_path, backing))
    return files


def read_vector(vid: str, description: str, a: AddCow, image: bytes | None,
                backing: bytes | None, *, exercises: Iterable[str] = (),
                result: str = "valid", violates: Iterable[str] = (),
                flags: Iterable[str] = (), findings: list[ExpectedFinding] | None = None,
                image_synth: int | None = None, ranges: list[tuple[int, int]] | None = None,
                extra_files: Iterable[File] = (), add_cow: bytes | None = None,
                requires: Iterable[str] = (), allocated: int | None = None,
                expect_extra: ExpectBlock | None = None,
                reader_duty: str | None = None) -> Vector:
    """A ``read`` vector whose expectations come from the oracle over the same inputs.

    ``reader_duty`` ("ignore" or "either", for acceptable vectors) is the reader duty of the
    rules the file breaks (spec: "Reader duties"): "ignore" obliges every reader to open it."""
    img = image if image is not None else bytes(image_synth or 0)
    disk = Disk(a.virtual_size, a.cluster_bits, bytearray(img), set(a.bits), backing)
    built = a.build() if add_cow is None else add_cow
    files = std_files(built, image, backing, a=a, image_synth=image_synth)
    files += list(extra_files)
    expect = read_expect(info_v2(a, allocated), disk, ranges)
    if expect_extra:
        expect.update(expect_extra)
    if reader_duty:
        expect["reader_duty"] = reader_duty
    return Vector(
        id=vid, description=description, kind="read", result=result, files=files,
        expect=expect, findings=findings or [], exercises=list(exercises),
        violates=list(violates), flags=list(flags),
        requires=["info", "read", "map", *requires])


def refusal_vector(vid: str, description: str, files: list[File], violates: list[str],
                   findings: list[ExpectedFinding], *, kind: str = "parse",
                   flags: Iterable[str] = (), requires: Iterable[str] = (),
                   exercises: Iterable[str] = (), spec: str = "2.0") -> Vector:
    """An ``invalid`` vector: every reader must refuse it, citing the first violated rule."""
    flags = list(flags)
    if len(violates) > 1 and "multi-violation" not in flags:
        flags.append("multi-violation")
    return Vector(
        id=vid, description=description, kind=kind, result="invalid", files=files,
        expect={"refusal": {"rule": violates[0]}}, findings=findings,
        exercises=list(exercises), violates=violates, flags=flags,
        requires=["info", *requires], spec=spec)


def twin_of(base: str, fields: tuple[str, ...], v: Vector) -> Vector:
    """Record that ``v`` is the valid vector ``base`` with only ``fields`` rewritten."""
    v.twin_of, v.twin_fields = base, fields
    return v
