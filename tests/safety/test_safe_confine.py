"""Checking an untrusted upload (spec/security.rst): ``--confine DIR`` keeps every name inside
DIR and opens nothing outside it, no message quotes a host file's bytes, and a file the checker
cannot open is never a reason to call an image conforming."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from addcow_conformance.checker.cli import main as check_main
from addcow_conformance.checker.context import CheckOptions, confine_root
from addcow_conformance.checker.engine import check_path

import addcow_ref
from addcow_ref.ops.rebase import set_backing_name

from .conftest import run

SIZE = 1 << 20
SECRET = (b"root:*:19000:0:99999:7:::\n" * 20)[:512]


@pytest.fixture
def upload(tmp_path: Path) -> tuple[Path, Path]:
    """``tmp_path/upload`` (the confinement directory) and a host file outside it."""
    d = tmp_path / "upload"
    d.mkdir()
    host = tmp_path / "host"
    host.mkdir()
    secret = host / "shadow"
    secret.write_bytes(SECRET)
    return d, secret


def _hostile(d: Path, *, backing: str, fmt: str = "add-cow") -> Path:
    """An upload whose header names ``backing`` (stored as given) as its backing file."""
    path = d / "disk.add-cow"
    addcow_ref.create(path, size=SIZE, image_file="disk.raw")
    set_backing_name(str(path), backing, fmt)
    return path


def _check_json(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code = check_main(["--output", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def _findings(document: dict[str, object]) -> list[dict[str, object]]:
    images = document["images"]
    assert isinstance(images, list)
    found = images[0]["findings"]
    assert isinstance(found, list)
    return found


def test_a_host_file_named_as_add_cow_backing_is_never_quoted(
        upload: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    d, secret = upload
    path = _hostile(d, backing=str(secret))
    code, doc = _check_json("--confine", str(d), str(path), capsys=capsys)
    assert code == 2
    rules = {(f["rule"], f["severity"]) for f in _findings(doc)}
    assert ("NAME-CONFINED", "error") in rules
    assert not any(r.startswith("BACK-") for r, _ in rules)  # nothing was looked at
    text = json.dumps(doc)
    assert "72 6f 6f 74" not in text
    assert "root:" not in text
    # Without --confine: a warning, and the magic mismatch says nothing of the bytes.
    code, doc = _check_json(str(path), capsys=capsys)
    assert ("NAME-CONFINED", "warning") in {(f["rule"], f["severity"]) for f in _findings(doc)}
    text = json.dumps(doc)
    assert "72 6f 6f 74" not in text
    assert "root:" not in text


def test_nothing_outside_the_confinement_is_looked_up(
        upload: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    d, secret = upload
    path = _hostile(d, backing=str(secret))
    touched: list[str] = []
    real_open, real_stat = os.open, os.stat

    def spy_open(p: object, *a: object, **k: object) -> int:
        touched.append(os.fsdecode(p))  # type: ignore[arg-type]
        return real_open(p, *a, **k)  # type: ignore[arg-type]

    def spy_stat(p: object, *a: object, **k: object) -> os.stat_result:
        touched.append(os.fsdecode(p) if isinstance(p, (str, bytes)) else str(p))
        return real_stat(p, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "stat", spy_stat)
    report = check_path(path, CheckOptions(confine=confine_root(d)))
    monkeypatch.undo()
    assert report.exit_code == 2
    assert not [p for p in touched if "host" in p], touched


@pytest.mark.parametrize("how", ["dotdot", "symlink", "absolute"])
def test_escaping_image_names_are_errors_under_confine(
        upload: tuple[Path, Path], how: str, capsys: pytest.CaptureFixture[str]) -> None:
    d, secret = upload
    name = {"dotdot": "../host/shadow", "symlink": "link.raw", "absolute": str(secret)}[how]
    if how == "symlink":
        (d / "link.raw").symlink_to(secret)
    path = d / "disk.add-cow"
    inner = d.parent / "build"
    inner.mkdir()
    placeholder = "p" * len(name)  # same length: the name is then replaced in place
    addcow_ref.create(inner / "disk.add-cow", size=len(SECRET), image_file=placeholder)
    data = (inner / "disk.add-cow").read_bytes()
    assert data.count(placeholder.encode()) == 1
    path.write_bytes(data.replace(placeholder.encode(), name.encode()))
    code, doc = _check_json("--confine", str(d), str(path), capsys=capsys)
    found = _findings(doc)
    assert code == 2
    assert [(f["rule"], f["severity"]) for f in found if f["rule"] == "NAME-CONFINED"] == [
        ("NAME-CONFINED", "error")]
    assert not any(str(f["rule"]).startswith("IMG-") for f in found)
    for argv in (["info"], ["map"], ["read", "--length", "16"]):
        result = run(*argv, "--confine", d, path)
        assert result.exit_code == 1, (argv, result.output)
        assert "NAME-CONFINED" in result.stderr
        assert "root:" not in result.output


def test_confined_names_still_work(upload: tuple[Path, Path],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    d, _ = upload
    (d / "base.raw").write_bytes(b"\x11" * SIZE)
    path = d / "disk.add-cow"
    addcow_ref.create(path, size=SIZE, image_file="disk.raw", backing_file="base.raw",
                      backing_format="raw")
    assert check_main(["--confine", str(d), str(path)]) == 0
    assert run("read", "--confine", d, "-P", "0x11", "--length", "4096", path).exit_code == 0
    outside = d.parent / "host"
    assert check_main(["--confine", str(outside), str(path)]) == 1  # the upload itself is out
    assert run("info", "--confine", outside, path).exit_code == 1


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory that the unprivileged user can reach (pytest's tmp_path is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="addcow-eacces-", dir="/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        for p in d.rglob("*"):
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(d)


def _as_nobody(argv: list[str]) -> subprocess.CompletedProcess[str]:
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to drop privileges")
    drop = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    probe = subprocess.run([*drop, argv[0], "--help"], capture_output=True, text=True,
                           timeout=60)
    if probe.returncode != 0:  # e.g. tox's private (0700) .tox directory holds the tools
        pytest.skip(f"nobody cannot run the installed tools here: {probe.stderr.strip()[:200]}")
    return subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           *argv], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("how", ["unreadable-file", "unsearchable-dir"])
def test_an_unopenable_backing_file_is_never_conforming(world_dir: Path, how: str) -> None:
    (world_dir / "priv").mkdir()
    (world_dir / "priv" / "base.raw").write_bytes(b"\x22" * SIZE)
    path = world_dir / "disk.add-cow"
    addcow_ref.create(path, size=SIZE, image_file="disk.raw", backing_file="priv/base.raw",
                      backing_format="raw")
    for p in (path, world_dir / "disk.raw"):
        p.chmod(0o666)
    if how == "unreadable-file":
        (world_dir / "priv" / "base.raw").chmod(0)
    else:
        (world_dir / "priv").chmod(0o700)
    checker = str(Path(sys.executable).parent / "addcow-check")
    done = _as_nobody([checker, str(path)])
    assert done.returncode in (1, 2), done.stdout + done.stderr
    assert "CONFORMING" not in done.stdout.replace("NOT CONFORMING", "")
    assert "BACK-EXISTS" in done.stdout + done.stderr
    reader = _as_nobody([str(Path(sys.executable).parent / "addcow"), "read", "--length", "16",
                         str(path)])
    assert reader.returncode == 1
