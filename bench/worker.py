"""Child processes for scenarios that measure a whole process (its peak RSS, its time to first
byte): ``python -m bench.worker pib IMAGE N SEED`` or ``... raw FILE SIZE N SEED``.

Prints one JSON line of in-process timings; the parent takes the peak RSS from ``wait4``.
Kept free of imports until the clock starts, so the time to first byte includes importing the
library, as a user's first call would.
"""

from __future__ import annotations

import json
import sys
import time


def _offsets(size: int, n: int, seed: int) -> list[int]:
    import random

    rng = random.Random(seed)
    return [rng.randrange(size >> 12) << 12 for _ in range(n)]


def pib(path: str, n: int, seed: int) -> dict[str, float]:
    """Open an add-cow image and read ``n`` random 4 KiB blocks."""
    t0 = time.perf_counter()
    from addcow_ref import open_image

    with open_image(path) as im:
        offsets = _offsets(im.virtual_size, n, seed)
        im.read(offsets[0], 4096)
        first = time.perf_counter() - t0
        for off in offsets[1:]:
            im.read(off, 4096)
    return {"ttfb": first, "total": time.perf_counter() - t0}


def raw(path: str, size: int, n: int, seed: int) -> dict[str, float]:
    """The same reads with ``os.pread`` on a raw file: the floor for the numbers above."""
    t0 = time.perf_counter()
    import os

    fd = os.open(path, os.O_RDONLY)
    try:
        offsets = _offsets(size, n, seed)
        os.pread(fd, 4096, offsets[0])
        first = time.perf_counter() - t0
        for off in offsets[1:]:
            os.pread(fd, 4096, off)
    finally:
        os.close(fd)
    return {"ttfb": first, "total": time.perf_counter() - t0}


def main(argv: list[str]) -> int:
    if argv[:1] == ["pib"] and len(argv) == 4:
        out = pib(argv[1], int(argv[2]), int(argv[3]))
    elif argv[:1] == ["raw"] and len(argv) == 5:
        out = raw(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        return 64
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
