"""Temporary files are made exclusively: a symbolic link planted at the name the old code
predicted (``.NAME.upgrade-<pid>``, ``NAME.tmp-<pid>``) is never followed, never truncated and
never renamed over the image."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import addcow_ref
from addcow_ref.ops.metafile import replace_metadata
from addcow_ref.ops.safefile import temp_beside
from tests.addcow_ref.helpers import make_v1

SECRET = b"root:*:19000:0:99999:7:::\n" * 40


def _victim(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "shadow"
    victim.write_bytes(SECRET)
    return victim


def test_upgrade_ignores_a_link_planted_at_the_predictable_temp_name(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    d = tmp_path / "images"
    d.mkdir()
    path = make_v1(d, image=bytes(range(256)) * 512, bitmap=b"\x01")
    (d / f".{path.name}.upgrade-{os.getpid()}").symlink_to(victim)
    addcow_ref.upgrade_v1(path)
    assert victim.read_bytes() == SECRET
    assert stat.S_ISREG(path.lstat().st_mode)  # the image did not become the planted link
    with addcow_ref.open_image(path) as img:
        assert img.version == 2
        assert img.read(0, 256) == bytes(range(256))
    assert [p.name for p in d.iterdir() if ".upgrade-" in p.name] == [
        f".{path.name}.upgrade-{os.getpid()}"]  # only the planted link, untouched


def test_upgrade_keeps_the_original_permissions(tmp_path: Path) -> None:
    path = make_v1(tmp_path, image=bytes(65536))
    path.chmod(0o640)
    addcow_ref.upgrade_v1(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_create_ignores_a_link_planted_at_the_predictable_temp_name(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    path = tmp_path / "new.add-cow"
    Path(f"{path}.tmp-{os.getpid()}").symlink_to(victim)
    addcow_ref.create(path, size=1 << 20, image_file="new.raw")
    assert victim.read_bytes() == SECRET
    assert stat.S_ISREG(path.lstat().st_mode)
    with addcow_ref.open_image(path) as img:
        assert img.virtual_size == 1 << 20


def test_temp_names_are_exclusive_and_unpredictable(tmp_path: Path) -> None:
    target = str(tmp_path / "disk.add-cow")
    fd1, a = temp_beside(target, "create")
    fd2, b = temp_beside(target, "create")
    os.close(fd1)
    os.close(fd2)
    assert a != b
    assert os.path.dirname(a) == str(tmp_path)
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o600


def test_metadata_rewrite_leaves_a_regular_file_with_the_old_mode(tmp_path: Path) -> None:
    path = tmp_path / "m.add-cow"
    addcow_ref.create(path, size=1 << 20, image_file="m.raw")
    path.chmod(0o600)
    data = path.read_bytes()
    replace_metadata(str(path), data[:4096], len(data), bitmap_from=(4096, len(data) - 4096))
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.lstat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.add-cow", "m.raw"]
