"""The repairs of ``addcow-check --repair`` on every broken vector, and their crash safety.

A vector is repairable when every rule it breaks is one a repair fixes (``repair.ALL_RULES``)
and it is a version 2 image; the manifest's ``violates`` lists say which. Each is copied, repaired
and checked again: no finding may remain and the guest data must be what the bitmap said before.
Every other broken vector must come out byte for byte as it went in.

The guest data is computed here without the library, from the bitmap (bit 1: the image file,
zeros past its end; bit 0: the raw backing file), so that the images the library refuses to open
before the repair (IMG-SIZE, HDR-RESERVED, NAME-AREA-ZERO) are compared too; after the repair the
library must read exactly those bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.checker.cli import main as checker_main
from addcow_conformance.checker.engine import check_path
from addcow_conformance.repair import (
    ALL_RULES,
    LEAK_RULES,
    exit_code,
    parse_level,
    repair_and_check,
    repair_image,
    summary_lines,
)

from addcow_ref.engine.image import open_image
from addcow_ref.format.errors import AddCowError
from addcow_ref.format.forge import read_header, set_field
from addcow_ref.format.header import HeaderV2

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"
MANIFEST: list[dict[str, Any]] = json.loads((VECTORS / "manifest.json").read_text())["vectors"]


def _directory(vector: dict[str, Any]) -> Path:
    for candidate in (VECTORS / vector["id"],
                      VECTORS / f"v{vector['spec'].split('.')[0]}" / vector["id"]):
        if candidate.is_dir():
            return Path(candidate)
    raise AssertionError(f"vector {vector['id']}: no directory")


def _is_v1(vector: dict[str, Any]) -> bool:
    return str(vector["id"]).startswith("legacy/")


BROKEN = [v for v in MANIFEST if v["violates"]]
REPAIRABLE = [v for v in BROKEN if set(v["violates"]) <= ALL_RULES and not _is_v1(v)]
LEAKS_ONLY = [v for v in REPAIRABLE if set(v["violates"]) <= LEAK_RULES]
UNREPAIRABLE = [v for v in BROKEN if v not in REPAIRABLE]


def _copy(vector: dict[str, Any], tmp_path: Path) -> Path:
    dest = tmp_path / "vector"
    shutil.copytree(_directory(vector), dest, symlinks=True)
    return dest / str(vector["entry"])


def _snapshot(directory: Path) -> dict[str, bytes]:
    out = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                out[str(path.relative_to(directory))] = path.read_bytes()
    return out


def _bitmap_guest(path: Path) -> str:
    """SHA-256 of the guest disk as the bitmap defines it, read without the library."""
    header = read_header(path)
    assert isinstance(header, HeaderV2)
    meta = path.read_bytes()
    size, cluster = int(header.virtual_size), header.cluster_size

    def name(offset: int, length: int) -> Path:
        return path.parent / os.fsdecode(meta[offset:offset + length])

    image = name(int(header.image_name_offset), int(header.image_name_length)).read_bytes()
    backing = b""
    if header.has_backing:
        assert header.backing_format_name == "raw"
        backing = name(int(header.backing_name_offset),
                       int(header.backing_name_length)).read_bytes()
    bitmap = meta[int(header.bitmap_offset):int(header.bitmap_offset) + header.bitmap_length]
    digest = hashlib.sha256()
    for i in range(header.cluster_count):
        start, end = i * cluster, min((i + 1) * cluster, size)
        source = image if bitmap[i >> 3] >> (i & 7) & 1 else backing
        digest.update(source[start:end].ljust(end - start, b"\0"))
    return digest.hexdigest()


def _library_guest(path: Path) -> str:
    with open_image(path) as img:
        return hashlib.sha256(img.read(0, img.virtual_size)).hexdigest()


def test_the_vectors_cover_every_repair() -> None:
    covered = {rule for v in REPAIRABLE for rule in v["violates"]}
    assert covered == ALL_RULES, ALL_RULES - covered
    assert len(REPAIRABLE) >= 15
    assert LEAKS_ONLY
    assert UNREPAIRABLE


@pytest.mark.parametrize("vector", REPAIRABLE, ids=[v["id"] for v in REPAIRABLE])
def test_repair_all_gives_a_conforming_image_with_the_same_guest_data(
        vector: dict[str, Any], tmp_path: Path) -> None:
    path = _copy(vector, tmp_path)
    before = _bitmap_guest(path)
    result, after = repair_and_check(str(path), "all")
    assert result.error is None
    assert after.findings == []
    assert exit_code(result, after) == 0
    assert {r.rule for r in result.repairs} == set(vector["violates"])
    assert result.left == []
    assert _bitmap_guest(path) == before
    assert _library_guest(path) == before
    # A second run finds nothing to do and changes nothing.
    again = _snapshot(path.parent)
    assert repair_image(str(path), "all").repairs == []
    assert _snapshot(path.parent) == again


@pytest.mark.parametrize("vector", REPAIRABLE, ids=[v["id"] for v in REPAIRABLE])
def test_library_reading_is_kept_where_the_library_could_read(vector: dict[str, Any],
                                                                tmp_path: Path) -> None:
    path = _copy(vector, tmp_path)
    try:
        before: str | None = _library_guest(path)
    except AddCowError:  # refused before the repair (reader duty refuse)
        before = None
    repair_image(str(path), "all")
    if before is None:
        assert _library_guest(path) == _bitmap_guest(path)
    elif "FEAT-ALL-ALLOCATED" in vector["violates"]:
        # Reader duty "either": the library skipped the bitmap (READ-BACKING-SKIP) and read the
        # image file; the repair keeps the bitmap's reading, which differs for this vector.
        assert _library_guest(path) == _bitmap_guest(path) != before
    else:
        assert _library_guest(path) == before


@pytest.mark.parametrize("vector", REPAIRABLE, ids=[v["id"] for v in REPAIRABLE])
def test_repair_leaks_changes_only_space(vector: dict[str, Any], tmp_path: Path) -> None:
    path = _copy(vector, tmp_path)
    old = _snapshot(path.parent)
    result, after = repair_and_check(str(path), "leaks")
    if set(vector["violates"]) <= LEAK_RULES:
        assert after.findings == []
        assert exit_code(result, after) == 0
        for name, data in _snapshot(path.parent).items():
            assert old[name].startswith(data), name  # only cut, never changed
    elif not LEAK_RULES.intersection(vector["violates"]):
        assert result.repairs == []
        assert _snapshot(path.parent) == old
        assert {u.rule for u in result.left} == set(vector["violates"])
        assert all("-r all" in u.reason for u in result.left)
        assert exit_code(result, after) == after.exit_code != 0


@pytest.mark.parametrize("vector", UNREPAIRABLE, ids=[v["id"] for v in UNREPAIRABLE])
def test_unrepairable_vectors_are_left_byte_identical(vector: dict[str, Any],
                                                      tmp_path: Path) -> None:
    path = _copy(vector, tmp_path)
    old = _snapshot(path.parent)
    verdict = check_path(str(path)).exit_code
    result, after = repair_and_check(str(path), "all")
    assert _snapshot(path.parent) == old
    assert result.repairs == []
    assert exit_code(result, after) == verdict
    if result.error is None:
        assert {u.rule for u in result.left} == set(after.rule_ids)


def test_version_1_is_refused_with_the_upgrade_hint(tmp_path: Path) -> None:
    vector = next(v for v in MANIFEST if v["id"] == "legacy/padding-bit-set")
    path = _copy(vector, tmp_path)
    result = repair_image(str(path), "all")
    assert result.repairs == []
    assert result.error is None
    assert [u.rule for u in result.left] == ["BMP-PADDING"]
    assert "addcow upgrade" in result.left[0].reason


def test_a_locked_image_is_not_repaired(tmp_path: Path) -> None:
    vector = next(v for v in MANIFEST if v["id"] == "bitmap/trailing-bytes")
    path = _copy(vector, tmp_path)
    old = _snapshot(path.parent)
    with open_image(path):  # a reader's shared lock
        result, after = repair_and_check(str(path), "all")
    assert result.error is not None
    assert "in use" in result.error
    assert "LOCK-CONFLICT" in result.error
    assert exit_code(result, after) == 1
    assert _snapshot(path.parent) == old


def test_summary_names_each_repair_and_rule(tmp_path: Path) -> None:
    vector = next(v for v in MANIFEST if v["id"] == "header/reserved1-nonzero")
    path = _copy(vector, tmp_path)
    lines = summary_lines(repair_image(str(path), "all"))
    assert lines == [f"{path}: 1 repair made: HDR-RESERVED (zeroed reserved1, 4 bytes at 0x3c)"]
    with pytest.raises(ValueError, match="unknown repair level"):
        parse_level("some")


# -- several repairs at once, and a fault at every step ------------------------------------


def _many_faults(tmp_path: Path) -> Path:
    """Four repairs in one run: padding bit, reserved field, trailing bytes, short image file."""
    vector = next(v for v in MANIFEST if v["id"] == "bitmap/padding-bit-set")
    path = _copy(vector, tmp_path)
    set_field(path, "reserved2", b"\x01")
    with open(path, "ab") as f:
        f.write(b"trailing")
    image = path.parent / "image.raw"
    os.truncate(image, image.stat().st_size - 512)
    return path


def test_several_repairs_in_one_run(tmp_path: Path) -> None:
    path = _many_faults(tmp_path)
    before = _bitmap_guest(path)
    assert sorted(check_path(str(path)).rule_ids) == ["BMP-PADDING", "BMP-TRAILING",
                                                      "HDR-RESERVED", "IMG-SIZE"]
    result, after = repair_and_check(str(path), "all")
    assert sorted(r.rule for r in result.repairs) == ["BMP-PADDING", "BMP-TRAILING",
                                                      "HDR-RESERVED", "IMG-SIZE"]
    assert after.findings == []
    assert _library_guest(path) == before


def _failing_at(n: int, calls: list[str], real: Callable[..., Any],
                name: str) -> Callable[..., Any]:
    def fake(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        if len(calls) == n:
            raise OSError(5, f"injected failure of {name}")
        return real(*args, **kwargs)
    return fake


def test_a_fault_at_any_write_or_sync_leaves_old_or_new_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = tmp_path / "reference"
    reference.mkdir()
    good = _many_faults(reference)
    repair_image(str(good), "all")
    repaired = _snapshot(good.parent)
    faulted: set[str] = set()
    for n in range(1, 64):
        case = tmp_path / f"case{n}"
        case.mkdir()
        path = _many_faults(case)
        original = _snapshot(path.parent)
        guest = _bitmap_guest(path)
        calls: list[str] = []
        with monkeypatch.context() as m:
            for name in ("fsync", "replace", "pwrite", "ftruncate"):
                m.setattr(os, name, _failing_at(n, calls, getattr(os, name), name))
            result = repair_image(str(path), "all")
        if len(calls) < n:  # every call succeeded: the fault points are exhausted
            assert result.error is None
            break
        faulted.add(calls[-1])
        assert result.error is not None, calls
        now = _snapshot(path.parent)
        assert set(now) == set(original), "a temporary file was left behind"
        for name, data in now.items():
            assert data in (original[name], repaired[name]), (n, calls[-1], name)
        if "replace" not in calls:  # a fault before the rename: nothing changed at all
            assert now == original
        assert _bitmap_guest(path) == guest
        # The next run finishes the job.
        assert repair_image(str(path), "all").error is None
        assert _snapshot(path.parent) == repaired
    assert faulted == {"fsync", "replace", "pwrite", "ftruncate"}


def test_addcow_check_repair_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vector = next(v for v in MANIFEST if v["id"] == "bitmap/trailing-bytes")
    path = _copy(vector, tmp_path)
    assert checker_main([str(path)]) == 3
    capsys.readouterr()
    assert checker_main(["--repair=leaks", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}: 1 repair made: BMP-TRAILING (truncated 16 byte(s)")
    assert out[-1].endswith("CONFORMING.")
    vector = next(v for v in MANIFEST if v["id"] == "header/magic-qcow2")
    path = _copy(vector, tmp_path / "second")
    assert checker_main(["--repair=all", "--output=json", str(path)]) == 2
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # the checker's own report, unchanged in shape
    assert document["images"][0]["findings"][0]["rule"] == "HDR-MAGIC"
    assert f"{path}: 0 repairs made" in captured.err
    assert checker_main(["--repair=some", str(path)]) == 64
