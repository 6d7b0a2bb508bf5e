"""The rendered spec agrees with its sources: the schema, the rule registry and the RFC 2119 rule.

The site is built once per test session with the command of ``tox -e docs`` (``-W -n``: any
warning fails), then the HTML is compared with ``addcow_ref.format.layout.field_table`` and
``addcow_ref/format/rules.json``. Without Sphinx the build tests skip, unless
ADDCOW_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from addcow_ref.format.layout import field_table
from addcow_ref.format.rules import all_rules
from addcow_ref.format.schema import HEADER_V1, HEADER_V2

from .conftest import ROOT

SPEC = ROOT / "spec"
DOCS = ROOT / "docs"

#: RFC 2119 / RFC 8174 key words; they carry their special meaning only in capitals.
KEYWORD_RE = re.compile(r"\b(MUST|REQUIRED|SHALL|SHOULD|RECOMMENDED|MAY|OPTIONAL)\b")
#: The page that defines the key words may quote them.
KEYWORD_EXEMPT = {"conventions.rst"}
_DIRECTIVE_RE = re.compile(r"^(?P<indent> *)\.\. rule::")


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        if os.environ.get("ADDCOW_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{module} is required (ADDCOW_REQUIRE_TOOLS=1); "
                        "pip install -e '.[docs,test]'")
        pytest.skip(f"{module} is not installed; pip install -e '.[docs,test]' to build the docs")


#: The one site build of a test session; other test modules (the browser tests) import the
#: ``site`` fixture, which pytest then instantiates once per module: they share this build.
_BUILT: list[Path] = []


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the whole site once, exactly as ``tox -e docs`` does, into a temporary directory."""
    for module in ("sphinx", "furo", "sphinx_click", "bs4"):
        _require(module)
    if _BUILT:
        return _BUILT[0]
    out = tmp_path_factory.mktemp("site")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
           "-d", str(out / "doctrees"), str(DOCS), str(out / "html")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600,
                          check=False)
    assert proc.returncode == 0, (
        f"sphinx-build -W -n failed (exit {proc.returncode}):\n{proc.stderr}\n{proc.stdout}")
    _BUILT.append(out / "html")
    return out / "html"


def _soup(path: Path) -> Any:
    from bs4 import BeautifulSoup

    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _table_rows(site: Path, page: str, table_id: str) -> list[dict[str, str]]:
    """The body rows of a generated field table, keyed by column header."""
    table = _soup(site / page).find("table", id=table_id)
    assert table is not None, f"{page} has no table #{table_id}"
    headers = [th.get_text(" ", strip=True) for th in table.find("thead").find_all("th")]
    rows = []
    for tr in table.find("tbody").find_all("tr"):
        cells = [td.get_text(" ", strip=True) for td in tr.find_all("td")]
        rows.append(dict(zip(headers, cells, strict=True)))
    return rows


@pytest.mark.parametrize(("struct", "page", "table_id"), [
    (HEADER_V2, "spec/header.html", "fields-header-v2"),
    (HEADER_V1, "spec/legacy.html", "fields-header-v1"),
], ids=["v2", "v1"])
def test_field_table_in_the_html_is_the_schema(site: Path, struct: Any, page: str,
                                                table_id: str) -> None:
    """Offsets in hex (as ``addcow-check`` prints them) and decimal; the type under the name."""
    rendered = [(r["Offset"], r["Size"], r["Field"]) for r in _table_rows(site, page, table_id)]
    expected = [(f"0x{f.offset:04x} {f.offset}", str(f.size), f"{f.name} {f.ctype}")
                for f in field_table(struct)]
    assert rendered == expected
    table = _soup(site / page).find("table", id=table_id)
    names = [c.get_text() for c in table.find_all("code", class_="addcow-field-name")]
    assert names == [f.name for f in field_table(struct)]


def test_field_table_cites_the_schemas_rules_with_links(site: Path) -> None:
    table = _soup(site / "spec/header.html").find("table", id="fields-header-v2")
    for info, tr in zip(field_table(HEADER_V2), table.find("tbody").find_all("tr"), strict=True):
        links = tr.find("td", class_="addcow-col-rules").find_all("a")
        assert [a.get_text(strip=True) for a in links] == list(info.rules)
        for a, rule_id in zip(links, info.rules, strict=True):
            assert a["href"].endswith(f"#rule-{rule_id.lower()}"), (info.name, a["href"])


