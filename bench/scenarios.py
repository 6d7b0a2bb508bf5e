"""The benchmark scenarios. Each measures a subject against a peer or a limit."""

from __future__ import annotations

import importlib
import random

from addcow_ref.format import bitmap

from . import (  # noqa: F401  (they register scenarios)
    scn_check,
    scn_conformance,
    scn_hydrate,
    scn_io,
    scn_nbd,
    scn_qemu_nbd,
    scn_startup,
)
from .measure import Row, interleave
from .registry import Params, scenario


def _random_bitmap(nbytes: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    # randbytes builds one big integer: past ~256 MiB it overflows, so go by MiB.
    return b"".join(rng.randbytes(min(1 << 20, nbytes - i)) for i in range(0, nbytes, 1 << 20))


@scenario("bitmap-popcount", "popcount + padding check of a bitmap vs a plain memory copy")
def bitmap_popcount(p: Params) -> list[Row]:
    rows = []
    for mib in ([1] if p.tiny else [2, 32, 256]):
        data = _random_bitmap(mib << 20)
        chunk = 1 << 20
        ncl = len(data) * 8 - 3  # leave 3 padding bits to check

        def scan(data: bytes = data, chunk: int = chunk, ncl: int = ncl) -> None:
            total = 0
            for off in range(0, len(data), chunk):
                total += bitmap.count_ones(memoryview(data)[off:off + chunk])
            _ = data[-1] & bitmap.padding_mask(ncl)

        def copy(data: bytes = data) -> None:
            bytearray(data)

        s, b = interleave(scan, copy, p.cheap_repeats)
        rows.append(Row("bitmap-popcount", f"{mib} MiB", "count_ones", "memcpy", s, b,
                        "<= 3x copy", 3.0, False,
                        extra={"x": mib << 20, "x_label": "bitmap bytes"}))
    return rows


@scenario("bitmap-extents", "extent building (iter_runs, run_arrays) over a bitmap vs a plain "
                            "memory copy")
def bitmap_extents(p: Params) -> list[Row]:
    # The numpy paths, as in any process that has scanned 32 MiB of bitmap (the library's lazy
    # import threshold) or imported numpy for another reason; the full suite's popcount rows
    # pass the threshold anyway, this makes ``--only bitmap-extents`` measure the same code.
    importlib.import_module("numpy")
    rows = []
    cases = [("all-ones", b"\xff"), ("half-runs", None)]
    for name, fill in cases:
        nbytes = (64 << 10) if p.tiny else (8 << 20)
        if fill is None:
            # Runs of 64 clusters: realistic for written-then-hydrated images.
            data = (b"\xff" * 8 + b"\0" * 8) * (nbytes // 16)
        else:
            data = fill * nbytes

        def runs(d: bytes = data) -> None:
            for _ in bitmap.iter_runs(d, 0, len(d) * 8):
                pass

        def batch(d: bytes = data) -> None:
            bitmap.run_arrays(d, 0, len(d) * 8)

        def copy(d: bytes = data) -> None:
            bytearray(d)

        s, b = interleave(runs, copy, p.cheap_repeats)
        rows.append(Row("bitmap-extents", name, "iter_runs", "memcpy", s, b,
                        "<= 3x copy", 3.0, False,
                        extra={"note": f"{nbytes} bitmap bytes"}))
        s, b = interleave(batch, copy, p.cheap_repeats)
        nruns = len(bitmap.run_arrays(data, 0, len(data) * 8).starts)
        rows.append(Row("bitmap-extents", f"{name}, batch", "run_arrays", "memcpy", s, b,
                        "<= 3x copy", 3.0, False,
                        extra={"note": f"{nbytes} bitmap bytes, {nruns:,} runs returned as "
                                       "numpy arrays (starts, lengths, values)"}))
    return rows
