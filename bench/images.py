"""Build the big images the scenarios measure, once, and keep them between runs.

A 64 TiB add-cow image is a 128 MiB bitmap plus a 64 TiB raw image file, and a fully mapped
64 TiB qcow2 holds 8 GiB of L2 tables: too slow to rebuild per run, so every image lives in a
directory of the cache named after its parameters, with a ``.done`` marker written last (a build
that died half way is rebuilt, never measured).

Sparse files past ext4's 16 TiB file-size limit are put on tmpfs (``/dev/shm``), where a sparse
file of any size costs no memory until written, and symlinked into the cache directory: add-cow and
qcow2 resolve names relative to their own directory, and both follow the link.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from addcow_ref.format.constants import DEFAULT_BITMAP_OFFSET
from addcow_ref.format.forge import forge_v2, name_fields
from addcow_ref.format.header import bitmap_length_for, cluster_count_for

__all__ = ["BIG_SPARSE_DIR", "addcow_image", "cached", "data_file", "human_size",
           "qcow2_overlay", "sparse_file"]

BIG_SPARSE_DIR = Path(os.environ.get("ADDCOW_BENCH_SPARSE", "/dev/shm/addcow-bench"))
_CHUNK = 16 << 20


def human_size(n: int) -> str:
    for unit, shift in (("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` bytes holding no data blocks, on tmpfs behind a symlink when the
    directory's file system cannot hold a file that long."""
    try:
        with open(path, "wb") as f:
            f.truncate(size)
    except OSError as e:
        if e.errno != errno.EFBIG:
            raise
        path.unlink(missing_ok=True)
        tag = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        target = BIG_SPARSE_DIR / tag / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            f.truncate(size)
        path.symlink_to(target)
    return path


def cached(cache: str | Path, key: str, build: Callable[[Path], None]) -> Path:
    """The directory ``cache/key``, built by ``build(dir)`` unless a finished build is there."""
    d = Path(cache).resolve() / key
    done = d / ".done"
    if done.exists():
        return d
    if d.exists():
        _remove_tree(d)
    d.mkdir(parents=True)
    build(d)
    done.write_text("ok\n")
    return d


def _remove_tree(d: Path) -> None:
    """Remove a half-built image directory and the tmpfs files its symlinks point to."""
    for p in d.iterdir():
        if p.is_symlink():
            target = Path(os.readlink(p))
            target.unlink(missing_ok=True)
    shutil.rmtree(d)


