"""The results page: every row in the table with its verdict, units per metric, plots, notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.measure import Row, Stats, constant
from bench.report import fmt_value, merge_results, render_rst, write_json


def _rows() -> list[Row]:
    return [
        Row("check", "1 TiB", "addcow-check", "qemu-img check", Stats((0.3, 0.2, 0.4)),
            Stats((0.5,)), "<= 1.0x", 1.0, False, extra={"x": 1 << 40, "note": "fast"}),
        Row("check", "64 TiB", "addcow-check", "qemu-img check", Stats((2.0,)),
            Stats((1.0,)), "", None, False, extra={"x": 64 << 40, "slope": 1.02}),
        Row("rss", "1 PiB", "python", "100 MiB budget", Stats((150.0 * 1024,)),
            constant(100 * 1024), "< 100 MiB", 1.0, False, metric="KiB"),
    ]


@pytest.mark.parametrize(("value", "metric", "text"), [
    (0.0000421, "time", "42 µs"), (0.25, "time", "250.0 ms"), (12.5, "time", "12.50 s"),
    (2048.0, "KiB", "2.0 MiB"), (1.234, "slope", "1.23")])
def test_values_are_shown_in_their_unit(value: float, metric: str, text: str) -> None:
    assert fmt_value(value, metric) == text


def test_page_lists_every_row_with_its_verdict_and_draws_plots(tmp_path: Path) -> None:
    js = tmp_path / "r.json"
    write_json(_rows(), {"nbd": "needs nbdkit"}, js, {"repeats": 3}, {"bad": "Boom: x"})
    notes = tmp_path / "notes.rst"
    notes.write_text("Analysis\n--------\n\nProfiles here.\n")
    rst = tmp_path / "guides" / "benchmarks.rst"
    rst.parent.mkdir()
    render_rst(js, rst, tmp_path / "_static" / "bench", notes)
    text = rst.read_text()
    assert text.count(".. rubric:: ") == 2  # one table per scenario
    assert text.count("   * - ") == 5  # two headers + three rows
    assert "addcow-check: 300.0 ms" in text  # the median, not the first run
    for verdict in ("<= 1.0x: yes", "< 100 MiB: **no**", "—"):
        assert f"     - {verdict}\n" in text
    assert text.count('<div style="overflow-x: auto') == 2  # each table scrolls on its own
    assert "python: 150.0 MiB" in text
    assert "*check / 1 TiB*: fast" in text
    assert "- nbd: needs nbdkit" in text
    assert "- bad: ``Boom: x``" in text
    assert text.rstrip().endswith("Profiles here.")
    assert ".. figure:: ../_static/bench/check.png" in text
    assert (tmp_path / "_static" / "bench" / "check.png").stat().st_size > 1000
    assert not (tmp_path / "_static" / "bench" / "rss.png").exists()  # one point: no plot


def test_profiles_are_embedded_as_text_blocks(tmp_path: Path) -> None:
    js = tmp_path / "r.json"
    write_json(_rows()[:1], {}, js, {})
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "random-reads.txt").write_text("100.0% run\n`- 70.0% AddCowImage.read\n")
    rst = tmp_path / "benchmarks.rst"
    render_rst(js, rst, tmp_path / "img", None, profiles)
    text = rst.read_text()
    assert "<details><summary><code>random-reads</code></summary>" in text
    assert ".. code-block:: text\n\n   100.0% run\n" in text
    assert "   `- 70.0% AddCowImage.read" in text
    assert text.index("100.0% run") < text.index("</div></details>")


def test_command_lines_are_literals_so_dashes_survive(tmp_path: Path) -> None:
    """Smart quotes would render ``--impl`` as an en dash followed by "impl"."""
    row = Row("kit", "108 vectors", "--impl addcow-impl", "copy", Stats((2.0,)), Stats((1.0,)),
              "", None, False, extra={"note": "nbdcopy --flush and fio --rw=randread, -t"})
    js = tmp_path / "r.json"
    write_json([row], {}, js, {})
    rst = tmp_path / "benchmarks.rst"
    render_rst(js, rst, tmp_path / "img")
    text = rst.read_text()
    assert "     - ``--impl addcow-impl``: 2.00 s" in text
    assert "nbdcopy ``--flush`` and fio ``--rw=randread,`` ``-t``" not in text
    assert "nbdcopy ``--flush`` and fio ``--rw=randread``, ``-t``" in text


def test_merge_replaces_only_the_rerun_scenarios_in_place() -> None:
    def row(scn: str, variant: str) -> dict[str, object]:
        return {"scenario": scn, "variant": variant}
    old = {"meta": {"started": "then", "ran": {"a": 1, "b": 2, "c": 1}},
           "rows": [row("a", "1"), row("b", "1"), row("b-extra", "1"), row("c", "1")],
           "skipped": {"b": "old reason", "c": "kept"}, "errors": {"b": "old"}}
    new = {"meta": {"started": "now", "minutes": 2.0, "repeats": 5, "ran": {"b": 3}},
           "rows": [row("b", "2"), row("b-extra", "2"), row("d", "1")],
           "skipped": {}, "errors": {}}
    merged = merge_results(old, new, {"b"})
    assert [(r["scenario"], r["variant"]) for r in merged["rows"]] == [
        ("a", "1"), ("b", "2"), ("b-extra", "2"), ("d", "1"), ("c", "1")]
    assert merged["meta"]["started"] == "then"
    assert merged["meta"]["ran"] == {"a": 1, "c": 1, "b": 3}
    assert merged["meta"]["reruns"] == [{"scenarios": ["b"], "started": "now",
                                         "minutes": 2.0, "repeats": 5}]
    assert merged["skipped"] == {"c": "kept"}
    assert merged["errors"] == {}
