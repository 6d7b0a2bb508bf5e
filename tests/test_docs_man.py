"""The man pages: committed, current, installed where ``man`` looks, and shell completion works.

``docs/man/*.1`` is built by ``sphinx-build -b man docs docs/man`` from the same click
definitions as the CLI page; the wheel installs the pages into ``share/man/man1`` (the
``shared-data`` table of pyproject.toml). A page that no longer matches a fresh build, or a tool
without a page, fails here. Without Sphinx, hatchling or ``man`` the affected tests skip with
the reason, unless ADDCOW_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .conftest import ROOT

MAN = ROOT / "docs" / "man"
#: Every click CLI of the package (``addcow-impl`` is a plain argv adapter, without a page).
TOOLS = ("addcow", "addcow-check", "addcow-conformance", "addcow-vectors")


def _need(what: str, present: bool, hint: str) -> None:
    if present:
        return
    reason = f"{what} is needed ({hint})"
    if os.environ.get("ADDCOW_REQUIRE_TOOLS") == "1":
        pytest.fail(reason + "; ADDCOW_REQUIRE_TOOLS=1")
    pytest.skip(reason)


def _body(page: Path) -> list[str]:
    """A man page without its roff comments (they name the docutils version that wrote it)."""
    return [line for line in page.read_text(encoding="utf-8").splitlines()
            if not line.startswith('.\\"')]


def test_every_tool_has_a_committed_page_and_the_wheel_installs_it() -> None:
    committed = sorted(p.name for p in MAN.glob("*.1"))
    assert committed == sorted(f"{t}.1" for t in TOOLS)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shared = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    assert shared == {f"docs/man/{t}.1": f"share/man/man1/{t}.1" for t in TOOLS}
    scripts = pyproject["project"]["scripts"]
    assert set(TOOLS) <= set(scripts)


def test_committed_man_pages_equal_a_fresh_build(tmp_path: Path) -> None:
    _need("sphinx", importlib.util.find_spec("sphinx") is not None, "pip install -e '.[docs]'")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "man",
         "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "man")],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    fresh = sorted(p.name for p in (tmp_path / "man").glob("*.1"))
    assert fresh == sorted(f"{t}.1" for t in TOOLS)
    stale = [name for name in fresh if _body(tmp_path / "man" / name) != _body(MAN / name)]
    assert not stale, (f"docs/man/ is out of date for {stale}: rebuild it with "
                       "`sphinx-build -b man docs docs/man`")


def test_each_page_documents_its_subcommands() -> None:
    """A page holds a section per subcommand of its click group, and the release date."""
    text = (MAN / "addcow.1").read_text(encoding="utf-8")
    for sub in ("create", "info", "map", "read", "write", "hydrate", "serve"):
        assert re.search(rf'^\.SS "?{sub}"?$', text, re.MULTILINE), sub
    assert re.search(r'^\.TH "ADDCOW" "1" "\d{4}-\d{2}-\d{2}"', text, re.MULTILINE)


@pytest.mark.slow
def test_man_finds_the_page_after_a_wheel_install(tmp_path: Path) -> None:
    _need("man", shutil.which("man") is not None, "apt-get install man-db")
    _need("hatchling", importlib.util.find_spec("hatchling") is not None,
          "pip install -e '.[test]'")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, timeout=300,
                   capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("addcow-*.whl")
    # A venv of its own: ``pip install --prefix`` from this interpreter would first uninstall
    # the package from the environment running the tests.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "pip"), "--disable-pip-version-check", "-q", "install",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=300,
                   capture_output=True)
    manpath = venv / "share" / "man"
    for tool in TOOLS:
        found = subprocess.run(["man", "-M", str(manpath), "-w", tool], capture_output=True,
                               text=True, timeout=60, check=False)
        assert found.returncode == 0, (tool, found.stderr)
        assert Path(found.stdout.strip()) == manpath / "man1" / f"{tool}.1"
    shown = subprocess.run(["man", "-M", str(manpath), "-P", "cat", "addcow"],
                           capture_output=True, text=True, timeout=60, check=False,
                           env={**os.environ, "MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
    assert shown.returncode == 0, shown.stderr
    assert "addcow - create, inspect and modify add-cow disk images" in shown.stdout


#: The completion lines of the CLI page: ``eval "$(_ADDCOW_COMPLETE=bash_source addcow)"``.
_COMPLETION_RE = re.compile(r'eval "\$\((_[A-Z_]+_COMPLETE)=bash_source ([a-z-]+)\)"')


def test_the_documented_completion_lines_produce_bash_completion() -> None:
    documented = _COMPLETION_RE.findall((ROOT / "docs" / "cli.rst").read_text(encoding="utf-8"))
    assert sorted(tool for _, tool in documented) == sorted(TOOLS)
    bindir = Path(sys.executable).parent
    for var, tool in documented:
        exe = bindir / tool
        _need(tool, exe.exists(), "pip install -e .")
        out = subprocess.run([str(exe)], env={**os.environ, var: "bash_source"},
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, (tool, out.stderr)
        func = "_" + tool.replace("-", "_") + "_completion"
        assert f"{func}()" in out.stdout
        assert f"complete -o nosort -F {func} {tool}" in out.stdout
