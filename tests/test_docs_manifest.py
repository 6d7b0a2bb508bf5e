"""The manifest format page renders the suite's README, its schema and its flags.

``docs/guides/manifest-format.rst`` is what an implementer writing a harness in another
language reads instead of 35 KB of JSON Schema. Read back from the built page: the README is
rendered (Markdown headings become sections, no raw Markdown left), every property of the
schema has a row with its path, every flag of ``manifest.json`` has a row with the outcomes
it allows, and the vectors listed for a flag are exactly the ones that carry it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import ROOT
from .test_spec_docs import _soup, site  # noqa: F401 - the session-scoped site build

PAGE = Path("guides") / "manifest-format.html"


def _json(name: str) -> Any:
    return json.loads((ROOT / "vectors" / name).read_text("utf-8"))


def _rows(site: Path, caption: str) -> list[list[str]]:  # noqa: F811
    soup = _soup(site / PAGE)
    [table] = [t for t in soup.select("table.addcow-manifest-table")
               if caption in t.caption.get_text()]
    # Inline literals are elements of their own: joined with " ", a list reads "a , b".
    return [[td.get_text(" ", strip=True).replace(" ,", ",") for td in tr.find_all("td")]
            for tr in table.select("tbody tr")]


def test_readme_is_rendered_as_html(site: Path) -> None:  # noqa: F811
    soup = _soup(site / PAGE)
    headings = [h.get_text(strip=True).rstrip("¶") for h in soup.select("h2, h3")]
    readme = (ROOT / "vectors" / "README.md").read_text("utf-8")
    expected = [line.lstrip("#").strip() for line in readme.splitlines()
                if line.startswith("#")]
    assert all(h in headings for h in expected), (expected, headings)
    text = soup.select_one("article").get_text()
    assert "## " not in text, "raw Markdown heading on the page"
    assert "`manifest.json`" not in text, "raw Markdown code span on the page"


def _schema_paths(node: dict[str, Any], root: dict[str, Any], path: str) -> set[str]:
    """The object property paths of the schema (the rows that must exist, at least)."""
    if "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[1]]
    out: set[str] = set()
    for name, sub in node.get("properties", {}).items():
        p = f"{path}.{name}" if path else name
        out |= {p} | _schema_paths(sub, root, p)
    if isinstance(node.get("additionalProperties"), dict):
        out |= _schema_paths(node["additionalProperties"], root, f"{path}.{{name}}")
    items = node.get("items")
    if isinstance(items, dict) and "oneOf" not in items:
        out |= _schema_paths(items, root, f"{path}[]")
    return out


def test_every_schema_property_has_a_row(site: Path) -> None:  # noqa: F811
    schema = _json("manifest.schema.json")
    shown = {row[0].split(" ")[0] for row in _rows(site, "property by property")}
    expected = _schema_paths(schema, schema, "")
    assert {"vectors[].files[].sha256", "flags.{name}.policy_choices",
            "vectors[].expect.info.cluster_bits"} <= expected
    assert expected <= shown, sorted(expected - shown)
    rows = {row[0]: row for row in _rows(site, "property by property")}
    assert "required" in rows["vectors[].id"][1]
    assert "optional" in rows["vectors[].files[].synth"][1]
    for flag in _json("manifest.json")["flags"]:
        assert flag in rows["flags"][2], f"flag {flag} missing from the flags property's keys"


def test_every_flag_has_its_outcomes_and_vectors(site: Path) -> None:  # noqa: F811
    manifest = _json("manifest.json")
    rows = {row[0]: row for row in _rows(site, "policy_choices")}
    assert set(rows) == set(manifest["flags"])
    for name, flag in manifest["flags"].items():
        assert rows[name][1] == ", ".join(flag["policy_choices"])
        # The site keeps smart quotes in prose: an apostrophe is drawn curly.
        assert rows[name][2].replace("\u2019", "'") == flag["description"]
        carriers = sorted(v["id"] for v in manifest["vectors"] if name in v["flags"])
        assert sorted(rows[name][3].replace(",", " ").split()) == carriers or (
            not carriers and rows[name][3] == "—")
