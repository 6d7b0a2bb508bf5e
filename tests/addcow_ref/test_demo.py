"""``addcow demo``: it succeeds, its result is the one a model predicts, and the commands it
prints really do what it did (replayed in a shell)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from addcow_ref import open_image
from addcow_ref.cli.demo import GREETING, GREETING_OFFSET, IMAGE_FILE, OVERLAY, WRITES
from addcow_ref.cli.example_disk import BASE_DISK_NAME, base_disk
from addcow_ref.cli.main import main
from addcow_ref.ops.info import image_info


def expected_guest() -> bytes:
    """The guest disk the demo's writes must leave, computed without the library."""
    model = bytearray(base_disk())
    model[GREETING_OFFSET : GREETING_OFFSET + len(GREETING)] = GREETING
    for offset, length, byte in WRITES:
        model[offset : offset + length] = bytes([byte]) * length
    return bytes(model)


def _bin_dir() -> str:
    return os.path.dirname(sys.executable)


def _addcow_argv() -> list[str]:
    script = shutil.which("addcow", path=_bin_dir())
    if script:
        return [script]
    return [sys.executable, "-c",
            "import sys; from addcow_ref.cli.main import main; sys.exit(main())"]


def test_demo_in_default_dir_matches_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    d = tmp_path / "demo-out"
    assert (d / BASE_DISK_NAME).read_bytes() == base_disk()
    want = expected_guest()
    raw = (d / IMAGE_FILE).read_bytes()
    assert hashlib.sha256(raw[: len(want)]).hexdigest() == hashlib.sha256(want).hexdigest()
    with open_image(d / OVERLAY) as img:
        info = image_info(img)
        assert img.read(0, img.virtual_size) == want
    assert info.all_allocated is True
    assert info.allocated_clusters == info.cluster_count == 16
    # The narrative names every step's command and ends on the verdict.
    for needle in ("$ addcow create -b base.raw -F raw", "$ addcow write --offset 0x2f000",
                   "$ addcow info disk.add-cow", "$ addcow map disk.add-cow",
                   "$ addcow-check disk.add-cow", "$ addcow hydrate -p disk.add-cow",
                   "$ sha256sum disk.raw", "OK: disk.raw equals the guest disk"):
        assert needle in out, needle
    assert "this text was written through the add-cow overlay" in out
    assert hashlib.sha256(want).hexdigest() in out
    assert out.index("[1/9]") < out.index("[9/9]")
    # The cwd is restored.
    assert Path.cwd() == tmp_path


def test_demo_refuses_a_non_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "busy"
    d.mkdir()
    (d / "precious.txt").write_text("keep me")
    assert main(["demo", str(d)]) == 1
    err = capsys.readouterr().err
    assert "not empty" in err
    assert "--force" in err
    assert err.count("\n") == 1
    assert sorted(p.name for p in d.iterdir()) == ["precious.txt"]
    assert main(["demo", "--force", str(d)]) == 0
    assert (d / "precious.txt").read_text() == "keep me"
    assert (d / IMAGE_FILE).read_bytes()[: len(base_disk())] == expected_guest()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["demo", str(a_file)]) == 64  # DIR names a file: a usage error


def test_installed_script_runs_the_demo_and_its_commands_replay(tmp_path: Path) -> None:
    """``addcow demo`` as the README runs it, then every ``$`` line it printed, run by a shell
    in a fresh directory, must build the same disk."""
    done = subprocess.run([*_addcow_argv(), "demo", "out"], cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "100%" in done.stderr  # hydrate's progress bar
    commands = [line[2:] for line in done.stdout.splitlines() if line.startswith("$ ")]
    assert len(commands) >= 12
    replay = tmp_path / "replay"
    replay.mkdir()
    env = dict(os.environ, PATH=_bin_dir() + os.pathsep + os.environ.get("PATH", ""))
    if shutil.which("addcow", path=env["PATH"]) is None:
        pytest.skip("the addcow console script is not installed next to this interpreter")
    for command in commands:
        step = subprocess.run(["bash", "-c", command], cwd=replay, env=env, capture_output=True,
                              text=True, check=False)
        assert step.returncode == 0, (command, step.stderr)
    raw = (replay / IMAGE_FILE).read_bytes()
    assert raw == (tmp_path / "out" / IMAGE_FILE).read_bytes()
    assert raw[: len(base_disk())] == expected_guest()


def test_path_hint_only_when_the_shell_would_miss_this_addcow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sysconfig

    from addcow_ref.cli.demo import path_hint

    scripts = sysconfig.get_path("scripts")
    monkeypatch.setenv("PATH", str(tmp_path))
    hint = path_hint()
    assert hint is not None
    assert scripts in hint
    if not os.path.exists(os.path.join(scripts, "addcow")):
        pytest.skip("addcow is not installed as a script of this interpreter")
    monkeypatch.setenv("PATH", scripts)
    assert path_hint() is None


def test_demo_fails_when_the_guest_disk_is_not_what_the_writes_make(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo checks its own claim, so a library that loses head/tail data cannot pass it."""
    import addcow_ref.cli.demo as demo

    wrong = bytearray(base_disk())
    wrong[0] ^= 1
    monkeypatch.setattr(demo, "expected_guest", lambda: bytes(wrong))
    assert main(["demo", str(tmp_path / "d")]) == 1
    assert "MISMATCH" in capsys.readouterr().err
