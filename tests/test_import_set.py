"""What the quick commands import: ``addcow-check`` and ``addcow info`` on a small image load
only what they use, so checking thousands of images in a loop (or the harness's command
adapters) costs little more than the interpreter's own start-up.

Each command runs in a fresh interpreter, with its output captured, and the test asserts on
``sys.modules`` afterwards: the import set, not the time (which a loaded machine would blur;
the ``startup`` benchmark times it).

The checker reads and validates headers through the field tables generated from the schema
(``addcow_ref/format/fieldtable.py``), so a small image's check never loads construct (whose
import, through ``construct.debug`` and ``pdb``, cost more than the check itself), nor the
schema module that declares the layout in construct's terms, nor ``importlib.resources`` for the
rule registry, nor what only a JSON report (``hashlib``) or a ``--docs-url`` (``urllib``) uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import addcow_ref

_PROBE = """
import contextlib, io, json, sys
from {module} import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        status = main({argv!r})
    except SystemExit as e:
        status = e.code
json.dump({{"status": status, "output": out.getvalue(), "modules": sorted(sys.modules)}},
          sys.stderr)
"""

#: Heavy or unrelated packages neither command may load for a small image.
NEVER = ("jsonschema", "tqdm", "numpy", "addcow_ref.ops.create", "addcow_ref.ops.upgrade",
         "addcow_ref.ops.convert", "addcow_ref.ops.commit", "addcow_ref.ops.rebase",
         "addcow_ref.ops.compare", "addcow_ref.cli.serve",
         "addcow_ref.cli.convert_cmd", "addcow_ref.cli.demo", "addcow_ref.cli.chain_cmds",
         "addcow_ref.cli.forge", "addcow_ref.cli.compare_cmds")


def _modules(module: str, argv: list[str]) -> tuple[int, str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(module=module, argv=argv)],
                          capture_output=True, text=True, check=True, timeout=60)
    result = json.loads(proc.stderr.strip().splitlines()[-1])
    return int(result["status"] or 0), str(result["output"]), list(result["modules"])


#: What the checker's path leaves out since issue 15 (section 2): see the module docstring.
CHECKER_NEVER = ("construct", "addcow_ref.format.schema", "addcow_ref.format.tablegen",
                 "importlib.resources", "hashlib", "urllib", "pathlib", "addcow_ref.ops",
                 "addcow_conformance.explain", "addcow_conformance.repair",
                 "concurrent.futures")


def _loaded(modules: list[str], prefix: str) -> list[str]:
    return [m for m in modules if m == prefix or m.startswith(prefix + ".")]


@pytest.fixture
def small_image(tmp_path: Path) -> Path:
    path = tmp_path / "small.add-cow"
    addcow_ref.create(str(path), size=1 << 20, image_file="small.raw")
    return path


def test_addcow_check_loads_no_image_engine(small_image: Path) -> None:
    status, output, modules = _modules("addcow_conformance.checker.cli", [str(small_image)])
    assert status == 0, output
    assert "CONFORMING" in output
    for name in (*NEVER, *CHECKER_NEVER, "addcow_ref.engine.image",
                 "addcow_ref.engine.bitmapcache", "addcow_ref.cli"):
        assert not _loaded(modules, name), (name, _loaded(modules, name))
    assert "addcow_ref.format.fieldtable" in modules  # the header was read, through the table


def test_a_json_report_loads_only_what_it_adds(small_image: Path) -> None:
    status, output, modules = _modules("addcow_conformance.checker.cli",
                                       ["--output", "json", str(small_image)])
    assert status == 0, output
    assert json.loads(output)["rules_digest"].startswith("sha256:")
    assert "hashlib" in modules
    for name in ("construct", "addcow_ref.format.schema", "importlib.resources"):
        assert not _loaded(modules, name), (name, _loaded(modules, name))


def test_addcow_info_loads_only_its_own_command(small_image: Path) -> None:
    status, output, modules = _modules("addcow_ref.cli.main", ["info", str(small_image)])
    assert status == 0, output
    assert "virtual size: 1 MiB" in output
    for name in (*NEVER, "addcow_conformance", "addcow_ref.cli.io_cmds",
                 "addcow_ref.cli.create_cmd", "addcow_ref.cli.image_cmds",
                 "addcow_ref.ops.mapping", "addcow_ref.ops.holes", "addcow_ref.ops.chain",
                 "importlib.resources", "construct", "addcow_ref.format.schema", "ctypes",
                 "fractions"):
        assert not _loaded(modules, name), (name, _loaded(modules, name))
    assert "addcow_ref.cli.inspect_cmds" in modules  # the probe did run the command


def test_help_still_lists_every_command() -> None:
    from addcow_ref.cli.main import COMMANDS

    status, output, _ = _modules("addcow_ref.cli.main", ["--help"])
    assert status == 0
    for name in COMMANDS:
        assert f"\n  {name} " in output, name
