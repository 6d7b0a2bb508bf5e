"""Whole-process ``addcow-check`` against ``qemu-img check`` on 1 TiB images.

Subject: an add-cow image of 1 TiB at 64 KiB clusters (2 MiB bitmap, random, about half the
bits set) over a sparse raw image file and a sparse raw backing file. Baseline: a 1 TiB qcow2
overlay whose every cluster is mapped (``write -z`` over the whole disk in 1 GiB steps, all from
one ``qemu-io`` process), so ``qemu-img check`` walks 16 Mi L2 entries. Both commands run as
child processes, interleaved, several times in the same run; the report gives medians, their
ratio and the peak RSS of each program (GNU time, per run; not the max over all children).

Target: addcow-check no slower than qemu-img check, and under 64 MiB of RSS.

``python -m bench.check_vs_qemu [--repeats N] [--size-gib N] [--workdir DIR] [--json FILE]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["Measurement", "build_addcow", "build_qcow2", "measure", "run_benchmark"]

GiB = 1 << 30
CLUSTER_BITS = 16


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One child process: wall time, CPU time (user + system, less sensitive to a busy
    machine than wall time), peak RSS in KiB and exit status."""

    seconds: float
    max_rss_kib: int
    status: int
    cpu_seconds: float = 0.0


def measure(argv: list[str], env: dict[str, str] | None = None) -> Measurement:
    """Run ``argv`` to completion with output discarded: wall time, and the peak RSS of that
    program alone.

    The RSS comes from GNU time (``%M``): a child forked from this Python process would start
    with this process's resident pages in its high-water mark, so ``wait4`` on a direct child
    overstates small programs. Without GNU time, ``wait4``'s figure is used and says so.
    """
    gnu_time = shutil.which("time") if os.path.exists("/usr/bin/time") else None
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        cmd = ["/usr/bin/time", "-f", "%M", "-o", rss.name, *argv] if gnu_time else argv
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        max_rss = int(usage.ru_maxrss)
        if gnu_time:
            text = rss.read().strip().splitlines()
            max_rss = int(text[-1]) if text and text[-1].isdigit() else max_rss
    # wait4's usage of the GNU time wrapper includes the program it waited for.
    cpu = usage.ru_utime + usage.ru_stime
    return Measurement(elapsed, max_rss, proc.returncode, cpu)


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)


def build_addcow(directory: Path, size: int, seed: int = 42) -> Path:
    """The subject image, created with the reference's ``create`` and given a random bitmap."""
    from addcow_ref import open_image
    from addcow_ref.ops.create import create

    _sparse(directory / "base.raw", size)
    path = directory / "disk.add-cow"
    create(str(path), size=size, image_file="disk.raw", backing_file="base.raw",
           backing_format="raw", cluster_bits=CLUSTER_BITS)
    with open_image(str(path)) as img:
        bitmap_offset = int(img.header.bitmap_offset)
        length = int(img.header.bitmap_length)
    rng = random.Random(seed)
    with open(path, "r+b") as f:
        f.seek(bitmap_offset)
        left = length
        while left:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n
    return path


def build_qcow2(directory: Path, size: int) -> Path:
    """The baseline overlay: every cluster mapped by ``write -z`` in 1 GiB steps, one qemu-io."""
    base = directory / "base.raw"
    if not base.exists():
        _sparse(base, size)
    path = directory / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw",
                    str(path), str(size)], check=True)
    step = min(GiB, size)
    commands: list[str] = []
    for offset in range(0, size, step):
        commands += ["-c", f"write -z {offset} {min(step, size - offset)}"]
    subprocess.run(["qemu-io", "-f", "qcow2", *commands, str(path)], check=True,
                   stdout=subprocess.DEVNULL)
    return path


def _checker_argv(image: Path) -> list[str]:
    # The console script itself, not a shell shim (pyenv's would add its own start-up time).
    script = Path(sys.executable).parent / "addcow-check"
    if script.exists():
        return [str(script), str(image)]
    return [sys.executable, "-m", "addcow_conformance.checker.cli", str(image)]


def _checker_argv_without_site_hooks(image: Path) -> list[str]:
    """The same program with ``python -S``: no ``.pth`` start-up hooks of this machine (this
    sandbox's certifi hook alone costs ~150 ms per process), the same modules from the same
    paths. Shows what the checker costs apart from the interpreter's site configuration."""
    import site

    import addcow_conformance

    import addcow_ref

    paths = [*site.getsitepackages(),
             *(str(Path(str(m.__file__)).resolve().parents[1])
               for m in (addcow_ref, addcow_conformance))]
    code = ("import sys; sys.path[1:1] = " + repr(paths) + "; "
            "from addcow_conformance.checker.cli import main; sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-S", "-c", code, str(image)]


