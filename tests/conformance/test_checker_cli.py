"""``addcow-check`` as users and scripts see it: exit statuses, output formats, the behavioural
contract (never writes, ``-q`` is silent, never blocks or crashes on odd files)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from addcow_conformance.checker.cli import cli, main

from tests.click_runner import cli_runner

from .images import pristine_v1, pristine_v2, set_field


def schema() -> dict[str, Any]:
    schemas = resources.files("addcow_conformance").joinpath("schemas")
    text = schemas.joinpath("check-report.schema.json").read_text(
        encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def validate(document: object) -> None:
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    validator.validate(document)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return pristine_v2(tmp_path / "good").addcow


@pytest.fixture
def warned(tmp_path: Path) -> Path:
    s = pristine_v2(tmp_path / "warned")
    set_field(s.addcow, "compatible_features", 2)
    return s.addcow


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    s = pristine_v2(tmp_path / "bad")
    set_field(s.addcow, "reserved1", b"\0\0\0\x01")
    set_field(s.addcow, "reserved2", b"\x01" + bytes(15))
    return s.addcow


def run(args: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capfd.readouterr()
    return code, out, err


def test_conforming_image_exits_0_with_a_summary(good: Path,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([str(good)], capfd)
    assert code == 0
    assert out.splitlines() == [out.strip()]
    assert out.startswith(f"{good}: 0 errors, 0 warnings; ")
    assert out.rstrip().endswith("CONFORMING.")
    assert err == ""


def test_errors_exit_2_one_line_per_finding(bad: Path,
                                            capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([str(bad)], capfd)
    assert code == 2
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{bad}:0x003c error   HDR-RESERVED")
    assert "[reserved1]" in lines[0]
    assert "#rule-hdr-reserved" in lines[0]
    assert lines[-1].endswith("NOT CONFORMING.")
    assert "2 errors, 0 warnings" in lines[-1]


def test_warnings_exit_3_or_2_with_fail_on_warning(
        warned: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert run([str(warned)], capfd)[0] == 3
    assert run(["--fail-on=warning", str(warned)], capfd)[0] == 2


@pytest.mark.parametrize("args", [[], ["--bogus", "x"], ["--output=xml", "x"],
                                  ["--jobs", "0", "x"], ["--max-per-rule", "-1", "x"]],
                         ids=["no-image", "unknown-option", "bad-choice", "bad-jobs",
                              "bad-max"])
def test_usage_errors_exit_64(args: list[str], capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(args, capfd)
    assert code == 64
    assert "Usage:" in err
    assert out == ""


def test_usage_errors_exit_64_through_click_standalone_too() -> None:
    result = cli_runner().invoke(cli, ["--output=xml", "x"])
    assert result.exit_code == 64


def test_help_documents_the_exit_statuses(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capfd)
    assert code == 0
    for needle in ("0   conforming", "1   could not check", "2   checked", "3   checked",
                   "64  usage error", "1 > 2 > 3 > 0"):
        assert needle in out


@pytest.mark.parametrize(("which", "expected"), [
    (("good", "warned"), 3), (("warned", "bad", "good"), 2), (("bad", "missing", "good"), 1),
    (("good", "good"), 0)])
def test_worst_status_wins(which: tuple[str, ...], expected: int, good: Path, warned: Path,
                           bad: Path, tmp_path: Path,
                           capfd: pytest.CaptureFixture[str]) -> None:
    paths = {"good": good, "warned": warned, "bad": bad, "missing": tmp_path / "nope"}
    assert run([str(paths[w]) for w in which], capfd)[0] == expected


def test_quiet_prints_zero_bytes(bad: Path, tmp_path: Path,
                                 capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["-q", str(bad), str(tmp_path)], capfd)
    assert code == 1
    assert out == ""
    assert err == ""


def test_json_output_validates_and_counts(good: Path, warned: Path, bad: Path, tmp_path: Path,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--output=json", str(good), str(warned), str(bad), str(tmp_path)],
                       capfd)
    doc = json.loads(out)
    validate(doc)
    assert code == 1
    assert doc["exit_code"] == 1
    assert [i["status"] for i in doc["images"]] == [
        "conforming", "warnings", "nonconforming", "not-checked"]
    assert [i["exit_code"] for i in doc["images"]] == [0, 3, 2, 1]
    assert doc["summary"] == {"errors": 2, "warnings": 1, "infos": 0, "images": 4,
                              "not_checked": 1}
    assert doc["images"][0]["facts"]["allocated_clusters"] == 5
    assert doc["images"][0]["facts"]["cluster_size"] == 65536
    assert "is a directory" in doc["images"][3]["error"]


def test_json_schema_rejects_an_extra_property(good: Path,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(["--output=json", str(good)], capfd)
    doc = json.loads(out)
    doc["images"][0]["surprise"] = True
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_report_json_is_written_in_addition_to_human_output(
        bad: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.json"
    code, out, _ = run(["--report-json", str(target), str(bad)], capfd)
    assert code == 2
    assert "NOT CONFORMING" in out
    doc = json.loads(target.read_text())
    validate(doc)
    assert [f["rule"] for f in doc["images"][0]["findings"]] == ["HDR-RESERVED"] * 2


def test_max_per_rule_caps_human_output_only(bad: Path, tmp_path: Path,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "r.json"
    _, out, _ = run(["--max-per-rule", "1", "--report-json", str(target), str(bad)], capfd)
    lines = out.splitlines()
    assert sum(" error   HDR-RESERVED" in line for line in lines) == 1
    assert f"{bad}: ... and 1 more HDR-RESERVED finding(s)" in lines
    assert len(json.loads(target.read_text())["images"][0]["findings"]) == 2


def test_no_follow_is_said_in_the_summary(good: Path,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    (good.parent / "image.raw").unlink()
    code, out, _ = run(["--no-follow", str(good)], capfd)
    assert code == 0
    assert "not applicable (--no-follow)" in out


def test_jobs_gives_the_same_reports_in_the_same_order(
        good: Path, warned: Path, bad: Path, capfd: pytest.CaptureFixture[str]) -> None:
    args = ["--output=json", str(bad), str(good), str(warned)]
    _, serial, _ = run(args, capfd)
    code, parallel, _ = run(["--jobs", "2", *args], capfd)
    assert code == 2
    assert json.loads(parallel) == json.loads(serial)


def test_progress_goes_to_stderr(good: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["-p", str(good)], capfd)
    assert code == 0
    assert "bitmap" in err
    assert "CONFORMING" in out


def _digest(paths: list[Path]) -> dict[str, tuple[str, int]]:
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in paths}


def test_checker_never_writes_to_its_inputs(tmp_path: Path,
                                            capfd: pytest.CaptureFixture[str]) -> None:
    s2 = pristine_v2(tmp_path / "v2")
    s1 = pristine_v1(tmp_path / "v1")
    files = s2.files() + s1.files()
    before = _digest(files)
    run(["--output=json", "-p", str(s2.addcow), str(s1.addcow)], capfd)
    assert _digest(files) == before


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "symlink-loop", "unreadable"])
def test_unusable_paths_exit_1_with_a_message(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "x.add-cow"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink-loop":
        path.symlink_to("y.add-cow")
        (tmp_path / "y.add-cow").symlink_to("x.add-cow")
    elif kind == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads files whatever their mode")
        pristine_v2(tmp_path, stem="x")
        path.chmod(0)
    # A subprocess with a timeout: a checker that blocked opening the FIFO would hang here.
    proc = subprocess.run([sys.executable, "-m", "addcow_conformance.checker.cli", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert str(path) in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("size", [0, 16, 127])
def test_short_files_are_nonconforming(size: int, tmp_path: Path,
                                       capfd: pytest.CaptureFixture[str]) -> None:
    s = pristine_v2(tmp_path)
    s.addcow.write_bytes(s.addcow.read_bytes()[:size])
    code, out, err = run([str(s.addcow)], capfd)
    assert code == 2
    assert "HDR-COMPLETE" in out
    assert "Traceback" not in out + err


def test_v1_images_are_checked(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    s = pristine_v1(tmp_path)
    code, out, _ = run(["--output=json", str(s.addcow)], capfd)
    doc = json.loads(out)
    validate(doc)
    assert code == 0
    image = doc["images"][0]
    assert image["facts"]["version"] == 1
    assert "V1-BITMAP-LENGTH" in image["rules_checked"]
    assert "HDR-RESERVED" in {n["rule"] for n in image["rules_not_applicable"]}


def _worker_dies(path: str, options: object) -> object:
    os._exit(9)


def test_a_dead_worker_means_could_not_check(good: Path, warned: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    import addcow_conformance.checker.cli as cli_module

    monkeypatch.setattr(cli_module, "check_path", _worker_dies)
    code, out, err = run(["--jobs", "2", str(good), str(warned)], capfd)
    assert code == 1
    assert "worker failed" in err
    assert "Traceback" not in out + err
