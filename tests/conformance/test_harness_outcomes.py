"""Each fake adapter misbehaves in one way and must get exactly that outcome (STYLE (d)).

The fakes are the reference adapter with one method bent, run forked in-process (the
``python:`` mode); a few run as real subprocesses to cover the exec path (timeouts, signals,
a command that does not exist).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.harness.impl import ForkImpl, Impl, ProcessImpl
from addcow_conformance.harness.known_failures import KnownFailure, KnownFailures
from addcow_conformance.harness.manifest import load_manifest
from addcow_conformance.harness.runner import Runner, RunOptions, RunResult

from . import harness_suite

READ = "read/backing-ends-mid-cluster"
MAGIC = "header/magic-last-byte-fe"
OPS = "ops/write-straddles-clusters"
TRAILING = "bitmap/trailing-bytes"


def fork(adapter: type[ReferenceAdapter]) -> ForkImpl:
    def main(argv: list[str]) -> int:
        return adapter().run(argv)

    return ForkImpl(f"fake:{adapter.__name__}", f"fake:{adapter.__name__}", main, [])


def run(
    tmp_path: Path,
    impl: Impl,
    known: KnownFailures | None = None,
    **options: Any,
) -> RunResult:
    root = harness_suite.build_suite(tmp_path / "suite")
    manifest = load_manifest(root)
    opts = RunOptions(work_dir=tmp_path / "work", **options)
    runner = Runner(impl, manifest, root, opts, known)
    assert runner.check_integrity(manifest.vectors) == []
    return runner.run(manifest.vectors)


def outcomes(result: RunResult, vid: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in result.results:
        if r.id == vid:
            out.setdefault(r.capability, []).append(r.outcome)
    return out


def only(result: RunResult, vid: str, capability: str) -> Any:
    found = [r for r in result.results if r.id == vid and r.capability == capability]
    assert len(found) == 1, found
    return found[0]


def test_reference_adapter_passes_the_tiny_suite(tmp_path: Path) -> None:
    result = run(tmp_path, fork(ReferenceAdapter), check_refusal_reason=True)
    assert result.vector_outcomes == {READ: "pass", MAGIC: "pass", OPS: "pass", TRAILING: "pass"}
    assert result.exit_code == 0
    # info, map, whole-guest read and one probe; then the op vector's apply and its re-checks.
    assert outcomes(result, READ) == {"info": ["pass"], "map": ["pass"], "read": ["pass", "pass"]}
    assert outcomes(result, OPS) == {
        "apply": ["pass"], "info": ["pass"], "map": ["pass"], "read": ["pass"]
    }
    assert only(result, MAGIC, "info").actual["refusal"]["rule"] == "HDR-MAGIC"


def test_reference_adapter_as_a_subprocess(tmp_path: Path) -> None:
    impl = ProcessImpl("addcow-impl",
                       [sys.executable, "-m", "addcow_conformance.adapters.reference"])
    result = run(tmp_path, impl, jobs=2)
    assert set(result.vector_outcomes.values()) == {"pass"}
    assert len(result.vector_outcomes) == 4


class Crashing(ReferenceAdapter):
    def info(self, image: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    def open(self, path: str, mode: str = "r") -> Any:
        if "magic" in path:
            raise RuntimeError("boom")  # a traceback where a clean refusal belongs
        return super().open(path, mode)


def test_crash_is_crash_and_traceback_on_invalid_is_refused_unclean(tmp_path: Path) -> None:
    result = run(tmp_path, fork(Crashing))
    r = only(result, READ, "info")
    assert r.outcome == "crash"
    assert "RuntimeError: boom" in r.context["stderr"]
    assert r.reproduce is not None
    assert "info" in r.reproduce
    assert only(result, MAGIC, "info").outcome == "refused-unclean"
    assert result.exit_code == 1


def test_lenient_refusal_counts_unclean_refusals(tmp_path: Path) -> None:
    result = run(tmp_path, fork(Crashing), lenient_refusal=True)
    r = only(result, MAGIC, "info")
    assert r.outcome == "pass"
    assert r.context["unclean"] is True


class Segfault(ReferenceAdapter):
    def extents(self, image: Any) -> list[dict[str, Any]]:
        os.kill(os.getpid(), signal.SIGSEGV)
        return []


def test_signal_is_crash(tmp_path: Path) -> None:
    result = run(tmp_path, fork(Segfault))
    r = only(result, READ, "map")
    assert (r.outcome, r.actual) == ("crash", {"status": "killed by signal SIGSEGV"})
    assert only(result, READ, "info").outcome == "pass"


class Hanging(ReferenceAdapter):
    def read(self, image: Any, offset: int, length: int) -> bytes:
        time.sleep(60)
        return b""


def test_timeout_is_timeout(tmp_path: Path) -> None:
    start = time.monotonic()
    result = run(tmp_path, fork(Hanging), timeout=0.5)
    assert outcomes(result, READ)["read"] == ["timeout", "timeout"]
    assert time.monotonic() - start < 20


def test_timeout_of_a_subprocess_kills_it(tmp_path: Path) -> None:
    script = tmp_path / "hang.py"
    script.write_text("import sys, time\nif sys.argv[1] == 'info': time.sleep(60)\nsys.exit(69)\n")
    impl = ProcessImpl("hang", [sys.executable, str(script)])
    result = run(tmp_path, impl, timeout=0.5)
    assert only(result, READ, "info").outcome == "timeout"
    assert only(result, MAGIC, "info").outcome == "timeout"
    # 69 from every other call: skips, not failures.
    assert outcomes(result, READ)["map"] == ["skip"]


class WrongRule(ReferenceAdapter):
    def open(self, path: str, mode: str = "r") -> Any:
        if "magic" in path:
            from addcow_ref.format.errors import FormatError

            raise FormatError("version is wrong", file=path, rule_id="HDR-VERSION")
        return super().open(path, mode)


def test_refusal_with_the_wrong_rule(tmp_path: Path) -> None:
    strict = run(tmp_path / "a", fork(WrongRule), check_refusal_reason=True)
    r = only(strict, MAGIC, "info")
    assert r.outcome == "fail"
    assert r.message == "refused for the wrong reason: HDR-VERSION, expected HDR-MAGIC"
    lax = run(tmp_path / "b", fork(WrongRule))
    r = only(lax, MAGIC, "info")
    assert (r.outcome, r.context["other_reason"]) == ("pass", "HDR-VERSION")
    from addcow_conformance.harness.report import to_human

    assert (
        "note: 1 refusals cited a rule other than the one the vector breaks "
        "(header/magic-last-byte-fe); --check-refusal-reason makes them failures"
    ) in to_human(lax)


class WrongBytes(ReferenceAdapter):
    def read(self, image: Any, offset: int, length: int) -> bytes:
        data = bytearray(super().read(image, offset, length))
        if offset <= 1001 < offset + length:
            data[1001 - offset] ^= 0xFF
        return bytes(data)


def test_wrong_bytes_report_the_first_differing_offset(tmp_path: Path) -> None:
    result = run(tmp_path, fork(WrongBytes))
    guest, probe = (r for r in result.results if r.id == READ and r.capability == "read")
    assert guest.outcome == probe.outcome == "fail"
    assert guest.actual["first_difference"] == {"offset": 1001, "expected": 0, "actual": 0xFF}
    assert probe.actual["first_difference"]["offset"] == 1001
    assert "first differing byte at guest offset 0x3e9" in guest.message
    assert guest.reproduce is not None
    assert guest.reproduce.endswith("| sha256sum")


class ShortRead(ReferenceAdapter):
    def read(self, image: Any, offset: int, length: int) -> bytes:
        return super().read(image, offset, length)[:-1]


def test_short_read_is_a_failure(tmp_path: Path) -> None:
    result = run(tmp_path, fork(ShortRead))
    guest = next(r for r in result.results if r.id == READ and r.capability == "read")
    assert guest.outcome == "fail"
    assert guest.message.startswith("whole guest: printed 2047 bytes, expected exactly 2048")


class NoMap(ReferenceAdapter):
    def cmd_map(self, path: str) -> int:
        return 69


def test_exit_69_is_a_skip(tmp_path: Path) -> None:
    result = run(tmp_path, fork(NoMap))
    assert outcomes(result, READ)["map"] == ["skip"]
    assert outcomes(result, OPS)["map"] == ["skip"]
    assert result.exit_code == 0


class NoApply(ReferenceAdapter):
    def capabilities(self) -> dict[str, Any]:
        caps = super().capabilities()
        caps["supports"] = ["info", "read", "map"]
        caps["policies"] = {"trailing-bytes": "refuse"}
        return caps


def test_undeclared_capability_skips_and_policy_refuse_requires_refusal(tmp_path: Path) -> None:
    result = run(tmp_path, fork(NoApply))
    assert result.vector_outcomes[OPS] == "skip"
    assert "apply:write" in only(result, OPS, "apply").message
    # The reference accepts trailing bytes, but this adapter declared it refuses them.
    r = only(result, TRAILING, "info")
    assert (r.outcome, r.message) == ("fail", "accepted an image that breaks BMP-TRAILING")


class RefusesTrailing(ReferenceAdapter):
    def open(self, path: str, mode: str = "r") -> Any:
        if Path(path).stat().st_size > 4097:
            from addcow_ref.format.errors import FormatError

            raise FormatError("trailing bytes", file=path, rule_id="BMP-TRAILING")
        return super().open(path, mode)


def test_acceptable_vector_without_policy_may_be_refused(tmp_path: Path) -> None:
    result = run(tmp_path, fork(RefusesTrailing), check_refusal_reason=True)
    r = only(result, TRAILING, "info")
    assert (r.outcome, r.context["verdict"]) == ("pass", "refused")
    accepted = run(tmp_path / "b", fork(ReferenceAdapter))
    assert only(accepted, TRAILING, "info").context["verdict"] == "accepted"


class AcceptsEverything(ReferenceAdapter):
    def open(self, path: str, mode: str = "r") -> Any:
        if "magic" in path:
            data = bytearray(Path(path).read_bytes())
            data[7] = 0xFF
            Path(path).write_bytes(data)
        return super().open(path, mode)


def test_accepting_an_invalid_image_is_a_failure(tmp_path: Path) -> None:
    result = run(tmp_path, fork(AcceptsEverything))
    r = only(result, MAGIC, "info")
    assert (r.outcome, r.message) == ("fail", "accepted an image that breaks HDR-MAGIC")
    assert r.rules == ("HDR-MAGIC",)


class WrongInfo(ReferenceAdapter):
    def info(self, image: Any) -> dict[str, Any]:
        d = super().info(image)
        d["virtual_size"] = str(d["virtual_size"])  # decimal strings are allowed
        d["allocated_clusters"] += 1
        del d["backing_format"]
        return d


def test_info_mismatches_name_each_field(tmp_path: Path) -> None:
    result = run(tmp_path, fork(WrongInfo))
    r = only(result, READ, "info")
    assert r.outcome == "fail"
    assert r.expected == {"allocated_clusters": 2, "backing_format": "raw"}
    assert r.actual == {"allocated_clusters": 3, "backing_format": "<missing>"}


class Unmerged(ReferenceAdapter):
    def cmd_map(self, path: str) -> int:
        with self.open(path) as image:
            self.emit_json(
                [{"start": s, "length": 512, "allocated": image.is_allocated(s, 512)[0]}
                 for s in range(0, image.virtual_size, 512)]
            )
        return 0


def test_unmerged_map_is_a_failure(tmp_path: Path) -> None:
    result = run(tmp_path, fork(Unmerged))
    r = only(result, OPS, "map")  # bitmap 0x07: clusters 0-2 form one run
    assert (r.outcome, r.message) == ("fail", "map entries 0 and 1 are adjacent and not merged")
    assert r.context["first_difference_offset"] == 512
    assert only(result, READ, "map").outcome == "pass"  # 0x05 alternates: nothing to merge


def test_known_failures_give_xfail_and_xpass(tmp_path: Path) -> None:
    known = KnownFailures((
        KnownFailure(READ, "wrong byte at 1001", "https://example.invalid/1"),
        KnownFailure("header/*", "listed but passes", None),
    ))
    result = run(tmp_path / "a", fork(WrongBytes), known)
    assert set(outcomes(result, READ)["read"]) == {"xfail"}
    assert outcomes(result, READ)["info"] == ["pass"]
    assert outcomes(result, MAGIC) == {"info": ["xpass"]}
    assert outcomes(result, OPS)["read"] == ["fail"]
    assert result.exit_code == 1  # the op vector is not listed
    known = KnownFailures((*known.entries, KnownFailure(OPS, "same byte", None)))
    assert run(tmp_path / "b", fork(WrongBytes), known).exit_code == 0
    strict = run(tmp_path / "c", fork(WrongBytes), known, strict_known_failures=True)
    assert strict.exit_code == 1


class Vandal(ReferenceAdapter):
    """Writes into the pristine suite instead of its scratch copy."""

    target: Path

    def cmd_info(self, path: str) -> int:
        with self.target.open("ab") as f:
            f.write(b"x")
        return super().cmd_info(path)


def test_an_adapter_writing_outside_its_scratch_copy_is_caught(tmp_path: Path) -> None:
    Vandal.target = tmp_path / "suite" / READ / "image.raw"
    result = run(tmp_path, fork(Vandal))
    errors = [r for r in result.results if r.outcome == "harness-error"]
    assert errors
    assert errors[0].id == READ
    assert "image.raw" in errors[0].message


def test_a_missing_command_crashes_every_call(tmp_path: Path) -> None:
    impl = ProcessImpl("nope", [str(tmp_path / "no-such-adapter")])
    result = run(tmp_path, impl)
    assert set(result.vector_outcomes.values()) == {"crash", "refused-unclean"}
    assert result.capabilities.note is not None


def test_exitfirst_stops_after_the_first_unexpected_outcome(tmp_path: Path) -> None:
    result = run(tmp_path, fork(Crashing), exitfirst=True)
    assert len(result.vector_outcomes) == 1


def fake_main_factory(out: Callable[[list[str]], int]) -> ForkImpl:
    return ForkImpl("fake", "fake:main", out, [])


def test_capabilities_json_is_read(tmp_path: Path) -> None:
    def main(argv: list[str]) -> int:
        if argv[0] == "capabilities":
            print(json.dumps({"name": "toy", "version": "9", "supports": ["info"],
                              "features": [], "policies": {}}))
            return 0
        return ReferenceAdapter().run(argv)

    result = run(tmp_path, fake_main_factory(main))
    assert (result.capabilities.name, result.capabilities.version) == ("toy", "9")
    # Calls it does not declare are skipped one by one; what it declares is still checked.
    assert outcomes(result, READ) == {"info": ["pass"], "map": ["skip"], "read": ["skip", "skip"]}
    assert result.vector_outcomes[OPS] == "skip"  # needs apply:write
    assert result.vector_outcomes[MAGIC] == "pass"


@pytest.mark.parametrize("code", [0, 1])
def test_python_function_exit_status_passes_through(tmp_path: Path, code: int) -> None:
    def main(argv: list[str]) -> int:
        sys.exit(code if argv[0] == "capabilities" else 69)

    impl = fake_main_factory(main)
    r = impl.call(["capabilities"], cwd=tmp_path, stdout_path=tmp_path / "o", timeout=5)
    assert (r.exit_code, r.signal, r.timed_out) == (code, None, False)


def test_reproduction_of_a_check_after_apply_redoes_the_operations(tmp_path: Path) -> None:
    result = run(tmp_path, fork(WrongBytes))
    r = only(result, OPS, "read")
    assert r.outcome == "fail"
    assert r.reproduce is not None
    steps = r.reproduce.split(" && ")
    assert steps[-2].endswith("apply /tmp/addcow-repro/image.add-cow /tmp/addcow-repro.ops.json")
    assert steps[-1].endswith("read /tmp/addcow-repro/image.add-cow 0 2048 | sha256sum")


def test_synth_zero_files_are_created_sparse_in_the_scratch_copy(tmp_path: Path) -> None:
    root = harness_suite.build_suite(tmp_path / "suite", sums=False)
    doc = json.loads((root / "manifest.json").read_text())
    vector = next(v for v in doc["vectors"] if v["id"] == MAGIC)
    big = 1 << 30
    vector["files"].append({"role": "backing-image", "path": "zeros.raw", "size": big,
                            "sha256": "not-checked-for-synth-files", "synth": "zeros"})
    (root / "manifest.json").write_text(json.dumps(doc))
    manifest = load_manifest(root)
    opts = RunOptions(work_dir=tmp_path / "work", keep_scratch=True)
    result = Runner(fork(ReferenceAdapter), manifest, root, opts).run(manifest.vectors)
    assert result.vector_outcomes[MAGIC] == "pass"
    (copy,) = (tmp_path / "work").glob("*header_magic*/v/zeros.raw")
    assert copy.stat().st_size == big
    assert copy.stat().st_blocks * 512 < big // 1024  # sparse: (almost) no blocks allocated
    assert not (root / MAGIC / "zeros.raw").exists()


@pytest.mark.parametrize("kind", ["fork", "process"])
def test_reads_are_hashed_while_streaming_and_only_a_prefix_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    from addcow_conformance.harness import impl as impl_module

    monkeypatch.setattr(impl_module, "KEEP_STDOUT", 1000)
    root = harness_suite.build_suite(tmp_path / "suite")
    image = root / READ / "image.add-cow"
    adapter = (
        fork(ReferenceAdapter) if kind == "fork"
        else ProcessImpl("ref", [sys.executable, "-m", "addcow_conformance.adapters.reference"])
    )
    out = tmp_path / "read.out"
    r = adapter.call(["read", str(image), "0", "2048"], cwd=tmp_path, stdout_path=out, timeout=30)
    g = harness_suite.guest(0x05, harness_suite.image_bytes(), harness_suite.backing_bytes())
    assert (r.exit_code, r.stdout_size, r.stdout_sha256) == (0, 2048, harness_suite.sha(g))
    assert (r.stdout_kept, out.read_bytes()) == (1000, g[:1000])
