"""The ``addcow`` tool: qemu-img conventions, exact bytes in and out, and one-line errors.

Most tests drive the click group through ``CliRunner`` (the same ``AddCowGroup.main`` the console
script runs, so exit statuses are the real ones); a few run the installed script in a subprocess
to see what a user sees: no traceback, one line, the right status.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result

from addcow_ref.cli.create_cmd import default_image_name
from addcow_ref.cli.image_cmds import parse_resize
from addcow_ref.cli.main import EX_USAGE, cli, main
from addcow_ref.format.constants import MAGIC
from addcow_ref.format.errors import AddCowError
from addcow_ref.format.forge import forge_v1
from tests.click_runner import cli_runner

CLUSTER = 1 << 16


def run(*args: str | os.PathLike[str], input: bytes | None = None) -> Result:
    return cli_runner().invoke(cli, [os.fspath(a) for a in args], input=input,
                              catch_exceptions=False)


def assert_one_line_error(result: Result, *needles: str, code: int = 1) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    err = result.stderr
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.endswith("\n"), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.fixture
def base(tmp_path: Path) -> tuple[Path, bytes]:
    """A 512 KiB raw backing file with a distinct byte pattern per cluster and offset."""
    data = bytes((i * 7 + (i >> 16) * 13) & 0xFF for i in range(8 * CLUSTER))
    path = tmp_path / "base.raw"
    path.write_bytes(data)
    return path, data


@pytest.fixture
def overlay(tmp_path: Path, base: tuple[Path, bytes]) -> tuple[Path, bytearray]:
    """An add-cow overlay over ``base`` and the model of its guest disk."""
    path = tmp_path / "disk.add-cow"
    result = run("create", "-b", "base.raw", "-F", "raw", path)
    assert result.exit_code == 0, result.stderr
    return path, bytearray(base[1])


def guest(path: Path) -> bytes:
    result = run("read", path)
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def json_of(*args: str | os.PathLike[str]) -> object:
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- usage


def test_help_lists_every_subcommand() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in ("create", "info", "map", "read", "write", "resize", "hydrate", "upgrade",
                 "demo", "serve"):
        assert name in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["info"],
        ["info", "--output=yaml", "x"],
        ["create", "x.add-cow", "12Q"],
        ["create", "x.add-cow", "1.3K"],
        ["create", "-b", "base.raw", "x.add-cow"],  # no -F: add-cow never probes
        ["create", "-F", "raw", "x.add-cow", "1M"],
        ["create", "x.add-cow"],  # no size and no backing file
        ["create", "-o", "cluster_bitz=12", "x.add-cow", "1M"],
        ["create", "-o", "cluster_bits=twelve", "x.add-cow", "1M"],
        ["create", "-o", "cluster_size=3K", "x.add-cow", "1M"],
        ["write", "--pattern", "0x1ff", "--length", "1", "x"],
        ["write", "--length", "1", "x"],
        ["write", "--pattern", "1", "x"],
        ["write", "--pattern", "1", "--length", "1", "--from", "f", "x"],
        ["write", "a", "b"],
        ["read", "--offset", "-5", "x"],
    ],
)
def test_usage_errors_exit_64_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert_one_line_error(result, code=EX_USAGE)
    assert not (tmp_path / "x.add-cow").exists()


def test_serve_is_registered_and_follows_the_usage_convention() -> None:
    result = run("serve", "--help")
    assert result.exit_code == 0
    assert "NBD" in result.stdout
    assert_one_line_error(run("serve"), "IMAGE", code=EX_USAGE)


def test_no_subcommand_shows_help_as_a_usage_error() -> None:
    result = run()
    assert result.exit_code == EX_USAGE
    assert "Commands:" in result.stdout + result.stderr


def test_main_returns_the_status_instead_of_exiting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--help"]) == 0
    assert main(["nope"]) == EX_USAGE
    assert main(["info", str(tmp_path / "missing.add-cow")]) == 1
    err = capsys.readouterr().err
    assert "missing.add-cow" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- user errors


def test_missing_file_is_one_line_naming_it(tmp_path: Path) -> None:
    result = run("info", tmp_path / "nope.add-cow")
    assert_one_line_error(result, "nope.add-cow")


def test_foreign_file_names_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the bytes you are looking for" * 100)
    err = assert_one_line_error(run("info", path), "notes.txt", "HDR-MAGIC")
    assert "0x0" in err


def test_truncated_file_names_offset_and_rule(tmp_path: Path) -> None:
    path = tmp_path / "short.add-cow"
    path.write_bytes(MAGIC + b"\0\0\0\x02")
    assert_one_line_error(run("info", path), "short.add-cow", "HDR-COMPLETE")


def test_missing_backing_file_is_one_line(overlay: tuple[Path, bytearray], tmp_path: Path) -> None:
    path, _ = overlay
    (tmp_path / "base.raw").unlink()
    assert_one_line_error(run("read", "--length", "512", path), "base.raw")


def test_os_error_on_output_is_one_line(overlay: tuple[Path, bytearray]) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full to provoke ENOSPC")
    path, _ = overlay
    err = assert_one_line_error(run("read", "-o", "/dev/full", path), "/dev/full")
    assert "space" in err.lower()


def test_read_past_the_end_is_refused_with_the_offset(overlay: tuple[Path, bytearray]) -> None:
    path, model = overlay
    size = len(model)
    assert_one_line_error(run("read", "--offset", str(size - 10), "--length", "11", path),
                          "disk.add-cow", f"0x{size - 10:x}")
    assert_one_line_error(run("write", "--offset", str(size), "--pattern", "1", "--length", "1",
                              path), "disk.add-cow")
    assert guest(path) == bytes(model)


def test_installed_script_prints_no_traceback(tmp_path: Path) -> None:
    script = shutil.which("addcow", path=os.path.dirname(sys.executable)) or shutil.which("addcow")
    argv = [script] if script else [sys.executable, "-c",
                                    "import sys; from addcow_ref.cli.main import main; "
                                     "sys.exit(main())"]
    bad = tmp_path / "bad.add-cow"
    bad.write_bytes(bytes(4096))
    for args, code in ((["info", str(bad)], 1), (["info", str(tmp_path / "none")], 1),
                       (["create", "--bogus"], EX_USAGE)):
        done = subprocess.run(argv + args, capture_output=True, text=True, check=False)
        assert done.returncode == code, done
        assert "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1, done.stderr


# --------------------------------------------------------------------------- create / info


def test_create_without_backing_and_info_json(tmp_path: Path) -> None:
    path = tmp_path / "blank.add-cow"
    result = run("create", "-o", "cluster_bits=12", path, "1M")
    assert result.exit_code == 0, result.stderr
    assert "Formatting" in result.stdout
    assert "size=1048576" in result.stdout
    assert (tmp_path / "blank.raw").stat().st_size >= 1 << 20
    doc = json_of("info", "--output=json", path)
    assert isinstance(doc, dict)
    assert doc["virtual-size"] == 1 << 20
    assert doc["cluster-size"] == 4096
    assert doc["format"] == "add-cow"
    assert "backing-filename" not in doc  # as qemu-img: no backing file, no backing keys
    info = doc["format-specific"]["data"]
    assert info["virtual_size"] == 1 << 20
    assert info["cluster_bits"] == 12
    assert info["cluster_size"] == 4096
    assert info["image_file"] == "blank.raw"
    assert info["backing_file"] is None
    assert info["version"] == 2
    assert info["allocated_clusters"] == 0
    assert info["cluster_count"] == 256
    assert guest(path) == bytes(1 << 20)


def test_create_options_reach_the_header(tmp_path: Path) -> None:
    path = tmp_path / "opts.add-cow"
    result = run("create", "-o", "cluster_size=4K,bitmap_offset=8K", "--image-file", "data.img",
                 path, "64K")
    assert result.exit_code == 0, result.stderr
    raw = path.read_bytes()
    assert int.from_bytes(raw[48:56], "big") == 8192  # bitmap_offset
    assert int.from_bytes(raw[56:60], "big") == 12  # cluster_bits
    assert (tmp_path / "data.img").exists()
    info = json_of("info", "--output=json", path)
    assert isinstance(info, dict)
    info = info["format-specific"]["data"]
    assert info["bitmap_offset"] == 8192
    assert info["image_file"] == "data.img"


def test_create_help_option_lists_options(tmp_path: Path) -> None:
    result = run("create", "-o", "help", tmp_path / "x.add-cow")
    assert result.exit_code == 0
    assert "cluster_bits" in result.stdout
    assert "bitmap_offset" in result.stdout
    assert not (tmp_path / "x.add-cow").exists()


def test_create_refused_by_the_library_names_file_field_and_rule(tmp_path: Path) -> None:
    result = run("create", "-o", "cluster_bits=30", tmp_path / "x.add-cow", "1M")
    assert_one_line_error(result, "x.add-cow", "HDR-CLUSTER-BITS")
    result = run("create", "-o", "bitmap_offset=100", tmp_path / "x.add-cow", "1M")
    err = assert_one_line_error(result, "x.add-cow", "bitmap_offset", "HDR-BITMAP-OFFSET")
    assert "<" not in err
    result = run("create", tmp_path / "x.add-cow", "1000")
    assert_one_line_error(result, "x.add-cow", "HDR-VIRTUAL-SIZE-ALIGN")


def test_create_with_backing_defaults_to_its_size_and_info_human(
    overlay: tuple[Path, bytearray],
) -> None:
    path, model = overlay
    result = run("info", path)
    assert result.exit_code == 0
    out = result.stdout
    assert f"virtual size: 512 KiB ({len(model)} bytes)" in out
    assert "backing file: base.raw" in out
    assert "backing file format: raw" in out
    assert "image file: disk.raw" in out
    assert "allocated clusters: 0 of 8" in out
    assert guest(path) == bytes(model)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("disk.add-cow", "disk.raw"), ("/a/b/vm.addcow", "vm.raw"), ("img", "img.raw"),
     (".add-cow", ".add-cow.raw")],
)
def test_default_image_name(name: str, expected: str) -> None:
    assert default_image_name(name) == expected


# --------------------------------------------------------------------------- write / read / map


def test_writes_read_back_and_copy_on_write_keeps_backing_bytes(
    overlay: tuple[Path, bytearray], tmp_path: Path, base: tuple[Path, bytes]
) -> None:
    path, model = overlay
    # Sub-sector, inside cluster 1.
    result = run("write", "--offset", "0x10007", "--pattern", "0xab", "--length", "3", path)
    assert result.exit_code == 0, result.stderr
    assert "wrote 3 bytes" in result.stdout
    model[0x10007:0x1000A] = b"\xab" * 3
    # Straddling the cluster 3/4 boundary, from a file.
    payload = bytes(range(256)) * 40
    src = tmp_path / "payload.bin"
    src.write_bytes(payload)
    start = 4 * CLUSTER - 5000
    assert run("write", "--offset", str(start), "--from", src, path).exit_code == 0
    model[start : start + len(payload)] = payload
    # From stdin, with --length capping it.
    assert run("write", "--offset", "6K", "--length", "100", "-", path,
               input=b"S" * 500).exit_code == 0
    model[6144:6244] = b"S" * 100
    assert guest(path) == bytes(model)
    # Ranges and files.
    out = tmp_path / "out.bin"
    result = run("read", "--offset", "0x10000", "--length", "64K", "-o", out, path)
    assert result.exit_code == 0
    assert result.stdout_bytes == b""
    assert out.read_bytes() == bytes(model[0x10000:0x20000])
    # The backing file is never written.
    assert base[0].read_bytes() == base[1]
    info = json_of("info", "--output=json", path)
    assert isinstance(info, dict)
    info = info["format-specific"]["data"]
    assert info["allocated_clusters"] == 4  # clusters 0, 1, 3, 4


def test_map_json_has_qemu_img_shape(overlay: tuple[Path, bytearray]) -> None:
    path, model = overlay
    for offset, length in ((CLUSTER + 100, 10), (3 * CLUSTER - 1, 2)):
        assert run("write", "--offset", str(offset), "--pattern", "1", "--length", str(length),
                   path).exit_code == 0
    entries = json_of("map", "--output=json", path)
    assert isinstance(entries, list)
    pos = 0
    allocated_clusters = set()
    for e in entries:
        assert {"start", "length", "depth", "present", "zero", "data", "allocated"} <= set(e)
        assert e["start"] == pos
        assert e["length"] > 0
        pos += e["length"]
        if e["allocated"]:
            assert e["depth"] == 0
            assert e["data"]
            assert e["present"]
            assert not e["zero"]
            assert e["offset"] == e["start"]
            assert e["start"] % CLUSTER == 0
            assert e["length"] % CLUSTER == 0
            allocated_clusters |= set(range(e["start"] // CLUSTER,
                                            (e["start"] + e["length"]) // CLUSTER))
        else:
            assert e["depth"] == 1
            assert e["present"]
            assert e["data"]
    assert pos == len(model)
    assert allocated_clusters == {1, 2, 3}
    # Adjacent extents of the same kind are merged.
    assert all(a["allocated"] != b["allocated"] for a, b in itertools.pairwise(entries))
    human = run("map", path)
    assert human.exit_code == 0
    assert "image file disk.raw" in human.stdout
    assert "backing file base.raw" in human.stdout


def test_map_of_image_without_backing_reports_zeros(tmp_path: Path) -> None:
    path = tmp_path / "z.add-cow"
    assert run("create", path, "256K").exit_code == 0
    assert run("write", "--pattern", "9", "--length", "1", path).exit_code == 0
    entries = json_of("map", "--output=json", path)
    assert isinstance(entries, list)
    assert entries[0]["allocated"]
    assert entries[0]["length"] == CLUSTER
    tail = entries[-1]
    assert not tail["allocated"]
    assert not tail["present"]
    assert tail["zero"]
    assert not tail["data"]
    assert "offset" not in tail


def test_map_matches_qemu_img_map_of_the_raw_backing(base: tuple[Path, bytes],
                                                     overlay: tuple[Path, bytearray]) -> None:
    """Unwritten areas map to the backing file at the same offsets qemu-img reports for it."""
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        if os.environ.get("ADDCOW_REQUIRE_TOOLS") == "1":
            pytest.fail("qemu-img is required (ADDCOW_REQUIRE_TOOLS=1)")
        pytest.skip("qemu-img not installed (apt-get install qemu-utils)")
    done = subprocess.run([qemu_img, "map", "--output=json", "-f", "raw", str(base[0])],
                          capture_output=True, text=True, check=True)
    qemu = json.loads(done.stdout)
    ours = json_of("map", "--output=json", overlay[0])
    assert isinstance(ours, list)
    assert {"start", "length", "depth", "present", "zero", "data", "offset"} <= (
        set(qemu[0]) & set(ours[0]))
    # qemu-img sees the whole backing file as one data extent at depth 0 of itself; through the
    # overlay it is one level deeper, at the same offsets.
    assert [(e["start"], e["length"], e["offset"]) for e in qemu] == \
           [(e["start"], e["length"], e["offset"]) for e in ours]
    assert [e["depth"] + 1 for e in qemu] == [e["depth"] for e in ours]


# --------------------------------------------------------------------------- resize


def test_resize_grow_and_shrink(overlay: tuple[Path, bytearray]) -> None:
    path, model = overlay
    result = run("resize", path, "+64K")
    assert result.exit_code == 0, result.stderr
    model += bytes(CLUSTER)  # grown clusters are allocated zeros, never backing data
    assert guest(path) == bytes(model)
    assert_one_line_error(run("resize", path, "-128K"), "--shrink", code=EX_USAGE)
    assert guest(path) == bytes(model)
    assert run("resize", "--shrink", path, "-128K").exit_code == 0
    del model[-2 * CLUSTER :]
    assert guest(path) == bytes(model)
    assert run("resize", path, "1M").exit_code == 0
    model += bytes((1 << 20) - len(model))
    assert guest(path) == bytes(model)
    assert_one_line_error(run("resize", "--shrink", path, "-2M"), "disk.add-cow")
    assert_one_line_error(run("resize", path, "lots"), code=EX_USAGE)


def test_parse_resize() -> None:
    assert parse_resize("+1K", 512) == 1536
    assert parse_resize("-512", 1024) == 512
    assert parse_resize("2M", 7) == 2 << 20
    with pytest.raises(ValueError, match="size"):
        parse_resize("+", 1)


# --------------------------------------------------------------------------- hydrate


def test_hydrate_with_progress_makes_the_raw_file_standalone(
    overlay: tuple[Path, bytearray], tmp_path: Path
) -> None:
    path, model = overlay
    assert run("write", "--offset", "100K", "--pattern", "0xee", "--length", "1K",
               path).exit_code == 0
    model[100 * 1024 : 101 * 1024] = b"\xee" * 1024
    result = run("hydrate", "-p", path)
    assert result.exit_code == 0, result.stderr
    assert "100%" in result.stderr  # the tqdm bar ran to completion on stderr
    assert "hydrated" in result.stdout
    raw = (tmp_path / "disk.raw").read_bytes()[: len(model)]
    assert hashlib.sha256(raw).digest() == hashlib.sha256(model).digest()
    info = json_of("info", "--output=json", path)
    assert isinstance(info, dict)
    info = info["format-specific"]["data"]
    assert info["allocated_clusters"] == info["cluster_count"] == 8
    assert "all_allocated" in run("info", path).stdout
    # The backing file is no longer needed.
    (tmp_path / "base.raw").unlink()
    assert guest(path) == bytes(model)


# --------------------------------------------------------------------------- upgrade


def _v1_image(tmp_path: Path, base: tuple[Path, bytes]) -> tuple[Path, bytes]:
    """A v1 (2012 patch) overlay over ``base`` with cluster 2 allocated."""
    data = bytearray(base[1])
    data[2 * CLUSTER : 3 * CLUSTER] = b"\x77" * CLUSTER
    (tmp_path / "v1.raw").write_bytes(bytes(data))
    header = forge_v1(backing_file=b"base.raw", image_file=b"v1.raw").build()
    path = tmp_path / "v1.add-cow"
    path.write_bytes(header + bytes([0b100]))
    return path, bytes(data)


def test_upgrade_v1_to_v2(tmp_path: Path, base: tuple[Path, bytes]) -> None:
    path, data = _v1_image(tmp_path, base)
    info = json_of("info", "--output=json", path)
    assert isinstance(info, dict)
    info = info["format-specific"]["data"]
    assert info["version"] == 1
    human = run("info", path).stdout
    assert "version: 1" in human
    assert "features" not in human
    # v1 images are read-only.
    assert_one_line_error(run("write", "--pattern", "1", "--length", "1", path), "v1.add-cow")
    result = run("upgrade", path)
    assert result.exit_code == 0, result.stderr
    assert "version 2" in result.stdout
    info = json_of("info", "--output=json", path)
    assert isinstance(info, dict)
    info = info["format-specific"]["data"]
    assert info["version"] == 2
    assert info["allocated_clusters"] == 1
    assert guest(path) == data
    again = run("upgrade", path)
    assert again.exit_code == 0
    assert "already" in again.stdout
    assert run("write", "--pattern", "1", "--length", "1", path).exit_code == 0


def test_upgrade_of_a_foreign_file_fails_and_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / "junk.add-cow"
    path.write_bytes(b"\x01" * 3000)
    assert_one_line_error(run("upgrade", path), "junk.add-cow")
    assert path.read_bytes() == b"\x01" * 3000


# --------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("exc", "code", "needles"),
    [
        (OSError(5, "Input/output error"), 1, ["vm.add-cow", "Input/output error"]),
        (PermissionError(13, "Permission denied", "/srv/vm.raw"), 1,
         ["/srv/vm.raw", "Permission denied"]),
        (AddCowError("bitmap byte is odd", offset=0x1000, rule_id="BMP-PADDING"), 1,
         ["vm.add-cow: byte 0x1000", "[BMP-PADDING]"]),
    ],
)
def test_failures_inside_the_library_become_one_line_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, code: int, needles: list[str]
) -> None:
    import addcow_ref

    def boom(path: object, mode: str = "r", **options: object) -> None:
        raise exc

    monkeypatch.setattr(addcow_ref, "open_image", boom)
    err = assert_one_line_error(run("info", "vm.add-cow"), *needles, code=code)
    assert err.startswith("addcow: ")


def test_a_bug_is_not_disguised_as_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import addcow_ref

    def bug(path: object, mode: str = "r", **options: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(addcow_ref, "open_image", bug)
    with pytest.raises(ZeroDivisionError):
        run("info", "vm.add-cow")


def test_interrupt_exits_130_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import addcow_ref

    def interrupted(path: object, mode: str = "r", **options: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(addcow_ref, "open_image", interrupted)
    result = run("hydrate", "-p", "vm.add-cow")
    assert result.exit_code == 130
    # click ends the terminal's "^C" line first, then our one line.
    assert result.stderr.lstrip("\n") == "addcow: interrupted\n"


# --------------------------------------------------------------------------- streamed map


@pytest.mark.parametrize("window", [1, 2, 3, 1 << 19], ids=lambda w: f"window-{w}")
def test_map_is_streamed_in_windows_yet_equals_the_whole_map(
        overlay: tuple[Path, bytearray], monkeypatch: pytest.MonkeyPatch, window: int) -> None:
    """Extents that span window boundaries come out merged, exactly as one map() call gives
    them, in both output forms."""
    import addcow_ref
    from addcow_ref.engine import extents as extents_module
    from addcow_ref.ops import mapping

    path, _ = overlay
    for offset, length in [(0, 3 * CLUSTER), (4 * CLUSTER + 100, 10), (6 * CLUSTER, 2 * CLUSTER)]:
        assert run("write", "--offset", str(offset), "--pattern", "0x11", "--length",
                   str(length), path).exit_code == 0
    with addcow_ref.open_image(path) as img:
        expected = mapping.map_entries(img._map_window(0, img.virtual_size))
        names = ["disk.raw", "base.raw"]
    monkeypatch.setattr(extents_module, "MAP_WINDOW_CLUSTERS", window)
    assert json_of("map", "--output=json", path) == expected
    human = run("map", path)
    assert human.exit_code == 0, human.stderr
    assert human.stdout.rstrip("\n") == mapping.render_map(expected, names)
    assert [e["allocated"] for e in expected] == [True, False, True, False, True]