@pytest.mark.parametrize(("struct", "page", "collapsed"), [
    (HEADER_V2, "spec/header.html", 0),
    (HEADER_V1, "spec/legacy.html", 3),
], ids=["v2", "v1"])
def test_layout_diagram_is_generated_from_the_schema(site: Path, struct: Any, page: str,
                                                      collapsed: int) -> None:
    """Every field is drawn; rows wholly inside one long field collapse into one "..." row."""
    svg = _soup(site / page).find("svg", class_="addcow-layout")
    assert svg is not None, f"no byte-layout SVG on {page}"
    drawn = {g["data-field"] for g in svg.find_all("g", attrs={"data-field": True})}
    assert drawn == {f.name for f in field_table(struct)}
    gaps = [t for t in svg.find_all("text") if "continues" in t.get_text()]
    assert len(gaps) == collapsed


def test_every_rule_has_its_anchor_on_its_page(site: Path) -> None:
    pages: dict[str, Any] = {}
    for rule in all_rules().values():
        soup = pages.setdefault(rule.page, _soup(site / f"{rule.page}.html"))
        box = soup.find(id=rule.anchor)
        assert box is not None, f"{rule.id}: no #{rule.anchor} in {rule.page}.html"
        assert "addcow-rule" in box.get("class", []), rule.id
        head = box.find(class_="addcow-rule-head").get_text(" ", strip=True)
        for shown in (rule.id, rule.level, rule.severity):
            assert shown in head, (rule.id, head)


def _spec_toc_order() -> list[str]:
    lines = (SPEC / "index.rst").read_text(encoding="utf-8").split(".. toctree::")[1]
    return [f"spec/{ln.strip()}" for ln in lines.splitlines()
            if ln.startswith("   ") and ln.strip() and not ln.strip().startswith(":")]


def test_rule_index_lists_every_rule_by_page_with_working_links(site: Path) -> None:
    """One table per spec page, in the spec's order; each row links to the rule, names the
    section that holds it, and shows the whole clause with its inline literals rendered."""
    soup = _soup(site / "rules.html")
    rules = all_rules()
    seen: list[str] = []
    pages: list[str] = []
    for table in soup.find_all("table", class_="addcow-rule-index"):
        page = table["id"].removeprefix("addcow-rule-index-").replace("-", "/", 1)
        pages.append(page)
        ids = []
        for tr in table.find("tbody").find_all("tr"):
            a = tr.find("td", class_="addcow-col-rule").find("a")
            rule = rules[a.get_text(strip=True)]
            assert a["href"] == rule.url_path, (rule.id, a["href"])
            assert rule.page == page, (rule.id, page)
            section = tr.find("td", class_="addcow-col-section").find("a")
            assert section is not None, rule.id
            assert section["href"].startswith(f"{page}.html#"), (rule.id, section["href"])
            duty = tr.find("span", class_="addcow-reader-duty")
            assert (duty.get_text() if duty else None) == (
                f"reader: {rule.reader}" if getattr(rule, "reader", None) else None), rule.id
            clause = tr.find("td", class_="addcow-col-clause")
            assert "``" not in clause.get_text(), (rule.id, clause.get_text())
            ids.append(rule.id)
        assert ids == sorted(ids), page
        seen += ids
    assert sorted(seen) == sorted(rules)
    assert len(seen) == len(set(seen))
    assert pages == [p for p in _spec_toc_order() if any(r.page == p for r in rules.values())]
    literals = soup.find_all("code", string="backing_format")
    assert len(literals) >= 5, "inline literals of the clauses are not rendered"


@pytest.mark.parametrize(("prog", "target"), [
    ("addcow", "addcow_ref.cli.main:cli"),
    ("addcow-check", "addcow_conformance.checker.cli:cli"),
    ("addcow-conformance", "addcow_conformance.harness.cli:cli"),
    ("addcow-vectors", "addcow_conformance.vectors.cli:main_group"),
])
def test_cli_reference_has_a_section_per_command(site: Path, prog: str, target: str) -> None:
    """Each tool and each of its subcommands, read from the click definitions, has a section."""
    import click

    module, _, name = target.partition(":")
    command = getattr(__import__(module, fromlist=[name]), name)
    expected = {prog} | {f"{prog}-{sub}" for sub in getattr(command, "commands", {})}
    soup = _soup(site / "cli.html")
    missing = [sid for sid in sorted(expected) if soup.find("section", id=sid) is None]
    assert isinstance(command, click.Command)
    assert not missing, f"cli.html lacks sections {missing}"


