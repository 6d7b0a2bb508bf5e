"""The fuzz targets of ``addcow_conformance.fuzzing``, run without atheris: each one-input function
accepts every seed (all the vectors), reports a planted bug, bounds its work on huge headers,
and the dictionaries hold the values they are derived from. Every saved crash reproducer must
now be refused cleanly: the target raises on any exception that is not the documented one."""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest
from addcow_conformance import fuzz
from addcow_conformance.fuzzing import TARGET_NAMES, get_target
from addcow_conformance.fuzzing import reader as reader_target
from addcow_conformance.fuzzing.dictionary import header_tokens, manifest_tokens, render
from addcow_conformance.fuzzing.runner import parse_stats, run_all
from addcow_conformance.fuzzing.seeds import (
    addcow_seeds,
    forged_seeds,
    manifest_seeds,
    vectors_dir,
)

from addcow_ref.format.constants import MAGIC, MAX_CLUSTER_BITS, MAX_VIRTUAL_SIZE
from addcow_ref.format.errors import FormatError
from addcow_ref.format.forge import forge_v2, name_fields

CRASHES = Path(fuzz.__file__).parent / "fuzzing" / "crashes"
#: The manifest seeds that are not one vector's entry.
_FIXED_MANIFESTS = ("manifest-empty", "manifest-not-json")


def _seeds(name: str, tmp_path: Path) -> list[bytes]:
    count = get_target(name).write_seeds(tmp_path)
    files = sorted(tmp_path.iterdir())
    assert len(files) == count
    return [p.read_bytes() for p in files]


def test_seeds_cover_every_vector() -> None:
    root = vectors_dir()
    assert root is not None
    add_cow_files = {p.read_bytes() for p in root.glob("v*/**/*.add-cow")}
    assert set(addcow_seeds().values()) == add_cow_files | set(forged_seeds().values())
    manifests = manifest_seeds()
    assert len(manifests) - len(_FIXED_MANIFESTS) == len(json.loads(
        (root / "manifest.json").read_bytes())["vectors"])


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_every_seed_is_an_expected_outcome(name: str, tmp_path: Path) -> None:
    target = get_target(name)
    for data in _seeds(name, tmp_path):
        target.one_input(data)


def test_checker_seeds_of_the_forged_files_conform(tmp_path: Path) -> None:
    from addcow_conformance.checker import Report

    for data in forged_seeds().values():
        report = fuzz.check_bytes(data)
        assert isinstance(report, Report)
        assert report.exit_code == 0, [f.message for f in report.findings]


def test_reader_seeds_reach_the_io_paths() -> None:
    """Most vectors must open in the scratch directory, or the target fuzzes only refusals."""
    from addcow_ref.format.errors import AddCowError

    opened = 0
    for data in addcow_seeds().values():
        directory = reader_target.scratch("reader")
        path = directory / "seed.add-cow"
        path.write_bytes(data)
        try:
            reader_target.read_file(path, reader_target.with_control(b""))
        except AddCowError:
            continue
        opened += 1
    assert opened >= 40


