"""``addcow-conformance matrix`` over real results: the reference adapter and two mutants.

The results files come from running the harness in-process over a few committed vectors, so
the page is checked against what the harness really wrote, not against a hand-made document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.harness.cli import main
from addcow_conformance.harness.impl import parse_impl
from addcow_conformance.harness.manifest import load_manifest
from addcow_conformance.harness.matrix import (
    NOT_RUN,
    MatrixError,
    load_results,
    render_matrix,
    vector_anchor,
)
from addcow_conformance.harness.report import to_json
from addcow_conformance.harness.runner import Runner, RunOptions

from addcow_ref.format.rules import rule_url

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"

#: Two vectors each mutant gets wrong, two that every implementation passes, one that the
#: reference and both mutants skip (bitmap contents are not scanned by them).
CHOSEN = (
    "bitmap/bit-order-lsb-first",
    "features/all-allocated-bit-clear",
    "features/incompatible-bit-0",
    "header/magic-last-byte-fe",
    "names/backing-name-has-nul",
    "read/backing-ends-mid-cluster",
)
IMPLS = {
    "reference": "python:addcow_conformance.adapters.reference:main",
    "bit-order": "python:addcow_conformance.mutants:main bit-order-reversed",
    "nul-names": "python:addcow_conformance.mutants:main names-nul-terminated",
}

pytestmark = pytest.mark.skipif(
    not (VECTORS / "manifest.json").is_file(), reason="vectors/manifest.json not generated yet"
)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("matrix")
    manifest = load_manifest(VECTORS)
    chosen = [v for v in manifest.vectors if v.id in CHOSEN]
    assert len(chosen) == len(CHOSEN)
    out = {}
    for key, text in IMPLS.items():
        run = Runner(parse_impl(text), manifest, VECTORS,
                     RunOptions(work_dir=base / f"work-{key}")).run(chosen)
        path = base / f"{key}.json"
        path.write_text(json.dumps(to_json(run)), "utf-8")
        out[key] = path
    return out


def _docs(results: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {k: json.loads(p.read_text("utf-8")) for k, p in results.items()}


def _outcomes(doc: dict[str, Any]) -> dict[str, str]:
    return {v["id"]: v["outcome"] for v in doc["vectors"]}


def _render(results: dict[str, Path], tmp_path: Path, *extra: str) -> Any:
    from bs4 import BeautifulSoup

    out = tmp_path / "matrix.html"
    status = main(["matrix", *(str(p) for p in results.values()), "--html", str(out),
                   "--vectors", str(VECTORS), *extra])
    assert status == 0
    return BeautifulSoup(out.read_text("utf-8"), "html.parser")


def _vector_rows(soup: Any) -> dict[str, list[str]]:
    table = soup.find("table", id="matrix-vectors")
    return {tr["data-vector"]: [td.get_text(strip=True)
                                for td in tr.find_all("td", class_="outcome")]
            for tr in table.find("tbody").find_all("tr", attrs={"data-vector": True})}


def test_the_runs_disagree_where_the_mutants_are_wrong(results: dict[str, Path]) -> None:
    """The fixture itself: otherwise the pruned view would have nothing to show."""
    docs = _docs(results)
    ref, bit, nul = (_outcomes(docs[k]) for k in ("reference", "bit-order", "nul-names"))
    assert set(ref.values()) <= {"pass", "skip"}
    assert bit["bitmap/bit-order-lsb-first"] == "fail"
    assert nul["names/backing-name-has-nul"] == "fail"
    assert ref["header/magic-last-byte-fe"] == bit["header/magic-last-byte-fe"] == "pass"


def test_full_matrix_has_one_column_per_implementation_and_every_cell(
        results: dict[str, Path], tmp_path: Path) -> None:
    soup = _render(results, tmp_path)
    docs = _docs(results)
    heads = [th.get_text(strip=True)
             for th in soup.find("table", id="matrix-vectors").find_all("th", class_="impl")]
    assert heads == [f"{d['implementation']['name']} {d['implementation']['version']}"
                     for d in docs.values()]
    rows = _vector_rows(soup)
    assert sorted(rows) == sorted(CHOSEN)
    for vid, cells in rows.items():
        assert cells == [_outcomes(d)[vid] for d in docs.values()], vid
    assert rows["bitmap/bit-order-lsb-first"] == ["pass", "fail", "pass"]
    assert rows["names/backing-name-has-nul"] == ["pass", "pass", "fail"]
    assert soup.find("tr", class_="collapsed") is None


def test_pruned_view_collapses_exactly_the_vectors_with_one_outcome_everywhere(
        results: dict[str, Path], tmp_path: Path) -> None:
    soup = _render(results, tmp_path, "--pruned")
    docs = list(_docs(results).values())
    per_vector = {vid: {_outcomes(d)[vid] for d in docs} for vid in CHOSEN}
    differing = {vid for vid, seen in per_vector.items() if len(seen) > 1}
    same: dict[str, set[str]] = {}
    for vid, seen in per_vector.items():
        if len(seen) == 1:
            same.setdefault(next(iter(seen)), set()).add(vid)
    assert differing >= {"bitmap/bit-order-lsb-first", "names/backing-name-has-nul"}
    assert "header/magic-last-byte-fe" in same["pass"]
    assert set(_vector_rows(soup)) == differing
    collapsed = soup.find_all("tr", class_="collapsed")
    got = {}
    for tr in collapsed:
        ids = {a.get_text(strip=True) for a in tr.find("details").find_all("a")}
        assert int(tr["data-count"]) == len(ids)
        assert [td.get_text(strip=True) for td in tr.find_all("td")] == [tr["data-outcome"]] * 3
        got[tr["data-outcome"]] = ids
    assert got == same


def test_links_go_to_manifest_entries_and_clauses(results: dict[str, Path], tmp_path: Path) -> None:
    soup = _render(results, tmp_path, "--pruned")
    manifest = {v.id: v for v in load_manifest(VECTORS).vectors}
    for a in soup.find_all("a", class_="vector"):
        target = soup.find(id=a["href"].removeprefix("#"))
        assert target is not None, a["href"]
        assert a["href"] == "#" + vector_anchor(a.get_text(strip=True))
        entry = json.loads(target.find("pre").get_text())
        assert entry == manifest[a.get_text(strip=True)].raw
    rule_links = soup.find_all("a", class_="rule")
    assert rule_links
    for a in rule_links:
        assert a["href"] == rule_url(a.get_text(strip=True))


def test_rule_table_counts_come_from_by_rule(results: dict[str, Path], tmp_path: Path) -> None:
    soup = _render(results, tmp_path)
    docs = list(_docs(results).values())
    table = soup.find("table", id="matrix-rules")
    rows = table.find("tbody").find_all("tr")
    assert [tr["data-rule"] for tr in rows] == sorted({r for d in docs for r in d["by_rule"]})
    for tr in rows:
        for td, doc in zip(tr.find_all("td"), docs, strict=True):
            slot = doc["by_rule"].get(tr["data-rule"])
            expected = (f"{slot['pass']} pass / {slot['fail']} fail / {slot['skip']} skip"
                        if slot else NOT_RUN)
            assert td.get_text(strip=True) == expected
    bit_order = table.find("tr", attrs={"data-rule": "BMP-BIT-ORDER"}).find_all("td")
    assert [td["data-outcome"] for td in bit_order] == ["pass", "fail", "pass"]


def test_anomalies_list_everything_but_pass_and_skip(results: dict[str, Path],
                                                     tmp_path: Path) -> None:
    soup = _render(results, tmp_path)
    for impl in load_results(list(results.values())):
        section = soup.find("section", id=f"anomalies-{impl.slug}")
        listed = [(li["data-vector"], li["data-outcome"]) for li in section.find_all("li")]
        expected = [(r["id"], r["outcome"]) for r in impl.doc["results"]
                    if r["outcome"] not in ("pass", "skip")]
        assert listed == expected
    ref = load_results([results["reference"]])[0]
    assert soup.find("section", id=f"anomalies-{ref.slug}").find("li") is None
    bit = load_results([results["bit-order"]])[0]
    assert ("bitmap/bit-order-lsb-first", "fail") in [
        (li["data-vector"], li["data-outcome"])
        for li in soup.find("section", id=f"anomalies-{bit.slug}").find_all("li")]


def test_everything_is_escaped_and_absent_vectors_are_marked(results: dict[str, Path],
                                                             tmp_path: Path) -> None:
    doc = json.loads(results["bit-order"].read_text("utf-8"))
    doc["implementation"]["name"] = "<script>alert(1)</script>"
    doc["vectors"] = [v for v in doc["vectors"] if v["id"] != "header/magic-last-byte-fe"]
    evil = tmp_path / "evil.json"
    evil.write_text(json.dumps(doc), "utf-8")
    manifest = load_manifest(VECTORS)
    page = render_matrix(load_results([results["reference"], evil]), manifest)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    from bs4 import BeautifulSoup

    rows = _vector_rows(BeautifulSoup(page, "html.parser"))
    assert rows["header/magic-last-byte-fe"] == ["pass", NOT_RUN]


def test_matrix_cli_rejects_a_file_that_is_not_results(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}', "utf-8")
    assert main(["matrix", str(bad), "--html", str(tmp_path / "o.html")]) == 64
    assert not (tmp_path / "o.html").exists()
    assert main(["matrix", "--html", str(tmp_path / "o.html")]) == 64


def test_without_a_manifest_the_cells_remain_and_entries_say_so(results: dict[str, Path]) -> None:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(render_matrix(load_results(list(results.values())), None),
                         "html.parser")
    rows = _vector_rows(soup)
    assert sorted(rows) == sorted(CHOSEN)
    assert rows["bitmap/bit-order-lsb-first"] == ["pass", "fail", "pass"]
    entry = soup.find(id=vector_anchor("bitmap/bit-order-lsb-first"))
    assert "not in the manifest" in entry.get_text()


def test_a_results_file_that_breaks_its_schema_is_named(results: dict[str, Path],
                                                        tmp_path: Path) -> None:
    doc = json.loads(results["reference"].read_text("utf-8"))
    doc["vectors"][0]["outcome"] = "great"
    bad = tmp_path / "bad-outcome.json"
    bad.write_text(json.dumps(doc), "utf-8")
    with pytest.raises(MatrixError, match=r"bad-outcome\.json.*vectors/0/outcome"):
        load_results([results["reference"], bad])
