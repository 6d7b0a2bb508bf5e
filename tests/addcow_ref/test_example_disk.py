"""The example disk is deterministic, recognizable, and the committed copy is not stale."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from addcow_ref.cli.example_disk import (
    BASE_DISK_NAME,
    BASE_DISK_SIZE,
    base_disk,
    base_disk_sha256,
    main,
)
from addcow_ref.format.constants import SECTOR_SIZE

from ..conftest import ROOT


def test_base_disk_has_the_documented_shape() -> None:
    data = base_disk()
    assert len(data) == BASE_DISK_SIZE
    assert len(data) % SECTOR_SIZE == 0
    assert data.startswith(b"add-cow example base disk")
    # Every non-zero sector names itself, so bytes read back through an overlay say where
    # they came from.
    for index in (1, 0x81, 0x5FF):
        sector = data[index * SECTOR_SIZE : (index + 1) * SECTOR_SIZE]
        assert f"sector 0x{index:04x} of cluster".encode() in sector
        assert sector.endswith(b"\n")
    assert data[-BASE_DISK_SIZE // 4 :] == bytes(BASE_DISK_SIZE // 4)
    assert data[-BASE_DISK_SIZE // 4 - 1] != 0


def test_base_disk_is_deterministic() -> None:
    assert base_disk() == base_disk()
    assert base_disk_sha256() == hashlib.sha256(base_disk()).hexdigest()


def test_committed_example_equals_the_generator() -> None:
    committed = ROOT / "examples" / BASE_DISK_NAME
    assert committed.read_bytes() == base_disk(), (
        "examples/base.raw is stale: run python examples/make_examples.py")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_examples.py"), "--check"],
        capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


def test_module_entry_point_writes_the_disk(tmp_path: object) -> None:
    from pathlib import Path

    target = Path(str(tmp_path)) / "copy.raw"
    assert main([str(target)]) == 0
    assert target.read_bytes() == base_disk()
    assert main(["--bogus"]) == 64
    assert main([str(Path(str(tmp_path)) / "no" / "such" / "dir.raw")]) == 1