def test_reader_bounds_a_huge_disk() -> None:
    """A 256 GiB disk whose bitmap fits the input bound: the image file is sparse and every
    read and map is bounded, so the input takes well under a second."""
    image = b"image.raw"
    h = forge_v2(virtual_size=1 << 38, cluster_bits=MAX_CLUSTER_BITS, **name_fields(image))
    clusters = (1 << 38) >> MAX_CLUSTER_BITS
    data = (h.build() + image).ljust(int(h.bitmap_offset), b"\0") + b"\xa5" * (clusters // 8)
    control = bytes(2) + b"\x00\x80\xff\xff" * 3 + b"\x00\x40"
    start = time.monotonic()
    reader_target.one_input(reader_target.with_control(data, control))
    assert time.monotonic() - start < 2


def test_reader_accepts_a_library_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    from addcow_ref.engine.image import AddCowImage

    def refuse(self: AddCowImage, offset: int, length: int) -> bytes:
        raise FormatError("planted refusal", file=self.path)

    monkeypatch.setattr(AddCowImage, "read", refuse)
    reader_target.one_input(reader_target.with_control(forged_seeds()["forged-v2-backing"]))


def test_reader_reports_a_planted_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    from addcow_ref.engine.image import AddCowImage

    def broken(self: AddCowImage, offset: int, length: int) -> bytes:
        raise IndexError("planted")

    monkeypatch.setattr(AddCowImage, "read", broken)
    with pytest.raises(IndexError, match="planted"):
        reader_target.one_input(reader_target.with_control(forged_seeds()["forged-v2-backing"]))


def test_reader_reports_a_short_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from addcow_ref.engine.image import AddCowImage

    real = AddCowImage.read
    monkeypatch.setattr(AddCowImage, "read",
                        lambda self, offset, length: real(self, offset, length)[:-1])
    with pytest.raises(AssertionError, match="returned"):
        reader_target.one_input(reader_target.with_control(forged_seeds()["forged-v2-backing"]))


def test_checker_reports_a_planted_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    import addcow_conformance.checker.engine as engine

    def broken(*args: object, **kwargs: object) -> object:
        raise IndexError("planted")

    monkeypatch.setattr(engine, "collect_facts", broken)
    with pytest.raises(AssertionError, match="IndexError: planted"):
        fuzz.test_one_input(forged_seeds()["forged-v2-backing"])


def test_manifest_reports_a_planted_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    import addcow_conformance.harness.manifest as loader

    def broken(*args: object, **kwargs: object) -> object:
        raise IndexError("planted")

    monkeypatch.setattr(loader, "_parse_vector", broken)
    seed = next(v for k, v in manifest_seeds().items() if k not in _FIXED_MANIFESTS)
    with pytest.raises(IndexError, match="planted"):
        get_target("manifest").one_input(seed)


def test_manifest_refusal_is_an_expected_outcome() -> None:
    target = get_target("manifest")
    for data in (b"", b"{", b"[]", b'{"vectors": 1}', b'{"vectors": [{}]}'):
        target.one_input(data)


@pytest.mark.parametrize("path", sorted(CRASHES.glob("manifest-*.json")), ids=lambda p: p.stem)
def test_manifest_crash_reproducer_is_refused_cleanly(path: Path) -> None:
    """Each input the manifest target once crashed on is now a clean ``ManifestError``."""
    get_target("manifest").one_input(path.read_bytes())


def _parse_dictionary(text: str) -> list[bytes]:
    """The tokens of a libFuzzer dictionary: ``name="..."`` with C escapes."""
    out = []
    for line in text.splitlines():
        _, _, quoted = line.partition("=")
        out.append(ast.literal_eval("b" + quoted))
    return out


def test_header_dictionary_holds_the_magic_and_boundaries() -> None:
    tokens = header_tokens(["image.raw"])
    assert MAGIC in tokens
    assert b"image.raw" in tokens
    assert MAX_VIRTUAL_SIZE.to_bytes(8, "big") in tokens
    assert (MAX_VIRTUAL_SIZE + 1).to_bytes(8, "big") in tokens
    assert (MAX_CLUSTER_BITS + 1).to_bytes(4, "big") in tokens
    assert b"raw".ljust(16, b"\0") in tokens
    assert len(tokens) == len(set(tokens))
    assert _parse_dictionary(render(tokens)) == tokens


def test_manifest_dictionary_holds_the_manifest_keys() -> None:
    tokens = manifest_tokens(vectors_dir())
    for key in (b'"vectors"', b'"files"', b'"sha256"', b'"expect"'):
        assert key in tokens
    assert _parse_dictionary(render(tokens)) == tokens


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_every_target_has_a_dictionary_and_bounds(name: str) -> None:
    target = get_target(name)
    assert target.name == name
    assert target.dictionary()
    assert 4096 < target.max_len <= 1 << 16


def test_parse_stats_reads_libfuzzer_totals() -> None:
    text = ("stat::number_of_executed_units: 123456\n"
            "stat::average_exec_per_sec:     2057\nstat::peak_rss_mb:  80\n")
    stats = parse_stats("reader", 0, 60.2, text)
    assert (stats.executions, stats.per_second) == (123456, 2057)
    assert parse_stats("reader", 1, 0.1, "").executions is None


def test_all_targets_take_no_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_all(["-max_total_time=1", "corpus-dir"]) == 2
    assert "takes no corpus directory" in capsys.readouterr().err


def test_cli_refuses_an_unknown_target() -> None:
    with pytest.raises(SystemExit) as exc:
        fuzz.main(["--target", "nonesuch"])
    assert exc.value.code == 2
