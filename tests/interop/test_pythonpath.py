"""How the plugin's code becomes importable in nbdkit's interpreter (Debian's system python),
which is not the interpreter the package is installed in (see ``addcow_ref.cli.serve``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.cli import serve

from . import tools


def test_pythonpath_names_the_package_and_its_dependencies() -> None:
    import construct

    path = serve.plugin_pythonpath()
    assert path[0] == str(Path(addcow_ref.__file__).resolve().parent.parent)
    assert str(Path(construct.__file__).resolve().parent.parent) in path
    assert len(path) == len(set(path))


def test_environment_keeps_an_existing_pythonpath() -> None:
    env = serve.plugin_environment({"PYTHONPATH": "/opt/extra", "HOME": "/root"})
    parts = env["PYTHONPATH"].split(os.pathsep)
    assert parts[: len(serve.plugin_pythonpath())] == serve.plugin_pythonpath()
    assert parts[-1] == "/opt/extra"
    assert env["HOME"] == "/root"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_plugin_path_is_the_installed_module() -> None:
    from addcow_ref.cli import nbdplugin

    assert serve.plugin_path() == Path(nbdplugin.__file__).resolve()


def _nbdkit_python() -> str:
    """The interpreter nbdkit's python plugin embeds, by the version it reports."""
    tools.need("nbdkit")
    dump = tools.run(["nbdkit", "python", "--dump-plugin"]).stdout
    version = re.search(r"^python_version=(\d+)\.(\d+)", dump, re.M)
    assert version, dump
    exe = shutil.which(f"python{version[1]}.{version[2]}", path="/usr/bin:/usr/local/bin")
    if exe is None:
        pytest.skip(f"no /usr/bin/python{version[1]}.{version[2]} to check imports with")
    return exe


@pytest.mark.interop
def test_system_python_imports_the_plugin_with_that_environment(tmp_path: Path) -> None:
    """With ``plugin_environment()`` nbdkit's interpreter imports every module the plugin
    needs, from the same place this interpreter does; the plugin file runs to completion."""
    exe = _nbdkit_python()
    script = (
        "import runpy, sys, addcow_ref, construct\n"
        f"runpy.run_path({str(serve.plugin_path())!r})\n"
        "print(addcow_ref.__file__)\n"
    )
    proc = subprocess.run([exe, "-c", script], env=serve.plugin_environment(),
                          capture_output=True, text=True, timeout=tools.TIMEOUT, check=False,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve() == Path(addcow_ref.__file__).resolve()
