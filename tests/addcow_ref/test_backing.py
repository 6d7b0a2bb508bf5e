"""Backing files: relative names, declared formats (never probed), chains, loops, depth."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.format.constants import MAX_CHAIN_DEPTH
from addcow_ref.format.errors import BackingFileError
from addcow_ref.ops.info import image_info, open_for_info, render_info

from .helpers import make_image

CB = 12
SIZE = 4 << CB


def test_relative_names_resolve_against_the_image_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    path = make_image(sub, size=SIZE, cluster_bits=CB, backing=b"\x42" * SIZE)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # A decoy with the same name in the working directory must not be used.
    (elsewhere / "disk-base.raw").write_bytes(b"\x00" * SIZE)
    monkeypatch.chdir(elsewhere)
    with addcow_ref.open_image(os.path.relpath(path, elsewhere)) as img:
        assert img.read(0, 4) == b"\x42" * 4
        assert img.image_path == str(sub / "disk.raw")


def test_raw_backing_is_never_probed(tmp_path: Path) -> None:
    """A raw backing file that starts with an add-cow header is read as raw bytes."""
    inner = tmp_path / "inner"
    inner.mkdir()
    fake = make_image(inner, size=SIZE, cluster_bits=CB)
    fake_bytes = fake.read_bytes()[:SIZE].ljust(SIZE, b"\0")
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=fake_bytes)
    with addcow_ref.open_image(path) as img:
        assert img.read(0, SIZE) == fake_bytes
        assert img.backing is not None
        assert img.backing.format == "raw"


def chain(tmp_path: Path, n: int) -> list[Path]:
    """base.raw <- l1.addcow <- l2.addcow ... each layer writing its own cluster."""
    (tmp_path / "base.raw").write_bytes(b"\x00" * SIZE)
    paths = []
    below, fmt = "base.raw", "raw"
    for i in range(1, n + 1):
        p = tmp_path / f"l{i}.addcow"
        addcow_ref.create(p, size=SIZE, image_file=f"l{i}.raw", backing_file=below,
                          backing_format=fmt, cluster_bits=CB)
        paths.append(p)
        below, fmt = p.name, "add-cow"
    return paths


def test_chain_reads_and_map_depth(tmp_path: Path) -> None:
    l1, l2, l3 = chain(tmp_path, 3)
    with addcow_ref.open_image(l1, "r+") as img:
        img.write(0, b"1" * 4096)
    with addcow_ref.open_image(l2, "r+") as img:
        img.write(4096, b"2" * 4096)
    with addcow_ref.open_image(l3, "r+") as img:
        img.write(8192, b"3" * 100)
        assert img.read(0, 3 * 4096) == b"1" * 4096 + b"2" * 4096 + b"3" * 100 + bytes(3996)
        assert [(e.start, e.length, e.allocated, e.depth, e.data) for e in img.map()] == [
            (0, 4096, False, 2, True),
            (4096, 4096, False, 1, True),
            (8192, 4096, True, 0, True),
            (12288, 4096, False, 3, True),
        ]
        img.hydrate()
    assert (tmp_path / "l3.raw").read_bytes()[:8192] == b"1" * 4096 + b"2" * 4096


def test_backing_size_defaults_and_rounds_up(tmp_path: Path) -> None:
    (tmp_path / "b.raw").write_bytes(b"\x09" * 1000)
    addcow_ref.create(tmp_path / "t.addcow", image_file="t.raw", backing_file="b.raw",
                      backing_format="raw")
    with addcow_ref.open_image(tmp_path / "t.addcow") as img:
        assert img.virtual_size == 1024
        assert img.read(0, 1024) == b"\x09" * 1000 + bytes(24)  # READ-PAST-BACKING-EOF
        assert [(e.data, e.depth) for e in img.map()] == [(True, 1), (False, 1)]


def test_backing_format_is_required(tmp_path: Path) -> None:
    (tmp_path / "b.raw").write_bytes(b"\x09" * 1024)
    with pytest.raises(BackingFileError) as info:
        addcow_ref.create(tmp_path / "t.addcow", image_file="t.raw", backing_file="b.raw")
    assert info.value.rule_id == "READ-NO-PROBE"


def _set_backing(path: Path, target: str) -> None:
    """Point ``path`` at ``target`` (an add-cow file) by rewriting it."""
    with addcow_ref.open_image(path) as img:
        size, image_file = img.virtual_size, image_info(img).image_file
    addcow_ref.create(path, size=size, image_file=image_file, backing_file=target,
                      backing_format="add-cow", cluster_bits=CB)


def test_self_loop_is_refused(tmp_path: Path) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB)
    # create() refuses to take the size from itself only if it exists as add-cow; give a size.
    addcow_ref.create(path, size=SIZE, image_file="disk.raw", backing_file="disk.addcow",
                      backing_format="add-cow", cluster_bits=CB)
    with pytest.raises(BackingFileError) as info:
        addcow_ref.open_image(path)
    assert info.value.rule_id == "BACK-LOOP"


def test_two_file_loop_is_refused(tmp_path: Path) -> None:
    a = make_image(tmp_path, size=SIZE, cluster_bits=CB, name="a")
    b = make_image(tmp_path, size=SIZE, cluster_bits=CB, name="b")
    addcow_ref.create(b, size=SIZE, image_file="b.raw", backing_file="a.addcow",
                      backing_format="add-cow", cluster_bits=CB)
    addcow_ref.create(a, size=SIZE, image_file="a.raw", backing_file="b.addcow",
                      backing_format="add-cow", cluster_bits=CB)
    with pytest.raises(BackingFileError) as info:
        addcow_ref.open_image(a)
    assert info.value.rule_id == "BACK-LOOP"


def test_depth_limit(tmp_path: Path) -> None:
    paths = chain(tmp_path, MAX_CHAIN_DEPTH + 2)
    # paths[-2] has exactly MAX_CHAIN_DEPTH add-cow files below it: allowed.
    with addcow_ref.open_image(paths[-2]) as img:
        assert img.read(0, 10) == bytes(10)
    with pytest.raises(BackingFileError) as info:
        addcow_ref.open_image(paths[-1])
    assert info.value.rule_id == "BACK-DEPTH"
    # create() opens the chain to take the size from it, and refuses too.
    with pytest.raises(BackingFileError) as info:
        addcow_ref.create(tmp_path / "top.addcow", image_file="top.raw",
                          backing_file=paths[-1].name, backing_format="add-cow")
    assert info.value.rule_id == "BACK-DEPTH"


def test_missing_backing_is_refused_at_open(tmp_path: Path) -> None:
    """BACK-EXISTS: the whole chain is opened with the image, whatever the bitmap says (here
    cluster 0 is allocated, so a lazy reader could still read it); only ``addcow info``'s
    lenient open shows the header, and says why the image cannot be read."""
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=b"\x42" * SIZE)
    with addcow_ref.open_image(path, "r+") as img:
        img.write(0, b"x" * 4096)
    (tmp_path / "disk-base.raw").unlink()
    for mode in ("r", "r+"):
        with pytest.raises(BackingFileError) as info:
            addcow_ref.open_image(path, mode)
        assert info.value.rule_id == "BACK-EXISTS"
        assert info.value.file == str(tmp_path / "disk-base.raw")
    with open_for_info(path) as img:
        assert img.unreadable is not None
        assert "BACK-EXISTS" in img.unreadable
        record = image_info(img)
        assert record.allocated_clusters == 1
        text = render_info(record, size_text=str, unreadable=img.unreadable)
        assert text.splitlines()[-1].startswith("cannot be read: ")
        assert "disk-base.raw" in text.splitlines()[-1]
        assert img.read(0, 4096) == b"x" * 4096
        with pytest.raises(BackingFileError) as lazy:
            img.read(4096, 10)
        assert lazy.value.rule_id == "BACK-EXISTS"


def test_lenient_open_reads_a_whole_chain_and_refuses_changes_over_a_broken_one(
        tmp_path: Path) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=b"\x42" * SIZE)
    with open_for_info(path) as img:
        assert img.unreadable is None
        assert img.read(0, 4) == b"\x42" * 4
    (tmp_path / "disk-base.raw").unlink()
    before = path.read_bytes(), (tmp_path / "disk.raw").read_bytes()
    with addcow_ref.AddCowImage(path, "r+", lenient_backing=True) as img:  # rebase -u's open
        assert img.unreadable is not None
        for change in (lambda: img.write(0, b"x"), lambda: img.resize(2 * SIZE),
                       lambda: img.hydrate(), lambda: img.discard(0, 512),
                       lambda: img.write_zeroes(0, 512)):
            with pytest.raises(BackingFileError) as info:
                change()
            assert info.value.rule_id == "BACK-EXISTS"
    assert (path.read_bytes(), (tmp_path / "disk.raw").read_bytes()) == before


def test_all_allocated_does_not_need_the_backing_file(tmp_path: Path) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=b"\x42" * SIZE)
    with addcow_ref.open_image(path, "r+") as img:
        img.hydrate()
    (tmp_path / "disk-base.raw").unlink()
    with addcow_ref.open_image(path) as img:
        assert img.backing is None
        assert img.read(0, SIZE) == b"\x42" * SIZE
        assert img.map() == [addcow_ref.Extent(0, SIZE, True, 0, True)]


def test_invalid_add_cow_backing(tmp_path: Path) -> None:
    (tmp_path / "bogus.addcow").write_bytes(b"not an add-cow file at all" * 10)
    addcow_ref.create(tmp_path / "t.addcow", size=SIZE, image_file="t.raw",
                      backing_file="bogus.addcow", backing_format="add-cow")
    with pytest.raises(BackingFileError) as info:
        addcow_ref.open_image(tmp_path / "t.addcow")
    assert info.value.rule_id == "BACK-FORMAT"


def test_add_cow_backing_shorter_than_the_overlay(tmp_path: Path) -> None:
    lower = make_image(tmp_path, size=2 * 4096, cluster_bits=CB, backing=b"\x21" * 5000,
                       name="low")
    addcow_ref.create(tmp_path / "top.addcow", size=SIZE, image_file="top.raw",
                      backing_file=lower.name, backing_format="add-cow", cluster_bits=CB)
    with addcow_ref.open_image(tmp_path / "top.addcow") as img:
        assert img.read(0, SIZE) == b"\x21" * 5000 + bytes(SIZE - 5000)
        assert [(e.start, e.length, e.depth, e.data) for e in img.map()] == [
            (0, 5000, 2, True),          # the raw file below the add-cow backing file
            (5000, 8192 - 5000, 2, False),  # past that raw file's end
            (8192, SIZE - 8192, 1, False),  # past the add-cow backing file's end
        ]
