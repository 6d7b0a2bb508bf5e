"""The suite's version history: no expectation changes without a version bump (STYLE (a))."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from addcow_conformance.vectors.cli import main_group
from addcow_conformance.vectors.core import Vector
from addcow_conformance.vectors.history import (
    HistoryError,
    SuiteVersion,
    check_current,
    expectation_digest,
    load_history,
    provenance,
    record_version,
    render_changelog,
    retired_ids,
)
from addcow_conformance.vectors.manifest import all_vectors, build_manifest, vector_digests

from tests.click_runner import cli_runner

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def vectors() -> list[Vector]:
    return all_vectors()


def test_a_changed_expectation_without_a_version_bump_is_refused(vectors: list[Vector]) -> None:
    victim = next(v for v in vectors if v.id == "read/backing-ends-mid-cluster")
    expect = json.loads(json.dumps(victim.expect))
    expect["extents"][0]["allocated"] = not expect["extents"][0]["allocated"]
    changed = [dataclasses.replace(victim, expect=expect) if v is victim else v for v in vectors]
    with pytest.raises(HistoryError, match=r"changed expectations: read/backing-ends-mid-cluster"
                                           r".*record a major version"):
        build_manifest(changed)


def test_a_changed_result_or_file_is_a_changed_expectation(vectors: list[Vector]) -> None:
    victim = vectors[0]
    entry = victim.manifest_entry("1.0.0", "1.0.0")
    base = expectation_digest(entry)
    assert expectation_digest({**entry, "description": "reworded"}) == base
    assert expectation_digest({**entry, "since": "9.9.9", "changed": "9.9.9"}) == base
    assert expectation_digest({**entry, "result": "acceptable"}) != base
    files = [dict(f) for f in entry["files"]]
    files[0]["sha256"] = "0" * 64
    assert expectation_digest({**entry, "files": files}) != base


def test_an_added_or_removed_vector_without_a_bump_is_refused(vectors: list[Vector]) -> None:
    extra = dataclasses.replace(vectors[0], id="header/brand-new")
    with pytest.raises(HistoryError, match=r"added: header/brand-new.*record a minor version"):
        build_manifest([*vectors, extra])
    with pytest.raises(HistoryError, match=rf"removed: {vectors[-1].id}.*major"):
        build_manifest(vectors[:-1])


def test_committed_history_is_the_current_suite(vectors: list[Vector]) -> None:
    history = load_history()
    manifest = json.loads((ROOT / "vectors" / "manifest.json").read_text("utf-8"))
    assert check_current(history, vector_digests(vectors)) == manifest["suite_version"]
    assert history[-1].version == manifest["suite_version"]
    assert set(history[-1].vectors) == {v["id"] for v in manifest["vectors"]}
    assert manifest["retired"] == retired_ids(history)
    prov = provenance(history)
    for v in manifest["vectors"]:
        assert (v["since"], v["changed"]) == prov[v["id"]]
        assert history[-1].vectors[v["id"]] == expectation_digest(v)
    assert (ROOT / "vectors" / "CHANGELOG.md").read_text("utf-8") == render_changelog(history)


H1 = [SuiteVersion("1.0.0", {"a/one": "1", "a/two": "2", "a/three": "3"})]


def test_bumps_must_be_big_enough() -> None:
    changed = {"a/one": "1", "a/two": "X", "a/three": "3"}
    with pytest.raises(HistoryError, match="major"):
        record_version(H1, "1.1.0", changed)
    added = {**H1[0].vectors, "a/four": "4"}
    with pytest.raises(HistoryError, match="minor"):
        record_version(H1, "1.0.1", added)
    with pytest.raises(HistoryError, match="not after"):
        record_version(H1, "1.0.0", added)
    with pytest.raises(HistoryError, match="nothing changed"):
        record_version(H1, "1.0.1", dict(H1[0].vectors))
    assert record_version(H1, "1.1.0", added)[-1].version == "1.1.0"
    assert record_version(H1, "2.0.0", changed)[-1].vectors == changed


def test_since_changed_retired_and_changelog_over_three_versions() -> None:
    h = record_version(H1, "1.1.0", {**H1[0].vectors, "a/four": "4"})
    h = record_version(h, "2.0.0", {"a/one": "1", "a/two": "X", "a/four": "4"})
    assert provenance(h) == {"a/one": ("1.0.0", "1.0.0"), "a/two": ("1.0.0", "2.0.0"),
                             "a/four": ("1.1.0", "1.1.0")}
    assert retired_ids(h) == ["a/three"]
    with pytest.raises(HistoryError, match="never reused"):
        record_version(h, "2.1.0", {**h[-1].vectors, "a/three": "3"})
    text = render_changelog(h)
    sections = text.split("\n## ")[1:]
    assert [s.splitlines()[0] for s in sections] == ["2.0.0", "1.1.0", "1.0.0"]
    assert "### Changed\n\n- `a/two`" in sections[0]
    assert "### Retired\n\n- `a/three`" in sections[0]
    assert "### Added" not in sections[0]
    assert "### Added\n\n- `a/four`" in sections[1]
    assert "3 vectors: 3 added, 0 changed, 0 retired." in sections[2]


def test_history_must_be_ordered() -> None:
    doc = {"versions": [{"version": "2.0.0", "vectors": {}}, {"version": "1.0.0", "vectors": {}}]}
    with pytest.raises(HistoryError, match="increasing order"):
        load_history(json.dumps(doc))


def test_record_version_cli_refuses_a_version_that_is_not_a_bump() -> None:
    history = ROOT / "conformance" / "addcow_conformance" / "vectors" / "history.json"
    before = history.read_bytes()
    latest = load_history()[-1].version
    result = cli_runner().invoke(main_group, ["record-version", "1.0.0"])
    assert result.exit_code == 1
    assert f"not after the latest recorded version {latest}" in result.output
    assert history.read_bytes() == before


def test_generate_refuses_before_touching_the_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import addcow_conformance.vectors.manifest as manifest_module

    recorded = load_history()[-1]
    victim = sorted(recorded.vectors)[0]
    stale = SuiteVersion(recorded.version, {**recorded.vectors, victim: "0" * 64})
    monkeypatch.setattr(manifest_module, "load_history", lambda: [stale])
    out = tmp_path / "vectors"
    out.mkdir()
    (out / "manifest.json").write_text("previous", "utf-8")
    result = cli_runner().invoke(main_group, ["generate", str(out)])
    assert result.exit_code == 1
    assert f"changed expectations: {victim}" in result.output
    assert (out / "manifest.json").read_text("utf-8") == "previous"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]


def test_every_added_or_changed_vector_of_a_version_has_a_note() -> None:
    # The changelog says how each expectation changed, not only that it did.
    from addcow_conformance.vectors.changenotes import NOTES
    from addcow_conformance.vectors.history import _diff, load_history

    history = load_history()
    previous: dict[str, str] = {}
    for v in history:
        added, changed, _ = _diff(previous, v.vectors)
        if v.version in NOTES:
            assert set(NOTES[v.version]) == set(added) | set(changed), v.version
        previous = dict(v.vectors)
    assert set(NOTES) <= {v.version for v in history}
