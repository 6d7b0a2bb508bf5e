"""Peak RSS of opening a 1 PiB add-cow image and doing 1,000 random 4 KiB reads.

With 64 KiB clusters the bitmap is 2 GiB (sparse); the bitmap cache must keep the process far
below 100 MiB. The measurement runs in a child process so the parent's own memory does not
count: ``ru_maxrss`` of the child, as ``/usr/bin/time -v`` would report it.

    python -m bench.pib_rss [--dir /dev/shm] [--reads 1000]

The raw image file is a 1 PiB sparse file, which ext4 cannot hold (16 TiB limit): the default
directory is ``/dev/shm`` (tmpfs), falling back to the system temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

__all__ = ["measure_pib_rss"]

PIB = 1 << 50


def _child(directory: str, reads: int, seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    import addcow_ref

    path = os.path.join(directory, "pib.addcow")
    rng = random.Random(seed)
    with addcow_ref.open_image(path, "r+") as img:
        t_open = time.perf_counter() - t0
        # A few allocations scattered over the disk, so reads hit both states.
        for _ in range(16):
            img.write(rng.randrange(PIB >> 12) << 12, b"\xab" * 4096)
        t1 = time.perf_counter()
        allocated = 0
        for _ in range(reads):
            off = rng.randrange(PIB >> 12) << 12
            data = img.read(off, 4096)
            allocated += data[:1] == b"\xab"
        t_reads = time.perf_counter() - t1
        chunks = len(img._cache)
    return {
        "virtual_size": PIB,
        "reads": reads,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "open_s": t_open,
        "reads_s": t_reads,
        "cached_chunks": chunks,
    }


def measure_pib_rss(directory: str | None = None, reads: int = 1000,
                    seed: int = 1) -> dict[str, Any]:
    """Create a 1 PiB image in a scratch directory, run the reads in a child process and return
    its measurements (``maxrss_kib`` is the child's peak RSS)."""
    import addcow_ref

    base = directory or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    scratch = tempfile.mkdtemp(prefix="addcow-pib-", dir=base)
    try:
        addcow_ref.create(os.path.join(scratch, "pib.addcow"), size=PIB, image_file="pib.raw")
        out = subprocess.run(
            [sys.executable, "-m", "bench.pib_rss", "--child", scratch, "--reads", str(reads),
             "--seed", str(seed)],
            check=True, capture_output=True, text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        result: dict[str, Any] = json.loads(out.stdout)
        result["children_maxrss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="scratch directory (must hold a 1 PiB "
                        "sparse file: tmpfs or XFS)")
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.reads, args.seed)))
        return 0
    r = measure_pib_rss(args.dir, args.reads, args.seed)
    print(f"1 PiB image, {r['reads']} random 4 KiB reads: peak RSS {r['maxrss_kib'] / 1024:.1f} "
          f"MiB (budget 100 MiB); open {r['open_s'] * 1000:.1f} ms, reads {r['reads_s']:.2f} s, "
          f"{r['cached_chunks']} bitmap chunks cached at the end")
    return 0 if r["maxrss_kib"] < 100 * 1024 else 1


if __name__ == "__main__":
    raise SystemExit(main())
