"""qemu-img's conventions in ``addcow``: hole-aware ``map`` (JSON and human), ``info
--output=json`` with qemu-img's keys, ``-f add-cow`` and ``-q`` on the in-place verbs, ``create -o
help`` without a file, and every verb listed by the lazily loaded command group."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

import addcow_ref
from addcow_ref.cli.main import COMMANDS, EX_USAGE, cli
from addcow_ref.format.forge import forge_v1
from addcow_ref.ops.holes import LayerFiles, split_extents
from addcow_ref.ops.mapping import map_entries
from tests.click_runner import cli_runner

C = 1 << 16
MiB = 1 << 20


def run(*args: str | os.PathLike[str]) -> Result:
    return cli_runner().invoke(cli, [os.fspath(a) for a in args], catch_exceptions=False)


def json_of(*args: str | os.PathLike[str]) -> Any:
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def holey(tmp_path: Path) -> Path:
    """1 MiB disk over a 768 KiB sparse base with data in [256 KiB, 384 KiB); cluster 0 written,
    clusters 1-2 allocated but punched (holes of the image file)."""
    with (tmp_path / "base.raw").open("wb") as f:
        f.truncate(768 << 10)
        f.seek(256 << 10)
        f.write(b"\x11" * (128 << 10))
    path = tmp_path / "disk.add-cow"
    addcow_ref.create(str(path), size=MiB, image_file="disk.raw", backing_file="base.raw",
                      backing_format="raw")
    with addcow_ref.open_image(str(path), "r+") as img:
        img.write(0, b"\x22" * C)
        img.write_zeroes(C, 2 * C, punch=True)
    return path


def _fs_keeps_holes(path: Path) -> bool:
    return os.stat(path).st_blocks * 512 < 768 << 10


def test_map_json_reports_holes_as_zero_without_data(holey: Path) -> None:
    if not _fs_keeps_holes(holey.parent / "base.raw"):
        pytest.skip("this file system does not keep holes")
    got = [(e["start"], e["length"], e["depth"], e["present"], e["zero"], e["data"],
            e["allocated"]) for e in json_of("map", "--output=json", holey)]
    assert got == [
        (0, C, 0, True, False, True, True),
        (C, 2 * C, 0, True, True, False, True),             # punched, still allocated
        (3 * C, C, 1, True, True, False, False),            # a hole of the backing file
        (4 * C, 2 * C, 1, True, False, True, False),        # backing data
        (6 * C, 6 * C, 1, True, True, False, False),        # a hole again
        (12 * C, 4 * C, 1, False, True, False, False),      # past the backing file's end
    ]
    # Present ranges carry qemu-img's "offset" (1:1 in their layer's file); absent ones none.
    for e in json_of("map", "--output=json", holey):
        assert ("offset" in e) is e["present"]
        assert e.get("offset", e["start"]) == e["start"]


def test_map_human_names_the_holes(holey: Path) -> None:
    if not _fs_keeps_holes(holey.parent / "base.raw"):
        pytest.skip("this file system does not keep holes")
    lines = run("map", holey).stdout.splitlines()
    assert lines[1].endswith("image file disk.raw")
    assert lines[2].endswith("image file disk.raw (a hole: zeros)")
    assert lines[3].endswith("backing file base.raw (a hole: zeros)")
    assert lines[4].endswith("backing file base.raw")
    assert lines[-1].endswith("zeros (no layer holds data)")


def test_split_spans_cover_the_map_exactly(holey: Path) -> None:
    """The hole-aware spans tile the same range as the library's extents and never call a
    range data that the library calls zeros."""
    with addcow_ref.open_image(str(holey)) as img, LayerFiles(img) as files:
        extents = img.map()
        spans = list(split_extents(extents, files.files))
        assert len(files.files) == 2  # the image file and the raw backing file
    assert spans[0].start == 0
    assert sum(s.length for s in spans) == MiB
    for a, b in itertools.pairwise(spans):
        assert a.start + a.length == b.start
    for s in spans:
        covering = [e for e in extents if e.start <= s.start < e.start + e.length]
        assert covering
        assert (covering[0].depth, covering[0].allocated) == (s.depth, s.allocated)
        assert not s.data or covering[0].data
    # Library extents alone (no split): every present range is data.
    assert all(e["data"] for e in map_entries(extents) if e["present"])


def test_info_json_has_qemu_img_keys(holey: Path) -> None:
    doc = json_of("info", "--output=json", holey)
    assert doc["format"] == "add-cow"
    assert doc["filename"] == str(holey)
    assert doc["virtual-size"] == MiB
    assert doc["cluster-size"] == C
    assert doc["backing-filename"] == "base.raw"
    assert doc["full-backing-filename"] == str(holey.parent / "base.raw")
    assert doc["backing-filename-format"] == "raw"
    usage = sum(os.stat(p).st_blocks * 512 for p in (holey, holey.parent / "disk.raw"))
    assert doc["actual-size"] == usage
    assert doc["actual-size"] < MiB  # real usage, not the apparent size
    spec = doc["format-specific"]
    assert spec["type"] == "add-cow"
    assert spec["data"]["allocated_clusters"] == 3
    assert spec["data"]["image_file"] == "disk.raw"
    assert "filename" not in spec["data"]
    assert not any("_" in key for key in doc)  # qemu-img spells its keys with hyphens


def test_info_backing_chain_json_is_a_list_of_the_same_objects(holey: Path) -> None:
    levels = json_of("info", "--backing-chain", "--output=json", holey)
    assert levels[0] == json_of("info", "--output=json", holey)
    base = holey.parent / "base.raw"
    assert levels[1] == {"filename": str(base), "format": "raw", "virtual-size": 768 << 10,
                         "actual-size": os.stat(base).st_blocks * 512}


@pytest.mark.parametrize("verb", ["resize", "hydrate"])
def test_in_place_verbs_take_f_and_q(holey: Path, verb: str) -> None:
    with addcow_ref.open_image(str(holey)) as img:
        before = img.read(0, MiB)
    extra = ["2M"] if verb == "resize" else []
    result = run(verb, "-f", "add-cow", "-q", holey, *extra)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    with addcow_ref.open_image(str(holey)) as img:
        assert img.read(0, MiB) == before
        if verb == "hydrate":
            assert img.all_allocated
        else:
            assert img.virtual_size == 2 * MiB
    loud = run(verb, holey, *(["+1M"] if verb == "resize" else []))
    assert loud.exit_code == 0
    assert loud.stdout
    assert run(verb, "-f", "qcow2", holey, *extra).exit_code == EX_USAGE


def test_upgrade_takes_f_and_q(tmp_path: Path) -> None:
    (tmp_path / "v1.raw").write_bytes(bytes(C))
    path = tmp_path / "v1.add-cow"
    path.write_bytes(forge_v1(image_file=b"v1.raw").build() + b"\0")
    result = run("upgrade", "-f", "add-cow", "-q", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    with addcow_ref.open_image(str(path)) as img:
        assert img.descriptor.version == 2
    again = run("upgrade", "-q", path)
    assert (again.exit_code, again.stdout) == (0, "")
    assert "already version 2" in run("upgrade", path).stdout


def test_create_o_help_needs_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("create", "-o", "help")
    assert result.exit_code == 0, result.stderr
    assert "cluster_bits" in result.stdout
    assert list(tmp_path.iterdir()) == []
    missing = run("create")
    assert missing.exit_code == EX_USAGE
    assert "Missing argument 'FILE'" in missing.stderr


def test_every_verb_is_listed_for_the_reference() -> None:
    """sphinx-click and ``--help`` list commands through the group: the lazy map exposes each."""
    import click

    ctx = click.Context(cli)
    listed = cli.list_commands(ctx)
    for verb in ("convert", "commit", "rebase", "compare", "measure", "check", "inspect",
                 "set-field"):
        assert verb in listed
        command = cli.get_command(ctx, verb)
        assert command is not None
        assert command.name == verb
    assert set(COMMANDS) <= set(listed)