def test_cli_reference_copies_as_typed(site: Path) -> None:
    """Examples are literal blocks, dashes stay ``--`` (no smart dashes), quoted values are code,
    and sphinx-click's required marker is bold, not the literal ``**Required**``."""
    soup = _soup(site / "cli.html")
    text = soup.get_text()
    assert "\u2013" not in text, "an en dash on the CLI page: smart quotes turned -- into one"
    assert "**Required**" not in text
    assert len(soup.find_all("strong", string="Required")) >= 3
    examples = [p for p in soup.find_all("p") if p.get_text(strip=True) == "Examples:"]
    assert len(examples) >= 2
    for p in examples:
        block = p.find_next_sibling()
        assert block is not None, p
        assert block.find("pre") is not None, p
    assert "addcow write --offset 1M" in examples[0].find_next_sibling().get_text()
    assert soup.find("code", string="HDR-*") is not None


def test_coverage_page_links_rule_ids_in_descriptions(site: Path) -> None:
    soup = _soup(site / "guides/vector-coverage.html")
    row = soup.find(id="vector-bitmap--file-ends-at-bitmap-offset").find_parent("tr")
    links = row.find_all("a", href=re.compile(r"#rule-"))
    assert [a.get_text() for a in links] == ["BMP-LENGTH"]
    assert links[0]["href"] == "../spec/bitmap.html#rule-bmp-length"


def test_rule_box_leads_with_its_id_and_separates_level_from_severity(site: Path) -> None:
    box = _soup(site / "spec/header.html").find(id="rule-hdr-magic")
    head = box.find(class_="addcow-rule-head")
    first = head.find(True)
    assert first.name == "a", first
    assert "addcow-rule-id" in first["class"], first
    assert first.get_text(strip=True) == "HDR-MAGIC"
    level = head.find(class_="addcow-badge-level-must")
    severity = head.find(class_="addcow-badge-severity-error")
    assert level is not None
    assert severity is not None
    assert level.get_text(strip=True) == "MUST"
    assert severity.get_text(" ", strip=True) == "severity error"


def test_layout_diagram_has_a_legend_for_every_colour(site: Path) -> None:
    figure = _soup(site / "spec/header.html").find("figure", class_="addcow-layout-figure")
    drawn = {g["data-kind"] for g in figure.find_all("g", attrs={"data-kind": True})}
    legend = {li["data-kind"] for li in figure.find("ul", class_="addcow-legend").find_all("li")}
    assert drawn == legend
    assert len(drawn) >= 5
    fills = {g.find("rect")["fill"] for g in figure.find_all("g", attrs={"data-kind": True})}
    assert len(fills) == len(drawn), "one fill per kind of field"
    assert figure.find("svg").find_parent("div", class_="addcow-scroll") is not None



def test_each_rule_shows_the_vectors_of_the_manifest_that_test_it(site: Path) -> None:
    """The "Tested by" lists of the spec pages equal vectors/manifest.json, and every link lands
    on the vector's row of the coverage page."""
    import json

    manifest = json.loads((ROOT / "vectors" / "manifest.json").read_text(encoding="utf-8"))
    obeys: dict[str, list[str]] = {}
    breaks: dict[str, list[str]] = {}
    for v in manifest["vectors"]:
        for rule in v["exercises"] if v["result"] == "valid" else []:
            obeys.setdefault(rule, []).append(v["id"])
        for rule in v["violates"]:
            breaks.setdefault(rule, []).append(v["id"])
    coverage = _soup(site / "guides/vector-coverage.html")
    assert {c.get_text(strip=True) for c in coverage.find_all("code", class_="addcow-vector")} \
        == {v["id"] for v in manifest["vectors"]}
    pages: dict[str, Any] = {}
    for rule in all_rules().values():
        soup = pages.setdefault(rule.page, _soup(site / f"{rule.page}.html"))
        para = soup.find(id=rule.anchor).find("p", class_="addcow-tested-by")
        assert para is not None, rule.id
        for cls, expected in (("addcow-obeyed-by", obeys), ("addcow-broken-by", breaks)):
            links = para.find("span", class_=cls).find_all("a")
            assert [a.get_text(strip=True) for a in links] == sorted(expected.get(rule.id, [])), (
                rule.id, cls)
            for a in links:
                page, _, anchor = a["href"].partition("#")
                assert page == "../guides/vector-coverage.html", a["href"]
                target = coverage.find(id=anchor)
                assert target is not None, a["href"]
                assert target.get_text(strip=True) == a.get_text(strip=True)
    magic = pages["spec/header"].find(id="rule-hdr-magic").find("p", class_="addcow-tested-by")
    assert "header/magic-last-byte-fe" in magic.find("span", class_="addcow-broken-by").get_text()


