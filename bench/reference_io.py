"""Sequential 1 MiB read and write throughput through the reference library vs plain
``os.pread``/``os.pwrite`` on the same raw file, in the same process.

Runs alternate (library, plain, library, ...) so drift in the machine's load hits both sides;
the figures are medians. Three library cases: reads and writes of allocated clusters (the
steady state), and the first, allocating write pass over a fresh image (copy-on-write of a
backing file with one fsync before each bitmap write-back).

    python -m bench.reference_io [--size-mib 256] [--runs 5] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

__all__ = ["measure_reference_io"]

MIB = 1 << 20


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure_reference_io(directory: str | None = None, size_mib: int = 256,
                         runs: int = 5) -> dict[str, Any]:
    """Throughputs in MiB/s (medians over ``runs``) and the library/plain ratios."""
    import addcow_ref

    size = size_mib * MIB
    scratch = tempfile.mkdtemp(prefix="addcow-io-", dir=directory)
    try:
        base = os.path.join(scratch, "base.raw")
        with open(base, "wb") as f:
            f.truncate(size)
        block = random.Random(3).randbytes(MIB)
        samples: dict[str, list[float]] = {k: [] for k in
                                           ("lib_read", "raw_read", "lib_write", "raw_write",
                                            "lib_cow_write")}
        for run in range(runs):
            path = os.path.join(scratch, f"r{run}.addcow")
            addcow_ref.create(path, image_file=f"r{run}.raw", backing_file="base.raw",
                              backing_format="raw")
            with addcow_ref.open_image(path, "r+") as img:
                def cow(img: addcow_ref.AddCowImage = img) -> None:
                    for off in range(0, size, MIB):
                        img.write(off, block)
                    img.flush()
                samples["lib_cow_write"].append(_timed(cow))
            raw_path = os.path.join(scratch, f"r{run}.raw")
            fd = os.open(raw_path, os.O_RDWR)
            try:
                with addcow_ref.open_image(path, "r+") as img:
                    def lib_read(img: addcow_ref.AddCowImage = img) -> None:
                        for off in range(0, size, MIB):
                            img.read(off, MIB)

                    def lib_write(img: addcow_ref.AddCowImage = img) -> None:
                        for off in range(0, size, MIB):
                            img.write(off, block)

                    def raw_read(fd: int = fd) -> None:
                        for off in range(0, size, MIB):
                            os.pread(fd, MIB, off)

                    def raw_write(fd: int = fd) -> None:
                        for off in range(0, size, MIB):
                            os.pwrite(fd, block, off)

                    samples["lib_read"].append(_timed(lib_read))
                    samples["raw_read"].append(_timed(raw_read))
                    samples["lib_write"].append(_timed(lib_write))
                    samples["raw_write"].append(_timed(raw_write))
            finally:
                os.close(fd)
            os.unlink(raw_path)
            os.unlink(path)
        mib_s = {k: size_mib / statistics.median(v) for k, v in samples.items()}
        return {
            "size_mib": size_mib,
            "runs": runs,
            "mib_s": mib_s,
            "read_ratio": mib_s["lib_read"] / mib_s["raw_read"],
            "write_ratio": mib_s["lib_write"] / mib_s["raw_write"],
            "cow_write_ratio": mib_s["lib_cow_write"] / mib_s["raw_write"],
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args(argv)
    r = measure_reference_io(args.dir, args.size_mib, args.runs)
    m = r["mib_s"]
    print(f"sequential 1 MiB requests, {r['size_mib']} MiB per pass, median of {r['runs']}:")
    print(f"  read : library {m['lib_read']:8.0f} MiB/s   os.pread  {m['raw_read']:8.0f} MiB/s"
          f"   ratio {r['read_ratio']:.2f}")
    print(f"  write: library {m['lib_write']:8.0f} MiB/s   os.pwrite {m['raw_write']:8.0f} MiB/s"
          f"   ratio {r['write_ratio']:.2f}")
    print(f"  first (allocating) write pass incl. flush: {m['lib_cow_write']:.0f} MiB/s, "
          f"ratio {r['cow_write_ratio']:.2f} of os.pwrite")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
