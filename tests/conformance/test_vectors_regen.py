"""The committed vectors/ and coverage page are exactly what the generator writes today."""

from __future__ import annotations

from pathlib import Path

from addcow_conformance.vectors.coverage import render_coverage
from addcow_conformance.vectors.manifest import GENERATED_TOP, generate

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"
COVERAGE_PAGE = ROOT / "docs" / "guides" / "vector-coverage.rst"


def _tree(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and rel.parts[0] in GENERATED_TOP:
            out[rel.as_posix()] = p.read_bytes()
    return out


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    generate(tmp_path / "out")
    fresh, committed = _tree(tmp_path / "out"), _tree(VECTORS)
    missing = sorted(set(fresh) - set(committed))
    extra = sorted(set(committed) - set(fresh))
    differ = sorted(k for k in set(fresh) & set(committed) if fresh[k] != committed[k])
    stale = missing + extra + differ
    assert not stale, (
        "vectors/ is stale; run `addcow-vectors generate vectors`.\n"
        f"missing from vectors/: {missing[:20]}\nnot generated any more: {extra[:20]}\n"
        f"differing: {differ[:20]}")


def test_two_runs_agree(tmp_path: Path) -> None:
    generate(tmp_path / "a")
    generate(tmp_path / "b")
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_regeneration_replaces_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "v2" / "gone" / "old").mkdir(parents=True)
    (out / "v2" / "gone" / "old" / "x.raw").write_bytes(b"x")
    (out / "keep.txt").write_text("not ours")
    generate(out)
    assert not (out / "v2" / "gone").exists()
    assert (out / "keep.txt").read_text() == "not ours"


def test_coverage_page_is_current() -> None:
    assert COVERAGE_PAGE.read_text("utf-8") == render_coverage(), (
        "docs/guides/vector-coverage.rst is stale; run "
        "`addcow-vectors coverage-page docs/guides/vector-coverage.rst`")
