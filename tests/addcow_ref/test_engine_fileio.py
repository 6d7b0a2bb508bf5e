"""The file layer's copy and data-segment calls, which resize and hydrate use instead of calling
``os.copy_file_range`` and ``SEEK_DATA`` themselves: each path (kernel copy, read-and-write
fallback, holes, no ``SEEK_DATA``) gives the same bytes, and the fault-injecting layer sees
them."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

import addcow_ref
from addcow_ref.engine import fileio
from addcow_ref.engine.fileio import OSFile, OSFileSystem
from addcow_ref.format.errors import AddCowError
from addcow_ref.ops.info import image_info

from .faultfs import FaultFS
from .helpers import bitmap_clusters, check_valid, make_image

FS = OSFileSystem()
DATA = bytes(range(256)) * 64  # 16 KiB


def _pair(tmp_path: Path, dst_size: int = 0) -> tuple[OSFile, OSFile]:
    (tmp_path / "src").write_bytes(DATA)
    (tmp_path / "dst").write_bytes(b"\xee" * dst_size)
    return (FS.open(str(tmp_path / "src"), writable=False),
            FS.open(str(tmp_path / "dst"), writable=True))


def test_copy_range_in_the_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.copy_file_range

    def counting(*args: Any) -> int:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(os, "copy_file_range", counting)
    src, dst = _pair(tmp_path, 8192)
    try:
        assert dst.copy_range(src, 1000, 3000, 5000) == 5000
    finally:
        src.close()
        dst.close()
    assert calls
    got = (tmp_path / "dst").read_bytes()
    assert got == b"\xee" * 3000 + DATA[1000:6000] + b"\xee" * 192


@pytest.mark.parametrize("err", [errno.EXDEV, errno.EINVAL, errno.ENOSYS])
def test_copy_range_falls_back_when_the_kernel_refuses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    def refuse(*args: Any) -> int:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(os, "copy_file_range", refuse)
    monkeypatch.setattr(fileio, "COPY_PIECE", 1000)  # several pieces
    src, dst = _pair(tmp_path)
    try:
        assert dst.copy_range(src, 0, 0, len(DATA)) == len(DATA)
    finally:
        src.close()
        dst.close()
    assert (tmp_path / "dst").read_bytes() == DATA


def test_copy_range_from_a_file_without_descriptor_reads_and_writes(tmp_path: Path) -> None:
    fs = FaultFS()
    (tmp_path / "src").write_bytes(DATA)
    (tmp_path / "dst").write_bytes(b"")
    src = fs.open(str(tmp_path / "src"), writable=False)
    dst = FS.open(str(tmp_path / "dst"), writable=True)
    try:
        assert dst.copy_range(src, 100, 0, 300) == 300
    finally:
        dst.close()
        fs.close_all()
    assert ("pread", str(tmp_path / "src")) in fs.log  # the bytes went through pread
    assert (tmp_path / "dst").read_bytes() == DATA[100:400]


@pytest.mark.parametrize("kernel", [True, False], ids=["kernel", "fallback"])
def test_copy_range_stops_where_the_source_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                kernel: bool) -> None:
    if not kernel:
        monkeypatch.delattr(os, "copy_file_range")
    src, dst = _pair(tmp_path)
    try:
        assert dst.copy_range(src, len(DATA) - 10, 0, 100) == 10
    finally:
        src.close()
        dst.close()
    assert (tmp_path / "dst").read_bytes() == DATA[-10:]


def test_data_segments_skip_holes(tmp_path: Path) -> None:
    path = tmp_path / "sparse"
    block = os.statvfs(tmp_path).f_bsize
    with open(path, "wb") as f:
        f.truncate(16 * block)
        f.seek(4 * block)
        f.write(b"x" * block)
    f2 = FS.open(str(path), writable=False)
    try:
        whole = list(f2.data_segments(0, 16 * block))
        tail = list(f2.data_segments(6 * block, 10 * block))
        inside = list(f2.data_segments(4 * block + 10, 20))
    finally:
        f2.close()
    if whole == [(0, 16 * block)]:
        pytest.skip(f"the file system under {tmp_path} does not report holes")
    assert whole == [(4 * block, block)]
    assert tail == []  # only holes to the end of the file (ENXIO)
    assert inside == [(4 * block + 10, 20)]


def test_data_segments_without_seek_data_is_the_whole_range(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_seek(fd: int, pos: int, how: int) -> int:
        raise OSError(errno.EINVAL, "no SEEK_DATA here")

    (tmp_path / "f").write_bytes(bytes(4096))
    f = FS.open(str(tmp_path / "f"), writable=False)
    monkeypatch.setattr(os, "lseek", no_seek)
    try:
        assert list(f.data_segments(100, 1000)) == [(100, 1000)]
    finally:
        f.close()


def test_hydrate_copy_failure_is_typed_and_keeps_bits_unset(tmp_path: Path) -> None:
    """ENOSPC on the file layer's copy (the hydrate's write) leaves the clusters unallocated."""
    cb, size = 12, 8 << 12
    backing = b"\x5a" * size
    path = make_image(tmp_path, size=size, cluster_bits=cb, backing=backing)

    def hook(op: str, name: str) -> None:
        if op == "copy_range":
            raise OSError(errno.ENOSPC, "injected ENOSPC")

    fs = FaultFS(hook)
    img = addcow_ref.open_image(path, "r+", fs=fs)
    with pytest.raises(AddCowError, match="ENOSPC") as info:
        img.hydrate()
    assert info.value.file is not None
    assert info.value.file.endswith("disk.raw")
    assert img.is_allocated(0, size) == (False, size)
    img.close()
    assert bitmap_clusters(check_valid(path), 8) == set()
    with addcow_ref.open_image(path) as again:
        assert again.read(0, size) == backing


def test_hydrate_zero_fill_queries_data_segments(tmp_path: Path) -> None:
    """Hydrate asks the file layer where the backing file holds data (and a
    failing query is a typed error naming the file it asked about)."""
    cb, size = 12, 8 << 12
    path = make_image(tmp_path, size=size, cluster_bits=cb, backing=b"\x5a" * 4096)
    fs = FaultFS()
    with addcow_ref.open_image(path, "r+", fs=fs) as img:
        img.hydrate()
        assert image_info(img).all_allocated
        assert img.read(0, size) == b"\x5a" * 4096 + bytes(size - 4096)
    assert any(op == "data_segments" for op, _ in fs.log)
    assert any(op == "copy_range" for op, _ in fs.log)

    path2 = make_image(tmp_path, size=size, cluster_bits=cb, backing=b"\x5a" * 4096,
                       name="two")

    def hook(op: str, name: str) -> None:
        if op == "data_segments" and name.endswith("two-base.raw"):
            raise OSError(errno.EIO, "injected EIO")

    img = addcow_ref.open_image(path2, "r+", fs=FaultFS(hook))
    with pytest.raises(AddCowError, match="EIO") as info:
        img.hydrate()
    assert info.value.file is not None
    assert info.value.file.endswith("two-base.raw")  # the backing file's segments were asked
    img.close()
    check_valid(path2)
