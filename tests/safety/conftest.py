"""Shared helpers of the "safe by default" regression tests: run ``addcow`` as a user would."""

from __future__ import annotations

import os

from click.testing import Result

from addcow_ref.cli.main import cli
from tests.click_runner import cli_runner


def run(*args: str | os.PathLike[str], input: bytes | None = None) -> Result:
    """``addcow ARGS`` through click's runner, exceptions (bugs) propagating."""
    return cli_runner().invoke(cli, [os.fspath(a) for a in args], input=input,
                              catch_exceptions=False)
