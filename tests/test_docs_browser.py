"""The site, rendered in a real browser, is usable at desktop and phone widths.

Static checks of the HTML cannot see layout: whether a table is wider than furo's content
column, whether a rule ID breaks at a hyphen, whether a diagram shrinks until its text is
unreadable. These tests load the built pages in headless Chromium (Debian's ``chromium``,
driven by Playwright) at 1280x900 and 412x900 and measure with JavaScript:

* no table, code block or SVG is wider than the content column unless it sits in a
  horizontally scrollable box (``overflow-x: auto``) that itself fits the column;
* at desktop width the field tables, the rule index and the layout diagrams fit without
  scrolling at all (they are what the pages are for);
* identifiers (rule IDs, vector IDs) never wrap inside themselves;
* the byte-layout SVG's 11 px labels are drawn at 9 px or more, so they stay readable.

Screenshots of every page and width (and the dark theme) go to ``docs/_build/screenshots/``
(``ADDCOW_SCREENSHOT_DIR`` overrides), for a person to look at. Without Chromium or Playwright
the tests skip with the reason, unless ADDCOW_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT
from .test_spec_docs import site  # noqa: F401 - the session-scoped site build, shared

CHROMIUM = os.environ.get("ADDCOW_CHROMIUM", "/usr/bin/chromium")
#: Flags for a quiet, offline, reproducible headless run (no sandbox: CI runs as root).
#: Playwright gives each launch a fresh temporary profile (``--user-data-dir``) of its own.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
WIDTHS = (1280, 412)
PAGES = ("index", "spec/header", "spec/layout", "spec/legacy", "rules",
         "guides/vector-coverage", "cli", "guides/qemu")
#: What must fit the column at desktop width without a scroll bar.
MUST_FIT_AT_DESKTOP = ("table.addcow-fields", "table.addcow-rule-index", "svg.addcow-layout",
                       "div.highlight-text pre")
#: Smallest acceptable rendered size of the diagram's labels, in CSS pixels.
MIN_SVG_TEXT_PX = 9.0

#: The measuring script, kept as JavaScript in its own file.
MEASURE_JS = (Path(__file__).parent / "test_docs_browser_measure.js").read_text(
    encoding="utf-8")



@dataclasses.dataclass(frozen=True)
class Measurement:
    """What the layout script found on one page at one width."""

    page: str
    width: int
    column: int
    too_wide: list[str]
    not_fitting: list[str]
    broken_ids: list[str]
    id_count: int
    svg_text_px: list[float]


def _require_browser() -> None:
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright (pip install -e '.[test]')")
    if not Path(CHROMIUM).is_file():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if missing:
        reason = "the browser tests need " + " and ".join(missing)
        if os.environ.get("ADDCOW_REQUIRE_TOOLS") == "1":
            pytest.fail(reason + " (ADDCOW_REQUIRE_TOOLS=1)")
        pytest.skip(reason)


def screenshot_dir() -> Path:
    return Path(os.environ.get("ADDCOW_SCREENSHOT_DIR", ROOT / "docs" / "_build" / "screenshots"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def measure(browser: Any, html_root: Path, page: str, width: int, *, dark: bool = False,
            shots: Path | None = None) -> Measurement:
    """Load ``page`` at ``width`` x 900, measure it, and screenshot it into ``shots``."""
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  color_scheme="dark" if dark else "light")
    try:
        tab = context.new_page()
        tab.goto((html_root / f"{page}.html").as_uri(), wait_until="load")
        found = tab.evaluate(MEASURE_JS, [width >= 1200, list(MUST_FIT_AT_DESKTOP)])
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            name = f"{page.replace('/', '_')}-{width}{'-dark' if dark else ''}.png"
            tab.screenshot(path=str(shots / name), full_page=True)
    finally:
        context.close()
    return Measurement(page, width, found["colWidth"], found["problems"], found["overflowing"],
                       found["broken"], found["idCount"], found["svgText"])


@pytest.fixture(scope="module")
def measurements(browser: Any, site: Path) -> dict[tuple[str, int], Measurement]:  # noqa: F811
    shots = screenshot_dir()
    if shots.exists():
        shutil.rmtree(shots)
    out = {(page, width): measure(browser, site, page, width, shots=shots)
           for width in WIDTHS for page in PAGES}
    for page in ("spec/header", "rules"):
        measure(browser, site, page, 1280, dark=True, shots=shots)
    return out


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", PAGES)
def test_nothing_is_wider_than_the_column_unless_it_scrolls(
        measurements: dict[tuple[str, int], Measurement], page: str, width: int) -> None:
    m = measurements[page, width]
    assert m.column > 0.5 * min(width, 736), m
    assert not m.too_wide, f"{page} at {width} px:\n" + "\n".join(m.too_wide)


@pytest.mark.parametrize("page", PAGES)
def test_tables_and_diagrams_fit_without_scrolling_at_desktop_width(
        measurements: dict[tuple[str, int], Measurement], page: str) -> None:
    m = measurements[page, 1280]
    assert not m.not_fitting, f"{page} at 1280 px:\n" + "\n".join(m.not_fitting)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", ["spec/header", "rules", "guides/vector-coverage"])
def test_identifiers_never_wrap_inside(measurements: dict[tuple[str, int], Measurement],
                                       page: str, width: int) -> None:
    m = measurements[page, width]
    assert m.id_count > 20, f"only {m.id_count} rule or vector IDs found on {page}"
    assert not m.broken_ids, f"{page} at {width} px breaks inside {sorted(set(m.broken_ids))}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", ["spec/header", "spec/legacy"])
def test_layout_diagram_text_stays_readable(measurements: dict[tuple[str, int], Measurement],
                                            page: str, width: int) -> None:
    m = measurements[page, width]
    assert m.svg_text_px, f"no layout diagram measured on {page}"
    assert min(m.svg_text_px) >= MIN_SVG_TEXT_PX, (
        f"{page} at {width} px draws the diagram's labels at {min(m.svg_text_px):.1f} px")


def test_screenshots_were_saved(measurements: dict[tuple[str, int], Measurement]) -> None:
    shots = sorted(p.name for p in screenshot_dir().glob("*.png"))
    expected = {f"{p.replace('/', '_')}-{w}.png" for p in PAGES for w in WIDTHS}
    assert expected <= set(shots), sorted(expected - set(shots))
    assert all((screenshot_dir() / s).stat().st_size > 1000 for s in shots)
