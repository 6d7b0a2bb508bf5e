"""A ``CliRunner`` whose ``Result`` reads the same on click 8.1 (Debian 12's, the oldest the
project supports; ``.ci/debian-leg`` runs the tests on it) and on click 8.2 and later.

From 8.2 on, ``result.stderr`` is always captured on its own and ``result.output`` is what a
terminal would show, stdout and stderr together. Click 8.1 captures stderr on its own only with
``CliRunner(mix_stderr=False)``, and then its ``output`` is stdout alone; the tests read both
(``stderr`` for the one-line errors, ``output`` for "whatever the tool said"), so on 8.1
:func:`cli_runner` gives a runner whose ``output`` is stdout followed by stderr. The order of
lines across the two streams is the one thing that differs, and no test depends on it.
"""

from __future__ import annotations

import inspect
from typing import Any

from click.testing import CliRunner, Result

__all__ = ["cli_runner"]

#: Feature detection, not a version number: 8.2 removed the argument with the behaviour.
_CLICK_8_1 = "mix_stderr" in inspect.signature(CliRunner.__init__).parameters


class _Result81(Result):
    @property
    def output(self) -> str:
        return self.stdout + (self.stderr if self.stderr_bytes is not None else "")


class _Runner81(CliRunner):
    def invoke(self, *args: Any, **kwargs: Any) -> Result:
        result = super().invoke(*args, **kwargs)
        result.__class__ = _Result81  # the same fields; only ``output`` reads differently
        return result


def cli_runner(**kwargs: Any) -> CliRunner:
    """A ``CliRunner(**kwargs)`` with click 8.2's separate ``stderr`` on every click version."""
    if _CLICK_8_1:
        return _Runner81(**{"mix_stderr": False, **kwargs})
    return CliRunner(**kwargs)