def _bitmap_chunks(nbytes: int, fill: str, seed: int) -> Iterator[bytes]:
    """The bitmap bytes in chunks. ``random``: each bit 1 with probability 1/2 (a half-full
    bitmap with as many runs as possible); ``runs``: alternating runs of 4096 allocated and
    4096 unallocated clusters (extent count proportional to the size, but bounded enough for
    ``addcow map`` to print at 64 TiB); ``zero``/``ones``: uniform."""
    rng = random.Random(seed)
    pattern = {"runs": b"\xff" * 512 + b"\0" * 512, "zero": b"\0" * 1024,
               "ones": b"\xff" * 1024}
    done = 0
    while done < nbytes:
        n = min(_CHUNK, nbytes - done)
        if fill == "random":
            yield rng.randbytes(n)
        else:
            unit = pattern[fill]
            yield (unit * (n // len(unit) + 1))[:n]
        done += n


def data_file(path: Path, size: int, seed: int) -> Path:
    """A file of ``size`` bytes of real (non-hole) data, so that reads hit the page cache the
    way a used disk does rather than the kernel's zero-fill of a hole."""
    block = random.Random(seed).randbytes(1 << 20)
    with open(path, "wb") as f:
        for off in range(0, size, len(block)):
            f.write(block[:min(len(block), size - off)])
    return path


def addcow_image(cache: str | Path, virtual_size: int, *, cluster_bits: int = 16,
                 fill: str = "random", backing: bool = True, seed: int = 1,
                 data: bool = False) -> Path:
    """A v2 add-cow file ``img.addcow`` with a raw image ``img.raw`` and, when ``backing``, a
    raw backing file ``base.raw`` of the same size; both sparse unless ``data``.

    Written straight from the schema rather than through ``addcow_ref.ops.create`` so that the
    fixture costs the same whatever the library's speed, and so that the bitmap can be filled.
    """
    key = (f"addcow-{virtual_size}-c{cluster_bits}-{fill}-s{seed}-{'b' if backing else 'nb'}"
           f"{'-data' if data else ''}")

    def build(d: Path) -> None:
        image, base = b"img.raw", b"base.raw"
        names = image + (base if backing else b"")
        header = forge_v2(
            virtual_size=virtual_size, cluster_bits=cluster_bits,
            backing_format=b"raw" if backing else b"",
            **name_fields(image, base if backing else None)).build()
        nbytes = bitmap_length_for(virtual_size, cluster_bits)
        used = cluster_count_for(virtual_size, cluster_bits) & 7
        tmp = d / "img.addcow.tmp"
        with open(tmp, "wb") as f:
            area = header + names
            f.write(area + bytes(DEFAULT_BITMAP_OFFSET - len(area)))
            written = 0
            for chunk in _bitmap_chunks(nbytes, fill, seed):
                written += len(chunk)
                if written == nbytes and used:
                    # Padding bits past the last cluster must be 0 (rule BMP-PADDING).
                    chunk = chunk[:-1] + bytes([chunk[-1] & ((1 << used) - 1)])
                f.write(chunk)
        if data:
            data_file(d / "img.raw", virtual_size, seed + 1)
            if backing:
                data_file(d / "base.raw", virtual_size, seed + 2)
        else:
            sparse_file(d / "img.raw", virtual_size)
            if backing:
                sparse_file(d / "base.raw", virtual_size)
        tmp.rename(d / "img.addcow")

    return cached(cache, key, build) / "img.addcow"


def qcow2_overlay(cache: str | Path, virtual_size: int, *, data_file: bool) -> Path:
    """A qcow2 overlay ``m.qcow2`` over a sparse raw ``base.raw`` of the same size with every
    cluster mapped (64 KiB clusters), so ``qemu-img check`` walks one L2 entry per cluster as
    ``addcow-check`` walks one bit per cluster.

    QEMU refuses metadata preallocation together with a backing file, so the image is built
    without one and the backing file is attached afterwards with an unsafe rebase (metadata
    only). ``data_file``: the clusters live in an external raw data file (QEMU preallocates the
    L2 tables itself when ``data_file_raw=on``; the flag is then cleared because a raw data file
    cannot be combined with a backing file). Without it the clusters are inside the qcow2 file
    itself, which ext4 can hold only below 16 TiB.
    """
    key = f"qcow2-{virtual_size}-{'datafile' if data_file else 'infile'}"

    def build(d: Path) -> None:
        def qemu_img(*args: str) -> None:
            subprocess.run(["qemu-img", *args], cwd=d, check=True, capture_output=True)

        sparse_file(d / "base.raw", virtual_size)
        if data_file:
            sparse_file(d / "data.raw", virtual_size)
            # QEMU resolves a relative data file name against its working directory, not the
            # qcow2 file's, so the name stored is absolute.
            qemu_img("create", "-q", "-f", "qcow2", "-o",
                     f"data_file={d / 'data.raw'},data_file_raw=on,cluster_size=65536",
                     "tmp.qcow2", str(virtual_size))
            qemu_img("amend", "-f", "qcow2", "-o", "data_file_raw=off", "tmp.qcow2")
        else:
            qemu_img("create", "-q", "-f", "qcow2", "-o",
                     "preallocation=metadata,cluster_size=65536", "tmp.qcow2",
                     str(virtual_size))
        qemu_img("rebase", "-u", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "tmp.qcow2")
        (d / "tmp.qcow2").rename(d / "m.qcow2")

    return cached(cache, key, build) / "m.qcow2"
