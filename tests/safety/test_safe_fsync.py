"""A failed sync is final (rule WRITE-SYNC-FAILED): the kernel reports a failed ``fsync`` once
and may have dropped the dirty pages, so a retry that succeeds proves nothing. After one, no bit
of data written since the last good sync reaches the disk, every later change is refused, and
close commits nothing."""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from pathlib import Path

import pytest
from addcow_conformance.checker.engine import check_path

import addcow_ref
from addcow_ref.format.errors import AddCowError
from addcow_ref.format.header import HeaderV2
from tests.addcow_ref.faultfs import FaultFS

CB = 12
SIZE = 8 << CB
BACKING = b"\x5a" * SIZE


def _image(tmp_path: Path) -> Path:
    (tmp_path / "base.raw").write_bytes(BACKING)
    path = tmp_path / "disk.add-cow"
    addcow_ref.create(path, size=SIZE, image_file="disk.raw", backing_file="base.raw",
                      backing_format="raw", cluster_bits=CB)
    return path


def _fail_first_fsync(suffix: str) -> FaultFS:
    """The first fsync of a file ending in ``suffix`` fails with EIO, later ones succeed: what
    Linux does after a writeback error (reported once, then cleared)."""
    failed = [False]

    def hook(op: str, path: str) -> None:
        if op == "fsync" and path.endswith(suffix) and not failed[0]:
            failed[0] = True
            raise OSError(errno.EIO, "injected EIO")
    return FaultFS(hook)


def _allocated(path: Path) -> list[bool]:
    with addcow_ref.open_image(path) as img:
        return [img.is_allocated(c << CB, 1 << CB)[0] for c in range(SIZE >> CB)]


def test_close_after_a_failed_data_sync_commits_no_bit(tmp_path: Path) -> None:
    path = _image(tmp_path)
    img = addcow_ref.open_image(path, "r+", fs=_fail_first_fsync("disk.raw"))
    img.write(1 << CB, b"y" * 100)
    with pytest.raises(AddCowError, match="EIO"):
        img.flush()
    img.close()  # once retried the fsync here, which succeeded, and then wrote the bit
    assert _allocated(path) == [False] * (SIZE >> CB)
    report = check_path(path)
    assert report.exit_code == 0, report.findings
    with addcow_ref.open_image(path) as again:
        assert again.read(0, SIZE) == BACKING


@pytest.mark.parametrize("suffix", ["disk.raw", "disk.add-cow"])
def test_a_failed_image_refuses_every_change_until_reopened(tmp_path: Path,
                                                            suffix: str) -> None:
    path = _image(tmp_path)
    img = addcow_ref.open_image(path, "r+", fs=_fail_first_fsync(suffix))
    img.write(0, b"a")
    with pytest.raises(AddCowError, match="EIO"):
        img.flush()
    for change in (lambda: img.write(2 << CB, b"b"), img.flush, img.hydrate,
                   lambda: img.resize(2 * SIZE)):
        with pytest.raises(AddCowError, match="WRITE-SYNC-FAILED"):
            change()
    assert img.read(3 << CB, 16) == BACKING[:16]  # reads still answer
    img.close()
    with addcow_ref.open_image(path, "r+") as again:  # reopened: a fresh start
        again.write(2 << CB, b"c" * (1 << CB))
    assert _allocated(path)[2]


def test_hydrate_with_a_failed_sync_sets_no_bit(tmp_path: Path) -> None:
    path = _image(tmp_path)
    img = addcow_ref.open_image(path, "r+", fs=_fail_first_fsync("disk.raw"))
    with pytest.raises(AddCowError, match="EIO"):
        img.hydrate()
    img.close()
    assert _allocated(path) == [False] * (SIZE >> CB)
    with addcow_ref.open_image(path) as again:
        assert not again.all_allocated
    assert check_path(path).exit_code == 0


# -- every fsync of resize, hydrate and the header rewrite -------------------------------------
#
# These syncs do not go through the data path (a truncate or punch of the image file, bitmap
# bytes written straight to the add-cow file, the header): each one is a boundary where a failed
# fsync must leave the image failed, never retried by the next step or by a later change.

