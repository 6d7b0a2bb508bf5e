"""The interop helpers: a missing tool skips locally and fails in CI; oracle checks."""

from __future__ import annotations

import itertools

import pytest

from . import tools


def test_missing_tool_skips_with_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADDCOW_REQUIRE_TOOLS", raising=False)
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match=r"qemu-io not found.*qemu-utils"):
        tools.need("qemu-io")


def test_missing_tool_fails_when_tools_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADDCOW_REQUIRE_TOOLS", "1")
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match=r"nbdcopy not found.*libnbd-bin"):
        tools.need("nbdcopy")


def test_read_checks_cover_every_byte_once() -> None:
    data = b"\x01" * 3 + b"\x00" * 5 + b"\x01" + b"\x02" * 7
    assert tools.uniform_runs(data, 100) == [(100, 3, 1), (103, 5, 0), (108, 1, 1), (109, 7, 2)]
    assert tools.read_checks(data, 2, 10) == [
        "read -P 0x01 2 1", "read -P 0x00 3 5", "read -P 0x01 8 1", "read -P 0x02 9 1"]


def test_backing_pattern_has_no_zero_and_changes_per_block() -> None:
    data = tools.sector_pattern(10 * 4096 + 100)
    assert len(data) == 10 * 4096 + 100
    assert 0 not in data
    blocks = [data[i] for i in range(0, len(data), 4096)]
    assert all(a != b for a, b in itertools.pairwise(blocks))
