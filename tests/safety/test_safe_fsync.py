"""A failed sync is final (rule WRITE-SYNC-FAILED): the kernel reports a failed ``fsync`` once
and may have dropped the dirty pages, so a retry that succeeds proves nothing. After one, no bit
of data written since the last good sync reaches the disk, every later change is refused, and
close commits nothing."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from addcow_conformance.checker.engine import check_path

import addcow_ref
from addcow_ref.format.errors import AddCowError
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
