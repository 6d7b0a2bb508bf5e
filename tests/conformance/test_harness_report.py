"""Reports (human, JSON against its schema, JUnit) and the CLI's exit statuses and options."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.harness.cli import main, select
from addcow_conformance.harness.impl import ForkImpl
from addcow_conformance.harness.manifest import load_manifest
from addcow_conformance.harness.report import results_schema, to_human, to_json, to_junit
from addcow_conformance.harness.runner import Runner, RunOptions, RunResult

from addcow_ref.format.rules import rule_url

from . import harness_suite

REF = "python:addcow_conformance.adapters.reference:main"


class WrongBytes(ReferenceAdapter):
    def read(self, image: Any, offset: int, length: int) -> bytes:
        data = bytearray(super().read(image, offset, length))
        if offset <= 1001 < offset + length:
            data[1001 - offset] ^= 0xFF
        return bytes(data)


def wrong_bytes_main(argv: list[str]) -> int:
    return WrongBytes().run(argv)


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    return harness_suite.build_suite(tmp_path / "suite")


def failing_run(suite: Path, tmp_path: Path) -> RunResult:
    impl = ForkImpl("wrong-bytes", "x:y", wrong_bytes_main, [])
    manifest = load_manifest(suite)
    return Runner(impl, manifest, suite, RunOptions(work_dir=tmp_path / "w")).run(
        manifest.vectors
    )


def test_human_report_names_rule_clause_expected_actual_and_reproduction(
    suite: Path, tmp_path: Path
) -> None:
    text = to_human(failing_run(suite, tmp_path))
    lines = text.splitlines()
    fail = next(i for i, line in enumerate(lines) if line.startswith("FAIL  read/backing-ends"))
    block = "\n".join(lines[fail : fail + 8])
    assert "[read]  whole guest: bytes differ; first differing byte at guest offset 0x3e9" in block
    assert f"rule READ-PAST-BACKING-EOF: {rule_url('READ-PAST-BACKING-EOF')}" in block
    assert '"sha256": "' + harness_suite.sha(
        harness_suite.guest(0x05, harness_suite.image_bytes(), harness_suite.backing_bytes())
    ) in block
    assert "reproduce: rm -rf /tmp/addcow-repro && cp -r " in block
    assert "info:   4 passed" in text
    assert "read:   3 failed" in text
    assert "vectors: 2 passed, 2 failed in " in text
    assert "NOT CONFORMING." in text


def test_json_results_validate_and_count(suite: Path, tmp_path: Path) -> None:
    doc = to_json(failing_run(suite, tmp_path))
    jsonschema.validate(doc, results_schema())
    assert doc["summary"]["exit_code"] == 1
    assert doc["summary"]["vectors"]["fail"] == 2
    assert doc["summary"]["vectors"]["pass"] == 2
    assert doc["summary"]["by_capability"]["read"]["fail"] == 3
    assert doc["by_rule"]["READ-PAST-BACKING-EOF"] == {"pass": 0, "fail": 1, "skip": 0}
    assert doc["by_rule"]["HDR-MAGIC"] == {"pass": 1, "fail": 0, "skip": 0}
    assert doc["manifest_sha256"] == load_manifest(suite).sha256


def test_schema_rejects_an_unknown_outcome(suite: Path, tmp_path: Path) -> None:
    doc = to_json(failing_run(suite, tmp_path))
    doc["results"][0]["outcome"] = "kinda-passed"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, results_schema())


def test_junit_marks_failures_and_skips(suite: Path, tmp_path: Path) -> None:
    root = ET.fromstring(to_junit(failing_run(suite, tmp_path)))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"info", "map", "read", "apply"}
    read = suites["read"]
    assert (read.get("tests"), read.get("failures")) == ("3", "3")
    failures = [c for c in read.iter("testcase") if c.find("failure") is not None]
    assert {c.get("name") for c in failures} == {
        "read/backing-ends-mid-cluster", "ops/write-straddles-clusters"
    }
    failure = failures[0].find("failure")
    assert failure is not None
    assert "rule READ-PAST-BACKING-EOF" in (failure.text or "")


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_exit_0_and_json_output(suite: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(["run", "--impl", REF, "--vectors", str(suite), "--output=json"], capsys)
    assert status == 0
    doc = json.loads(out)
    jsonschema.validate(doc, results_schema())
    assert doc["implementation"]["name"] == "addcow-ref"


def test_cli_exit_1_with_junit_and_report_json(
    suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    impl = f"python:{__name__}:wrong_bytes_main"
    junit, report = tmp_path / "j.xml", tmp_path / "r.json"
    status, out, _ = cli(["run", "--impl", impl, "--vectors", str(suite), "--junit", str(junit),
                          "--report-json", str(report)], capsys)
    assert status == 1
    assert "NOT CONFORMING" in out
    assert json.loads(report.read_text())["summary"]["exit_code"] == 1
    assert ET.parse(junit).getroot().tag == "testsuites"


@pytest.mark.parametrize(
    "args",
    [
        ["run"],
        ["run", "--impl", REF, "--bogus"],
        ["run", "--impl", REF, "--timeout", "0"],
        ["run", "--impl", "python:no.such.module:main"],
        ["run", "--impl", "'unterminated"],
        ["frobnicate"],
    ],
    ids=["no-impl", "unknown-option", "zero-timeout", "bad-python-impl", "bad-quoting",
         "no-command"],
)
def test_cli_usage_errors_exit_64(
    args: list[str], suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, _ = cli([*args, "--vectors", str(suite)] if len(args) > 1 else args, capsys)
    assert status == 64


def test_cli_empty_selection_and_missing_manifest_exit_64(
    suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = cli(["run", "--impl", REF, "--vectors", str(suite), "--run", "nope/*"], capsys)
    assert (status, "selection is empty" in err) == (64, True)
    status, _, err = cli(["run", "--impl", REF, "--vectors", str(tmp_path)], capsys)
    assert (status, "no manifest.json" in err) == (64, True)


def test_cli_corrupt_suite_exits_70_before_running(
    suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = suite / "read/backing-ends-mid-cluster/image.raw"
    target.write_bytes(target.read_bytes()[:-1] + b"\r")
    status, out, err = cli(["run", "--impl", REF, "--vectors", str(suite)], capsys)
    assert status == 70
    assert "read/backing-ends-mid-cluster/image.raw: SHA-256 differs from SHA256SUMS" in err
    assert out == ""


def test_cli_known_failures_file(
    suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = tmp_path / "kf.toml"
    ledger.write_text(
        '"read/*" = { reason = "byte 1001 flipped", bug = "https://example.invalid/7" }\n'
        '"ops/write-straddles-clusters" = { reason = "same" }\n'
    )
    impl = f"python:{__name__}:wrong_bytes_main"
    args = ["run", "--impl", impl, "--vectors", str(suite), "--known-failures", str(ledger)]
    status, out, _ = cli([*args, "-v"], capsys)
    assert status == 0
    assert "known failure: byte 1001 flipped (https://example.invalid/7)" in out
    ledger.write_text('"read/*" = { bug = "no reason given" }\n')
    status, _, err = cli(args, capsys)
    assert (status, "has no reason" in err) == (64, True)


def test_cli_kind_and_rules_selection(suite: Path) -> None:
    vectors = load_manifest(suite).vectors
    assert [v.id for v in select(vectors, kinds=["op"])] == ["ops/write-straddles-clusters"]
    assert [v.id for v in select(vectors, rules=["HDR-*"])] == ["header/magic-last-byte-fe"]
    assert [v.id for v in select(vectors, run=["*/*"], skip=["ops/*", "header/*"])] == [
        "read/backing-ends-mid-cluster", "bitmap/trailing-bytes"
    ]


def test_subprocess_impl_runs_without_a_shell(
    suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A word with a shell metacharacter reaches the adapter verbatim: no shell in between.
    log = tmp_path / "argv.log"
    script = tmp_path / "adapter.py"
    script.write_text(
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "from addcow_conformance.adapters.reference import main\n"
        "sys.exit(main(sys.argv[2:]))\n"
    )
    impl = f"{sys.executable} {script} '$HOME;|'"
    status, _, _ = cli(["run", "--impl", impl, "--vectors", str(suite), "--run", "header/*"],
                       capsys)
    assert status == 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[0] == ["$HOME;|", "capabilities"]
    assert calls[1][:2] == ["$HOME;|", "info"]


def test_known_failures_from_results_round_trip(
    suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    impl = f"python:{__name__}:wrong_bytes_main"
    results = tmp_path / "r.json"
    status, _, _ = cli(["run", "--impl", impl, "--vectors", str(suite), "--report-json",
                        str(results)], capsys)
    assert status == 1
    status, ledger, _ = cli(["known-failures", "--from", str(results)], capsys)
    assert status == 0
    assert ledger.splitlines()[1:] == [
        '"ops/write-straddles-clusters" = { reason = "[read] whole guest: bytes differ" }',
        '"read/backing-ends-mid-cluster" = { reason = "[read] whole guest: bytes differ; first '
        'differing byte at guest offset 0x3e9 (expected 0x00, got 0xff, per the reference '
        'implementation)" }',
    ]
    path = tmp_path / "kf.toml"
    path.write_text(ledger)
    status, _, _ = cli(["run", "--impl", impl, "--vectors", str(suite), "--known-failures",
                        str(path), "--strict-known-failures"], capsys)
    assert status == 0


def test_extract_copies_one_vector_with_its_entry(
    suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "one"
    status, out, _ = cli(["extract", "ops/write-straddles-clusters", str(dest), "--vectors",
                          str(suite)], capsys)
    assert status == 0
    assert out == f"ops/write-straddles-clusters -> {dest} (op, valid; entry image.add-cow)\n"
    entry = json.loads((dest / "vector.json").read_text())
    assert entry["id"] == "ops/write-straddles-clusters"
    assert (dest / "image.raw").read_bytes() == harness_suite.image_bytes()
    status, _, err = cli(["extract", "no/such", str(tmp_path / "x"), "--vectors", str(suite)],
                         capsys)
    assert (status, "no vector 'no/such'" in err) == (64, True)


def test_cli_setup_runs_once_and_a_failing_setup_aborts(
    suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "setup-ran"
    setup = f"{sys.executable} -c \"open({str(marker)!r}, 'a').write('x')\""
    status, _, _ = cli(["run", "--impl", REF, "--vectors", str(suite), "--setup", setup], capsys)
    assert (status, marker.read_text()) == (0, "x")
    failing = f"{sys.executable} -c \"import sys; sys.exit('no compiler')\""
    status, out, err = cli(["run", "--impl", REF, "--vectors", str(suite), "--setup", failing],
                           capsys)
    assert status == 70
    assert "exited 1; nothing was run" in err
    assert "no compiler" in err
    assert out == ""


def test_cli_spec_selection(suite: Path) -> None:
    vectors = load_manifest(suite).vectors
    assert len(select(vectors, specs=["2.0"])) == 4
    assert select(vectors, specs=["1"]) == []


def test_cli_file_differing_from_the_manifest_exits_70_even_without_sums(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = harness_suite.build_suite(tmp_path / "nosums", sums=False)
    (suite / "ops/write-straddles-clusters/backing.raw").write_bytes(b"B")
    status, _, err = cli(["run", "--impl", REF, "--vectors", str(suite)], capsys)
    assert status == 70
    assert "ops/write-straddles-clusters: backing.raw differs from its manifest sha256" in err