def _grow(img: addcow_ref.AddCowImage) -> None:
    img.resize(SIZE + (40 << CB) + 512)  # several new bitmap bytes and a partial last cluster


def _shrink(img: addcow_ref.AddCowImage) -> None:
    img.resize(SIZE - (3 << CB) - 512)


def _hydrate(img: addcow_ref.AddCowImage) -> None:
    img.hydrate()


def _clear_autoclear(img: addcow_ref.AddCowImage) -> None:
    img.write(5 << CB, b"w" * 7)  # the first change clears an unknown autoclear bit first
    img.flush()


OPERATIONS: dict[str, Callable[[addcow_ref.AddCowImage], None]] = {
    "grow": _grow, "shrink": _shrink, "hydrate": _hydrate, "autoclear-header": _clear_autoclear}


def _prepared(tmp_path: Path, name: str) -> Path:
    """An image in the state the operation needs: a few clusters written; for hydrate an image
    file longer than the disk (so hydrate's truncate and its sync run); for the header case an
    unknown autoclear bit (the writer must clear it with a header rewrite)."""
    path = _image(tmp_path)
    with addcow_ref.open_image(path, "r+") as img:
        img.write(1 << CB, b"d" * (2 << CB))
        img.write(SIZE - 100, b"e" * 100)
    if name == "hydrate":
        with open(tmp_path / "disk.raw", "r+b") as f:
            f.truncate(SIZE + (3 << CB))
    if name == "autoclear-header":
        from addcow_ref.format.forge import set_field
        with addcow_ref.open_image(path) as img:
            header = img.header
        assert isinstance(header, HeaderV2)
        autoclear = header.autoclear_features
        set_field(path, "autoclear_features", autoclear | (1 << 40))
    return path


def _fsyncs(tmp_path: Path, name: str) -> int:
    """How many fsyncs ``name`` makes after the image is open (a dry run with no fault)."""
    path = _prepared(tmp_path / "count", name)
    counter = _FailKthFsync(-1)  # never fails: only counts
    img = addcow_ref.open_image(path, "r+", fs=FaultFS(counter))
    counter.armed = True
    OPERATIONS[name](img)
    counter.armed = False
    img.close()
    return counter.seen


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_a_failed_sync_at_every_boundary_of_resize_hydrate_and_header_is_final(
        tmp_path: Path, name: str) -> None:
    (tmp_path / "count").mkdir()
    total = _fsyncs(tmp_path, name)
    assert total >= 2, f"{name} made {total} fsyncs; the test would test nothing"
    for k in range(total):
        case = tmp_path / f"{name}-{k}"
        case.mkdir()
        path = _prepared(case, name)
        fault = _FailKthFsync(k)
        img = addcow_ref.open_image(path, "r+", fs=FaultFS(fault))
        fault.armed = True
        with pytest.raises(AddCowError, match="EIO"):
            OPERATIONS[name](img)
        assert fault.failed, f"{name}: fsync {k} was never reached"
        # the failure is final: the next change is refused, whatever the next fsync would do
        changes: list[Callable[[], None]] = [functools.partial(img.write, 0, b"z"), img.flush,
                                            functools.partial(img.resize, SIZE)]
        for change in changes:
            with pytest.raises(AddCowError, match="WRITE-SYNC-FAILED"):
                change()
        img.close()
        report = check_path(path)
        assert report.status in ("conforming", "warnings"), (name, k, report.findings)


class _FailKthFsync:
    """A FaultFS hook: once armed, the ``k``-th fsync (counted from 0) fails with EIO, every
    other one succeeds."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.seen = 0
        self.armed = False
        self.failed = False

    def __call__(self, op: str, _path: str) -> None:
        if op != "fsync" or not self.armed or self.failed:
            return
        if self.seen == self.k:
            self.failed = True
            raise OSError(errno.EIO, "injected EIO")
        self.seen += 1
