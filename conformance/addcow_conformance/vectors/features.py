"""Feature-bit vectors: unknown bits of each class, and all_allocated kept and broken."""

from __future__ import annotations

from addcow_conformance.vectors.builder import AddCow, field_offset
from addcow_conformance.vectors.common import (
    pattern,
    producer,
    read_vector,
    refusal_vector,
    std_files,
)
from addcow_conformance.vectors.core import Vector, finding


def _base(**kw: object) -> tuple[AddCow, bytes, bytes]:
    a = AddCow(virtual_size=4096, cluster_bits=10, backing_name=b"backing.raw", bits={1, 3})
    for k, v in kw.items():
        setattr(a, k, v)
    return a, pattern("features:image", 4096), pattern("features:backing", 4096)


@producer
def unknown_bits() -> list[Vector]:
    out = []
    for bit, slug, extra in ((0, "incompatible-bit-0", []), (63, "incompatible-bit-63",
                                                             ["big-int"])):
        a, image, backing = _base(incompatible_features=1 << bit)
        out.append(refusal_vector(
            f"features/{slug}", f"incompatible_features has bit {bit} set, unknown in 2.0: "
            "a reader must refuse the image", std_files(a.build(), image, backing),
            ["FEAT-INCOMPAT-UNKNOWN"],
            [finding("FEAT-INCOMPAT-UNKNOWN", offset=field_offset("incompatible_features"),
                     field="incompatible_features")], requires=extra))
    a, image, backing = _base(compatible_features=1 << 1)
    out.append(read_vector(
        "features/compatible-unknown-bit-1", "compatible_features has bit 1 set, unknown in "
        "2.0: readers ignore it, a checker warns", a, image, backing, result="acceptable",
        violates=["FEAT-COMPAT-UNKNOWN"], flags=["unknown-compatible-bit"],
        findings=[finding("FEAT-COMPAT-UNKNOWN", offset=field_offset("compatible_features"),
                          field="compatible_features")], reader_duty="ignore"))
    a, image, backing = _base(compatible_features=1 << 62 | 1 << 5)
    out.append(read_vector(
        "features/compatible-unknown-high-bits", "compatible_features has bits 5 and 62 set: "
        "readers ignore them, a checker warns", a, image, backing, result="acceptable",
        violates=["FEAT-COMPAT-UNKNOWN"], flags=["unknown-compatible-bit"], requires=["big-int"],
        findings=[finding("FEAT-COMPAT-UNKNOWN", offset=field_offset("compatible_features"),
                          field="compatible_features")], reader_duty="ignore"))
    a, image, backing = _base(autoclear_features=1 << 0)
    out.append(read_vector(
        "features/autoclear-unknown-bit-0", "autoclear_features has bit 0 set, unknown in 2.0: "
        "a reader ignores it, a checker warns", a, image, backing, result="acceptable",
        violates=["FEAT-AUTOCLEAR-UNKNOWN"], flags=["unknown-autoclear-bit"],
        findings=[finding("FEAT-AUTOCLEAR-UNKNOWN", offset=field_offset("autoclear_features"),
                          field="autoclear_features")]))
    return out


@producer
def all_allocated() -> list[Vector]:
    a, image, backing = _base(compatible_features=1)
    a.bits = {0, 1, 2, 3}
    out = [read_vector(
        "features/all-allocated", "compatible bit 0 (all_allocated) is set and every bitmap "
        "bit is 1: the whole disk reads from the image file", a, image, backing,
        exercises=["FEAT-ALL-ALLOCATED", "FEAT-COMPAT-UNKNOWN", "READ-ALLOCATED",
                   "READ-BACKING-SKIP"])]
    a, image, backing = _base(compatible_features=1)
    a.bits = {0, 1, 3}
    out.append(refusal_vector(
        "features/all-allocated-bit-clear", "all_allocated is set but cluster 2's bit is 0",
        std_files(a.build(), image, backing), ["FEAT-ALL-ALLOCATED"],
        [finding("FEAT-ALL-ALLOCATED", offset=field_offset("compatible_features"),
                 field="compatible_features")], requires=["bitmap-validation"]))
    return out
