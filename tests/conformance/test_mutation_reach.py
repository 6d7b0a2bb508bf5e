"""Reach: the lines each vector's calls execute, which decide the vectors a mutant runs."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from addcow_conformance.harness.manifest import Vector
from addcow_conformance.mutation.reach import reached_by, read_reach, traced


def _probe(x: int) -> int:
    if x > 0:
        return 1
    return 2


def test_traced_records_the_lines_a_call_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              ) -> None:
    scratch = tmp_path / "0001-vec_b"
    scratch.mkdir()
    monkeypatch.chdir(scratch)
    out = tmp_path / "reach"
    out.mkdir()
    call = traced(lambda argv: _probe(int(argv[0])), [__file__], out)
    assert call(["5"]) == 1
    order = cast(list[Vector], [SimpleNamespace(id="vec/a"), SimpleNamespace(id="vec/b")])
    reach = read_reach(out, order)
    first = _probe.__code__.co_firstlineno
    assert reach[__file__, first + 2] == {"vec/b"}  # return 1
    assert (__file__, first + 3) not in reach  # return 2 never ran
    assert reached_by(reach, __file__, (first + 3, first + 3)) == set()
    assert reached_by(reach, __file__, (first + 1, first + 3)) == {"vec/b"}
    assert [p.name for p in out.iterdir()] == [f"{os.getpid()}.txt"]


def test_the_capabilities_probe_belongs_to_no_vector(tmp_path: Path) -> None:
    (tmp_path / "1.txt").write_text(f"{tmp_path / 'capabilities'}\n3\t/x.py\n")
    assert read_reach(tmp_path, []) == {}
