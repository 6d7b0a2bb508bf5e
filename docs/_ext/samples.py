"""Sphinx directive ``.. addcow-console::``: a console sample that is run at build time.

A pasted sample goes stale the day the tool's output changes (a guide once showed "33 rules
checked" long after the checker said 34), and nothing notices. This directive runs the commands
of the sample when the site is built and shows what they printed, so every sample is the output
of the tools the site documents::

   .. addcow-console::
      :setup: addcow create -o cluster_bits=9 disk.add-cow 1M

      $ addcow-check disk.add-cow

Each ``$ COMMAND`` line is split like shell words and run without a shell, in a fresh
temporary directory (``:cwd: source`` runs in the checkout instead, for samples over
``vectors/``); the line and its output are shown. ``:setup:`` commands (one per line) run
first and are not shown. ``:tail: N`` keeps the last N lines of the last command's output,
``:output-only:`` leaves the ``$`` lines out, and ``:returncode:`` is the status every shown
command must exit with (default 0; ``any`` for a sample whose verdict may change, such as a
run over a suite still being extended). A command that cannot run, or exits otherwise, is a
build warning, so under ``-W`` a broken sample fails the build.

The project's tools are found next to the interpreter running Sphinx (the venv's ``bin``),
before ``$PATH``; clause links in the output point at the published site
(``ADDCOW_DOCS_URL`` is cleared), whatever the builder's environment says.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
_TIMEOUT = 600


def _returncode(argument: str | None) -> int | None:
    value = (argument or "").strip()
    return None if value == "any" else int(value)


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ADDCOW_DOCS_URL", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["COLUMNS"] = "100"
    return env


class ConsoleSample(SphinxDirective):
    has_content = True
    option_spec = {  # noqa: RUF012 - docutils reads a class attribute
        "setup": directives.unchanged,
        "cwd": lambda arg: directives.choice(arg, ("temp", "source")),
        "tail": directives.positive_int,
        "output-only": directives.flag,
        "returncode": _returncode,
    }

    def _run(self, line: str, cwd: Path, expect: int | None) -> str | None:
        try:
            proc = subprocess.run(shlex.split(line), cwd=cwd, env=_environment(),
                                  capture_output=True, text=True, timeout=_TIMEOUT,
                                  check=False)
        except (OSError, ValueError, subprocess.TimeoutExpired) as e:
            logger.warning("addcow-console: %r could not run: %s", line, e,
                           location=self.get_location())
            return None
        if expect is not None and proc.returncode != expect:
            logger.warning("addcow-console: %r exited %d, not %d:\n%s", line, proc.returncode,
                           expect, proc.stderr.strip(), location=self.get_location())
            return None
        return proc.stdout

    def run(self) -> list[nodes.Node]:
        commands = [c.removeprefix("$ ").strip() for c in self.content if c.strip()]
        setup = [c.strip() for c in self.options.get("setup", "").splitlines() if c.strip()]
        expect = self.options.get("returncode", 0)
        shown: list[str] = []
        with tempfile.TemporaryDirectory(prefix="addcow-sample-") as tmp:
            cwd = ROOT if self.options.get("cwd") == "source" else Path(tmp)
            for line in setup:
                if self._run(line, cwd, 0) is None:
                    return []
            for i, line in enumerate(commands):
                out = self._run(line, cwd, expect)
                if out is None:
                    return []
                lines = out.rstrip("\n").splitlines()
                if "tail" in self.options and i == len(commands) - 1:
                    lines = lines[-self.options["tail"]:]
                if "output-only" not in self.options:
                    shown.append(f"$ {line}")
                shown += [t.replace(tmp + os.sep, "").replace(tmp, ".") for t in lines]
        text = "\n".join(shown)
        block = nodes.literal_block(text, text)
        block["language"] = "console"
        return [block]


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("addcow-console", ConsoleSample)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
