"""Clause links: versioned by default, re-rooted by ``--docs-url`` or ``$ADDCOW_DOCS_URL`` (a local
build included), relative in the JSON report, and the schemas' ``$id`` URLs exist on the site."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from addcow_conformance.checker.cli import main
from addcow_conformance.checker.report import REPORT_VERSION

from addcow_ref.format.rules import (
    DOCS_SITE,
    DOCS_URL_ENV,
    docs_base_url,
    get_rule,
    rule_url,
    spec_version,
)

from ..test_spec_docs import site  # noqa: F401 - the session-scoped site build, shared

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "vectors" / "v2" / "header" / "magic-qcow2" / "image.add-cow"
SCHEMAS = ROOT / "conformance" / "addcow_conformance" / "schemas"

pytestmark = pytest.mark.skipif(not BAD.is_file(), reason="vectors not generated yet")


@pytest.fixture(autouse=True)
def _no_docs_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DOCS_URL_ENV, raising=False)


def test_default_links_name_the_spec_version_not_latest() -> None:
    assert docs_base_url() == f"{DOCS_SITE}{spec_version()}/"
    assert "/latest/" not in rule_url("HDR-MAGIC")
    assert rule_url("HDR-MAGIC") == (f"https://addcow.readthedocs.io/en/{spec_version()}/"
                                     "spec/header.html#rule-hdr-magic")


@pytest.mark.parametrize(("base", "root"), [
    ("https://mirror.example/addcow", "https://mirror.example/addcow/"),
    ("https://mirror.example/addcow/", "https://mirror.example/addcow/"),
    ("file:///srv/addcow/docs/_build/html", "file:///srv/addcow/docs/_build/html/"),
])
def test_a_given_base_is_used_as_the_root(base: str, root: str) -> None:
    assert docs_base_url(base) == root
    assert rule_url("HDR-MAGIC", base) == root + "spec/header.html#rule-hdr-magic"


def test_a_plain_directory_becomes_a_file_url(tmp_path: Path) -> None:
    assert docs_base_url(str(tmp_path)) == tmp_path.resolve().as_uri() + "/"


def test_environment_sets_the_root_and_an_option_beats_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DOCS_URL_ENV, "https://env.example/docs")
    assert rule_url("HDR-MAGIC") == "https://env.example/docs/spec/header.html#rule-hdr-magic"
    assert docs_base_url("https://opt.example/") == "https://opt.example/"


def _human(capfd: pytest.CaptureFixture[str], *args: str) -> str:
    assert main([*args, str(BAD)]) == 2
    return capfd.readouterr().out.splitlines()[0]


def test_human_line_ends_with_link_and_explain_hint(capfd: pytest.CaptureFixture[str]) -> None:
    line = _human(capfd)
    assert line.endswith(f"  {rule_url('HDR-MAGIC')}  (addcow-check --explain HDR-MAGIC)")


def test_docs_url_option_and_environment_reroot_human_links(
        capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    local = tmp_path / "html"
    assert f"  {local.as_uri()}/spec/header.html#rule-hdr-magic  " in _human(
        capfd, "--docs-url", str(local))
    monkeypatch.setenv(DOCS_URL_ENV, "file:///opt/docs/html")
    assert "  file:///opt/docs/html/spec/header.html#rule-hdr-magic  " in _human(capfd)


def test_json_report_carries_root_and_relative_clause(
        capfd: pytest.CaptureFixture[str]) -> None:
    import jsonschema

    assert main(["--output", "json", "--docs-url", "https://m.example/d", str(BAD)]) == 2
    doc = json.loads(capfd.readouterr().out)
    assert doc["report_version"] == REPORT_VERSION == 2
    assert doc["docs_url"] == "https://m.example/d/"
    [finding] = doc["images"][0]["findings"]
    assert finding["clause"] == get_rule("HDR-MAGIC").url_path
    assert finding["anchor"] == doc["docs_url"] + finding["clause"]
    schema = json.loads((SCHEMAS / "check-report.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(doc)


def test_schema_still_accepts_a_version_1_report(capfd: pytest.CaptureFixture[str]) -> None:
    """Published consumers may hold version 1 reports: the schema reads both."""
    import jsonschema

    assert main(["--output", "json", str(BAD)]) == 2
    doc = json.loads(capfd.readouterr().out)
    doc["report_version"] = 1
    del doc["docs_url"]
    for image in doc["images"]:
        for finding in image["findings"]:
            del finding["clause"]
    schema = json.loads((SCHEMAS / "check-report.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(doc)


def test_every_schema_is_on_the_built_site_at_its_id(site: Path) -> None:  # noqa: F811
    schemas = sorted(SCHEMAS.glob("*.schema.json"))
    assert schemas
    for schema in schemas:
        schema_id = json.loads(schema.read_text("utf-8"))["$id"]
        assert schema_id.startswith(DOCS_SITE), schema_id
        rel = schema_id.removeprefix(DOCS_SITE).split("/", 1)[1]  # drop the version directory
        published = site / rel
        assert published.is_file(), f"{schema_id}: {rel} is not in the built site"
        assert published.read_bytes() == schema.read_bytes()