def _rule_block(text: str, rule_id: str) -> str:
    """The ``.. rule:: rule_id`` directive of ``text``, with its options and body."""
    lines = text.splitlines()
    start = lines.index(f".. rule:: {rule_id}")
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith(" ")):
        end += 1
    return "\n".join(lines[start:end]) + "\n"


@pytest.mark.parametrize(("mutate", "complaint"), [
    (lambda b: b, None),
    (lambda b: b.replace(":severity: error", ":severity: warning"),
     ":severity: is 'warning' here but 'error'"),
    (lambda b: b.replace("MUST refuse", "MUST reject"), "text is"),
    (lambda b: b.replace(":field: magic", ":field: version"), ":field: is 'version'"),
], ids=["unchanged", "severity", "text", "field"])
def test_a_rule_that_disagrees_with_rules_json_fails_the_build(
        tmp_path: Path, mutate: Any, complaint: str | None) -> None:
    """The extension compares each rule block with the registry the checker imports."""
    _require("sphinx")
    block = mutate(_rule_block((SPEC / "header.rst").read_text(encoding="utf-8"), "HDR-MAGIC"))
    src = tmp_path / "src"
    (src / "spec").mkdir(parents=True)
    (src / "conf.py").write_text(
        f"import sys\nsys.path[:0] = [{str(ROOT)!r}, {str(DOCS / '_ext')!r}]\n"
        "extensions = ['addcow_spec']\n", encoding="utf-8")
    (src / "index.rst").write_text("Index\n=====\n\n.. toctree::\n\n   spec/header\n",
                                   encoding="utf-8")
    (src / "spec" / "header.rst").write_text(f"Header\n======\n\n{block}", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(src), str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    disagreements = [line for line in proc.stderr.splitlines() if "disagrees with" in line]
    if complaint is None:
        assert disagreements == [], proc.stderr
        # The other rules of rules.json are not rendered in this one-page site: still an error.
        assert "no `rule` directive renders it" in proc.stderr
    else:
        assert proc.returncode != 0
        assert any("HDR-MAGIC" in line and complaint in line for line in disagreements), (
            proc.stderr)


# --- The RFC 2119 rule: key words in capitals only inside rule boxes -------------------------


def keywords_outside_rules(text: str) -> Iterator[tuple[int, str]]:
    """(line number, key word) of each capitalised key word outside a ``rule`` directive."""
    inside_indent: int | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if inside_indent is not None:
            if not line.strip() or len(line) - len(line.lstrip(" ")) > inside_indent:
                continue
            inside_indent = None
        m = _DIRECTIVE_RE.match(line)
        if m:
            inside_indent = len(m.group("indent"))
            continue
        for word in KEYWORD_RE.findall(line):
            yield number, word


def test_the_keyword_scanner_sees_prose_and_skips_rule_bodies() -> None:
    text = (
        "Prose that MUST be flagged.\n\n"
        ".. rule:: HDR-X\n   :level: SHOULD\n\n   Inside, a writer SHOULD do this.\n\n"
        "   Still inside, it MAY.\n\n"
        "Back outside: OPTIONAL, and must in lower case is fine.\n"
        "  .. rule:: HDR-Y\n\n     nested MUST\n  SHALL after the nested block\n"
    )
    assert list(keywords_outside_rules(text)) == [
        (1, "MUST"), (10, "OPTIONAL"), (14, "SHALL")]


def test_the_exempt_page_is_the_one_that_defines_the_key_words() -> None:
    for name in KEYWORD_EXEMPT:
        text = (SPEC / name).read_text(encoding="utf-8")
        assert ":rfc:`2119`" in text, name
        assert ":rfc:`8174`" in text, name


@pytest.mark.parametrize("path", sorted(p for p in SPEC.glob("*.rst")
                                        if p.name not in KEYWORD_EXEMPT), ids=lambda p: p.name)
def test_rfc2119_keywords_appear_only_inside_rules(path: Path) -> None:
    found = list(keywords_outside_rules(path.read_text(encoding="utf-8")))
    assert not found, (
        f"{path.name}: key words in capitals outside a `.. rule::` block at "
        + ", ".join(f"line {n} ({w})" for n, w in found)
        + "; wrap the sentence in a rule with an ID, or write the word in lower case")