def _python_env(workdir: Path) -> dict[str, str]:
    """The environment of every child: bytecode caching allowed, into ``workdir``.

    An installed wheel ships compiled bytecode; a machine that sets PYTHONDONTWRITEBYTECODE
    (this one does) would otherwise make every run recompile the checker and the reference
    from source, a cost no user of an installed ``addcow-check`` pays. The cache goes to a
    prefix directory in the scratch space, never into the source tree.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def _summary(runs: list[Measurement]) -> dict[str, Any]:
    return {
        "median_s": statistics.median(m.seconds for m in runs),
        "min_s": min(m.seconds for m in runs),
        "max_s": max(m.seconds for m in runs),
        "median_cpu_s": statistics.median(m.cpu_seconds for m in runs),
        "peak_rss_mib": max(m.max_rss_kib for m in runs) / 1024,
        "statuses": sorted({m.status for m in runs}),
        "runs_s": [round(m.seconds, 4) for m in runs],
    }


def run_benchmark(workdir: Path, *, size: int = 1 << 40, repeats: int = 5) -> dict[str, Any]:
    """Build both images in ``workdir`` and time both checkers, interleaved."""
    for tool in ("qemu-img", "qemu-io"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install qemu-utils)")
    t0 = time.perf_counter()
    addcow = build_addcow(workdir, size)
    qcow2 = build_qcow2(workdir, size)
    build_s = time.perf_counter() - t0
    subject = _checker_argv(addcow)
    bare = _checker_argv_without_site_hooks(addcow)
    baseline = ["qemu-img", "check", "-f", "qcow2", str(qcow2)]
    env = _python_env(workdir)
    for argv in (subject, bare, baseline):  # warm the page and bytecode caches before timing
        measure(argv, env)
    ours: list[Measurement] = []
    ours_bare: list[Measurement] = []
    theirs: list[Measurement] = []
    for _ in range(repeats):
        ours.append(measure(subject, env))
        ours_bare.append(measure(bare, env))
        theirs.append(measure(baseline, env))
    a, b, q = _summary(ours), _summary(ours_bare), _summary(theirs)
    return {
        "virtual_size": size,
        "cluster_size": 1 << CLUSTER_BITS,
        "bitmap_bytes": (size >> CLUSTER_BITS) // 8,
        "qcow2_file_bytes": qcow2.stat().st_size,
        "build_s": build_s,
        "repeats": repeats,
        "addcow_check": a,
        "addcow_check_without_site_hooks": b,
        "qemu_img_check": q,
        "time_ratio": a["median_s"] / q["median_s"],
        "time_ratio_without_site_hooks": b["median_s"] / q["median_s"],
        "time_ratio_of_minimums": a["min_s"] / q["min_s"],
        "cpu_ratio": a["median_cpu_s"] / q["median_cpu_s"],
        "targets": {
            "no_slower_than_qemu": a["median_s"] <= q["median_s"],
            "rss_under_64_mib": a["peak_rss_mib"] < 64,
        },
        "commands": {"subject": subject, "subject_without_site_hooks": bare,
                     "baseline": baseline},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.check_vs_qemu", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size-gib", type=int, default=1024, help="virtual size (default 1 TiB)")
    ap.add_argument("--workdir", default=None, help="scratch directory (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="addcow-check-bench-", dir=args.workdir) as work:
        result = run_benchmark(Path(work), size=args.size_gib * GiB, repeats=args.repeats)
    a, q = result["addcow_check"], result["qemu_img_check"]
    b = result["addcow_check_without_site_hooks"]
    print(f"virtual size {result['virtual_size'] / GiB:.0f} GiB, "
          f"bitmap {result['bitmap_bytes'] / (1 << 20):.1f} MiB, "
          f"qcow2 metadata {result['qcow2_file_bytes'] / (1 << 20):.1f} MiB, "
          f"built in {result['build_s']:.1f} s")
    for label, r in (("addcow-check  ", a), ("  (python -S) ", b), ("qemu-img check", q)):
        print(f"{label}  median {r['median_s']:.3f} s  min {r['min_s']:.3f} s  "
              f"CPU {r['median_cpu_s']:.3f} s  peak RSS {r['peak_rss_mib']:.1f} MiB  "
              f"exit {r['statuses']}")
    print(f"ratio addcow-check / qemu-img check: {result['time_ratio']:.2f} "
          f"({result['time_ratio_without_site_hooks']:.2f} without site hooks, "
          f"{result['time_ratio_of_minimums']:.2f} of the minimums, "
          f"{result['cpu_ratio']:.2f} of CPU time; "
          f"targets: {result['targets']})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if all(result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
