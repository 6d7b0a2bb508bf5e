"""``addcow create`` makes files only where meant, leaves nothing behind when it fails, and
refuses the foot-guns (an image file whose data it would hide, a -F the backing contradicts)
unless ``--force``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.format.constants import MAGIC
from addcow_ref.format.errors import ImageFileError
from addcow_ref.ops.create import looks_like

from .conftest import run


@pytest.fixture(autouse=True)
def _in(tmp_path: Path) -> None:
    os.chdir(tmp_path)


def test_a_failed_create_leaves_no_file(tmp_path: Path) -> None:
    result = run("create", "x.add-cow", "9223372036854775296")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_loop_found_at_create_time_leaves_no_file(tmp_path: Path) -> None:
    result = run("create", "-b", "self.add-cow", "-F", "add-cow", "self.add-cow", "1M")
    assert result.exit_code == 1
    assert "[BACK-LOOP]" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_two_image_loop_leaves_the_first_image_alone(tmp_path: Path) -> None:
    # a.add-cow names the not yet existing b.add-cow: the command line refuses to make such
    # an image (it cannot be opened, BACK-EXISTS), so the library makes it on purpose.
    addcow_ref.create("a.add-cow", size=1 << 20, image_file="a.raw", backing_file="b.add-cow",
                      backing_format="add-cow")
    before = sorted(p.name for p in tmp_path.iterdir())
    header = (tmp_path / "a.add-cow").read_bytes()
    result = run("create", "-b", "a.add-cow", "-F", "add-cow", "b.add-cow", "1M")
    assert result.exit_code == 1
    assert "[BACK-LOOP]" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "a.add-cow").read_bytes() == header


def test_a_backing_file_that_does_not_exist_is_refused_and_leaves_no_file(
        tmp_path: Path) -> None:
    result = run("create", "-b", "b.add-cow", "-F", "add-cow", "a.add-cow", "1M")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "[BACK-EXISTS]" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("verify", [False, True])
def test_an_image_file_that_is_the_backing_file_is_refused(tmp_path: Path,
                                                           verify: bool) -> None:
    golden = b"\x5a" * 4096
    (tmp_path / "g.raw").write_bytes(golden)
    with pytest.raises(ImageFileError) as info:
        addcow_ref.create("x.add-cow", size=1 << 20, image_file="g.raw", backing_file="g.raw",
                          backing_format="raw", verify=verify)
    assert info.value.rule_id == "IMG-IDENTITY"
    assert (tmp_path / "g.raw").read_bytes() == golden  # never grown to the disk size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.raw"]


def test_an_image_file_that_is_the_backing_file_through_a_hard_link_is_refused(
        tmp_path: Path) -> None:
    (tmp_path / "g.raw").write_bytes(b"\x5a" * 4096)
    os.link(tmp_path / "g.raw", tmp_path / "alias.raw")
    result = run("create", "--force", "--image-file", "alias.raw", "-b", "g.raw", "-F", "raw",
                 "x.add-cow", "1M")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "[IMG-IDENTITY]" in result.stderr
    assert (tmp_path / "g.raw").stat().st_size == 4096


def test_an_image_file_that_is_the_add_cow_file_is_refused(tmp_path: Path) -> None:
    addcow_ref.create("x.add-cow", size=1 << 20, image_file="x.raw")
    before = (tmp_path / "x.add-cow").read_bytes()
    with pytest.raises(ImageFileError) as info:
        addcow_ref.create("x.add-cow", size=1 << 20, image_file="x.add-cow")
    assert info.value.rule_id == "IMG-IDENTITY"
    assert (tmp_path / "x.add-cow").read_bytes() == before


def test_a_forced_create_cuts_a_longer_image_file_to_the_virtual_size(tmp_path: Path) -> None:
    """IMG-LENGTH: --force reuses the file, so create leaves it exactly virtual_size long."""
    (tmp_path / "data.img").write_bytes(b"\x5a" * (3 << 20))
    result = run("create", "--force", "--image-file", "data.img", "x.add-cow", "1M")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "data.img").stat().st_size == 1 << 20
    assert run("check", "x.add-cow").exit_code == 0


def test_a_failed_create_keeps_an_existing_empty_image_file_at_its_size(tmp_path: Path) -> None:
    (tmp_path / "x.raw").write_bytes(b"")
    assert run("create", "x.add-cow", "9223372036854775296").exit_code == 1
    assert [(p.name, p.stat().st_size) for p in tmp_path.iterdir()] == [("x.raw", 0)]


def test_no_file_is_created_through_a_dangling_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "made-by-create"
    target.parent.mkdir()
    (tmp_path / "x.raw").symlink_to(target)
    result = run("create", "--force", "x.add-cow", "1M")
    assert result.exit_code == 1
    assert "symbolic link" in result.stderr
    assert not target.exists()
    assert not (tmp_path / "x.add-cow").exists()


def test_a_link_at_the_image_file_name_is_refused_without_force(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_bytes(b"precious")
    (tmp_path / "x.raw").symlink_to(target)
    result = run("create", "x.add-cow", "1M")
    assert result.exit_code == 1
    assert "symbolic link" in result.stderr
    assert "--force" in result.stderr
    assert target.read_bytes() == b"precious"
    assert not (tmp_path / "x.add-cow").exists()


def test_an_image_file_with_data_is_refused_without_force(tmp_path: Path) -> None:
    (tmp_path / "data.img").write_bytes(b"\x5a" * 4096)
    result = run("create", "--image-file", "data.img", "x.add-cow", "1M")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "already exists and holds 4096 bytes" in result.stderr
    assert "--force" in result.stderr
    assert not (tmp_path / "x.add-cow").exists()
    assert (tmp_path / "data.img").read_bytes() == b"\x5a" * 4096
    forced = run("create", "--force", "--image-file", "data.img", "x.add-cow", "1M")
    assert forced.exit_code == 0, forced.stderr
    assert (tmp_path / "data.img").stat().st_size == 1 << 20


def test_an_empty_existing_image_file_is_used_as_before(tmp_path: Path) -> None:
    (tmp_path / "x.raw").write_bytes(b"")
    assert run("create", "x.add-cow", "1M").exit_code == 0
    assert (tmp_path / "x.raw").stat().st_size == 1 << 20


def test_a_qcow2_backing_given_as_raw_is_refused(tmp_path: Path) -> None:
    (tmp_path / "base.qcow2").write_bytes(b"QFI\xfb\x00\x00\x00\x03" + bytes(1 << 20))
    result = run("create", "-b", "base.qcow2", "-F", "raw", "x.add-cow")
    assert result.exit_code == 1
    assert "base.qcow2 starts with the qcow2 magic but -F raw was given" in result.stderr
    assert "--force" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.qcow2"]
    assert run("create", "--force", "-b", "base.qcow2", "-F", "raw", "x.add-cow").exit_code == 0


def test_an_add_cow_backing_given_as_raw_names_the_right_format(tmp_path: Path) -> None:
    addcow_ref.create(tmp_path / "base.add-cow", size=1 << 20, image_file="base.raw")
    result = run("create", "-b", "base.add-cow", "-F", "raw", "x.add-cow")
    assert result.exit_code == 1
    assert "starts with the add-cow magic but -F raw was given; pass -F add-cow" in result.stderr
    assert run("create", "-b", "base.add-cow", "-F", "add-cow", "x.add-cow").exit_code == 0


@pytest.mark.parametrize(("head", "fmt"), [
    (MAGIC, "add-cow"), (b"QFI\xfb", "qcow2"), (b"KDMV", "vmdk"),
    (b"# Disk DescriptorFile\n", "vmdk"), (b"vhdxfile", "vhdx"), (b"QED\x00", "qed"),
    (bytes(0x40) + b"\x7f\x10\xda\xbe", "vdi"), (b"\x00" * 512, None), (b"", None),
])
def test_known_magics(head: bytes, fmt: str | None) -> None:
    assert looks_like(head) == fmt
