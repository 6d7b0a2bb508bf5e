"""The checker's streamed bitmap scan (one reused buffer, chunks whose bits are all set skipped
when looking for the first 0) against a model over the whole bitmap: allocated count, first
unallocated cluster and set padding bits, for chunk sizes that split bytes and runs."""

from __future__ import annotations

import os

import pytest
from addcow_conformance.checker import CheckOptions, check_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .images import pristine_v2


@st.composite
def bitmaps(draw: st.DrawFn) -> tuple[int, bytes]:
    clusters = draw(st.integers(1, 3000))
    nbytes = -(-clusters // 8)
    kind = draw(st.sampled_from(["ones", "ones-one-zero", "random", "ones-padding"]))
    data = bytearray(b"\xff" * nbytes)
    used = clusters & 7
    if used:
        data[-1] &= (1 << used) - 1
    if kind == "ones-one-zero":
        i = draw(st.integers(0, clusters - 1))
        data[i >> 3] &= ~(1 << (i & 7)) & 0xFF
    elif kind == "random":
        data = bytearray(draw(st.binary(min_size=nbytes, max_size=nbytes)))
    if kind == "ones-padding" and used:  # the only 0 bits... are none: padding set instead
        data[-1] |= 0xFF & ~((1 << used) - 1)
    return clusters, bytes(data)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=bitmaps(), chunk=st.sampled_from([1, 3, 8, 64, 1 << 20]))
def test_scan_equals_whole_bitmap_model(case: tuple[int, bytes], chunk: int,
                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    clusters, data = case
    d = tmp_path_factory.mktemp("scan")
    s = pristine_v2(d, virtual_size=clusters << 9, cluster_bits=9, backing=False,
                    bitmap=data, compatible_features=1)
    os.truncate(d / "image.raw", clusters << 9)
    report = check_file(s.addcow, CheckOptions(chunk_size=chunk))
    bits = [data[i >> 3] >> (i & 7) & 1 for i in range(clusters)]
    padding = data[-1] >> (clusters & 7) if clusters & 7 else 0
    assert report.facts["allocated_clusters"] == sum(bits)
    rules = set(report.rule_ids)
    assert ("BMP-PADDING" in rules) == bool(padding)
    zero = next((i for i, b in enumerate(bits) if not b), None)
    assert ("FEAT-ALL-ALLOCATED" in rules) == (zero is not None)
    if zero is not None:
        finding = next(f for f in report.findings if f.rule == "FEAT-ALL-ALLOCATED")
        assert f"the first for cluster {zero}" in finding.message
