"""Failure paths: injected ENOSPC/EIO leave the image valid with the bit unset, and an
interrupted v1 upgrade leaves the original intact."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.format.errors import AddCowError

from .faultfs import FaultFS, PowerLoss
from .helpers import bitmap_clusters, check_valid, make_image, make_v1

CB = 12
SIZE = 8 << CB


def fail_on(op: str, suffix: str, err: int, after: int = 0) -> FaultFS:
    """A FaultFS whose ``op`` on files ending in ``suffix`` fails with ``err`` (after
    ``after`` successful calls)."""
    seen = [0]

    def hook(o: str, path: str) -> None:
        if o == op and path.endswith(suffix):
            seen[0] += 1
            if seen[0] > after:
                raise OSError(err, f"injected {errno.errorcode[err]}")
    return FaultFS(hook)


def fail_at(target: int, make: Callable[[str], BaseException]) -> FaultFS:
    """A FaultFS whose operation number ``target`` (0-based, any kind) raises ``make(op)``."""
    count = [0]

    def hook(op: str, path: str) -> None:
        count[0] += 1
        if count[0] - 1 == target:
            raise make(op)
    return FaultFS(hook)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
def test_failed_data_write_leaves_bit_unset(tmp_path: Path, err: int) -> None:
    backing = b"\x5a" * SIZE
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=backing)
    with addcow_ref.open_image(path, "r+", fs=fail_on("pwrite", "disk.raw", err)) as img:
        with pytest.raises(AddCowError) as info:
            img.write(100, b"x" * 50)
        assert errno.errorcode[err] in str(info.value)
        assert info.value.file is not None
        assert info.value.file.endswith("disk.raw")
        assert img.is_allocated(0, 4096) == (False, 4096)
        assert img.read(0, 4096) == backing[:4096]
    assert bitmap_clusters(check_valid(path), 8) == set()
    with addcow_ref.open_image(path) as img:
        assert img.read(0, SIZE) == backing


@pytest.mark.parametrize(("op", "suffix"), [("fsync", "disk.raw"), ("pwrite", "disk.addcow"),
                                            ("fsync", "disk.addcow")])
def test_failed_flush_keeps_image_valid(tmp_path: Path, op: str, suffix: str) -> None:
    backing = b"\x5a" * SIZE
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=backing)
    img = addcow_ref.open_image(path, "r+", fs=fail_on(op, suffix, errno.EIO))
    img.write(4096 + 10, b"y" * 10)
    with pytest.raises(AddCowError, match="EIO"):
        img.flush()
    bits = bitmap_clusters(check_valid(path), 8)
    if op == "fsync" and suffix == "disk.raw":
        assert bits == set()  # data not durable: the bit must not have been written
    if op == "fsync":
        img.close()  # a failed sync is final (WRITE-SYNC-FAILED): close commits nothing
    else:
        with pytest.raises(AddCowError):
            img.close()  # the flush in close fails again; the files are released anyway
    assert img.closed
    check_valid(path)
    with addcow_ref.open_image(path) as again:
        got = again.read(4096, 4096)
        assert got in (backing[4096:8192],
                       backing[4096:4106] + b"y" * 10 + backing[4116:8192])


def test_every_failure_point_of_a_workload(tmp_path: Path) -> None:
    """EIO at each file operation of a small workload, one run per operation."""
    backing = bytes(range(256)) * (SIZE // 256)

    def workload(img: addcow_ref.AddCowImage) -> None:
        img.write(10, b"a" * 5000)
        img.write(3 * 4096 + 100, b"b" * 100)
        img.flush()
        img.write(7 * 4096, b"c" * 4096)
        img.resize(SIZE + 4096)
        img.write(SIZE + 10, b"d")

    probe = FaultFS()
    (tmp_path / "probe").mkdir()
    path = make_image(tmp_path / "probe", size=SIZE, cluster_bits=CB, backing=backing)
    with addcow_ref.open_image(path, "r+", fs=probe) as img:
        workload(img)
    points = [i for i, (op, _) in enumerate(probe.log) if op in ("pwrite", "fsync", "truncate")]
    assert len(points) > 8
    for n, point in enumerate(points):
        d = tmp_path / f"run{n}"
        d.mkdir()
        p = make_image(d, size=SIZE, cluster_bits=CB, backing=backing)
        fs = fail_at(point, lambda op: OSError(errno.EIO, "injected EIO"))
        img = addcow_ref.open_image(p, "r+", fs=fs)
        with contextlib.suppress(AddCowError):
            workload(img)
        with contextlib.suppress(AddCowError):
            img.close()
        check_valid(p)
        with addcow_ref.open_image(p) as again:
            got = again.read(0, 4096)
            assert got in (backing[:4096], backing[:10] + b"a" * 4086)


def test_upgrade_v1_interrupted_at_every_step(tmp_path: Path) -> None:
    image = bytes(range(256)) * 1024  # 256 KiB: 4 clusters of 64 KiB
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    make_v1(probe_dir, image=image, bitmap=b"\x05", backing=b"\x77" * len(image))
    probe = FaultFS()
    addcow_ref.upgrade_v1(probe_dir / "old.addcow", fs=probe)
    steps = len(probe.log)
    assert steps >= 6
    for k in range(steps):
        for kind in ("error", "power"):
            d = tmp_path / f"s{k}{kind}"
            d.mkdir()
            path = make_v1(d, image=image, bitmap=b"\x05", backing=b"\x77" * len(image))
            original = path.read_bytes()
            fs = fail_at(k, (lambda op: OSError(errno.EIO, "injected EIO")) if kind == "error"
                         else PowerLoss)
            op = probe.log[k][0]
            with pytest.raises((AddCowError, PowerLoss)):
                addcow_ref.upgrade_v1(path, fs=fs)
            fs.close_all()
            if op == "fsync_dir":
                # Interrupted after the rename: the new image is complete and valid.
                check_valid(path)
            else:
                assert path.read_bytes() == original, f"step {k} ({op}) changed the original"
            with addcow_ref.open_image(path) as img:
                assert img.read(0, len(image)) == (image[:65536] + b"\x77" * 65536
                                                   + image[131072:196608] + b"\x77" * 65536)
            leftovers = [f.name for f in d.iterdir() if ".upgrade-" in f.name]
            assert kind == "power" or not leftovers


def test_eviction_write_failure_is_typed_and_keeps_image_valid(tmp_path: Path) -> None:
    """With a one-chunk cache, a write can trigger a write-back of another chunk; its EIO
    arrives as an AddCowError, never a bare OSError."""
    path = make_image(tmp_path, size=64 << 9, cluster_bits=9, backing=b"\x10" * (64 << 9))
    fs = fail_on("pwrite", "disk.addcow", errno.EIO)
    img = addcow_ref.open_image(path, "r+", fs=fs, cache_chunk_size=1, cache_capacity=1)
    img.write(0, b"a")
    with pytest.raises(AddCowError) as info:
        img.write(8 << 9, b"b")  # loads the next 1-byte chunk, evicting the dirty first one
    assert info.value.file == str(path)
    with pytest.raises(AddCowError):
        img.close()
    check_valid(path)
    with addcow_ref.open_image(path) as again:
        assert again.read(1, 511) == b"\x10" * 511
