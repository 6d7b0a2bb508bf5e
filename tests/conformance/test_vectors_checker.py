"""Atomicity: the checker reports exactly what each vector's manifest entry says.

For an invalid vector the checker's error findings are exactly its ``violates``; a valid vector
draws no error or warning; an acceptable one exactly the findings of the rules it breaks that the
checker decides (a warning, or an error where the spec lets a reader skip the check: a broken
backing chain under ``all_allocated``). The manifest's
``checker`` block (rule, severity, file role, offset, field, exit code) must match too, so every
vector is also a checker regression test.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.checker.engine import registry as checker_rules

from .vectors_support import materialize, vectors

checker = pytest.importorskip("addcow_conformance.checker", reason="the checker is not built yet")

#: Disagreements where the spec sides with the vector; each xfail is strict, so a fix is noticed.
CHECKER_BUGS: dict[str, str] = {}


def _params() -> list[Any]:
    out = []
    for v in vectors():
        marks = []
        if v["id"] in CHECKER_BUGS:
            marks.append(pytest.mark.xfail(reason=CHECKER_BUGS[v["id"]], strict=True))
        out.append(pytest.param(v, id=v["id"], marks=marks))
    return out


def _role(v: dict[str, Any], root: Path, file: str) -> str:
    target = os.path.realpath(file if os.path.isabs(file) else root / file)
    for f in v["files"]:
        if os.path.realpath(root / f["path"]) == target:
            return str(f["role"])
    return f"<unlisted {file}>"


@pytest.mark.parametrize("v", _params())
def test_checker_agrees_with_manifest(v: dict[str, Any], tmp_path: Path) -> None:
    root = materialize(v, tmp_path / "vec")
    report = checker.check_file(root / v["entry"])
    assert report.error is None, report.error
    assert not report.internal_errors, report.internal_errors
    errors = {f.rule for f in report.findings if f.severity == "error"}
    warnings = {f.rule for f in report.findings if f.severity == "warning"}
    if v["result"] == "invalid":
        assert errors == set(v["violates"])
    elif v["result"] == "valid":
        assert not errors
        assert not warnings
    else:
        checked = set(v["violates"]) & set(checker_rules())
        assert errors | warnings == checked
        assert not errors or v["expect"].get("reader_duty") == "either", errors
    got = sorted(
        ({"rule": f.rule, "severity": f.severity, "file_role": _role(v, root, f.file),
          "offset": f.offset, "field": f.field} for f in report.findings),
        key=lambda d: (d["rule"], str(d["offset"]), str(d["field"])))
    want = sorted(v["checker"]["findings"],
                  key=lambda d: (d["rule"], str(d["offset"]), str(d["field"])))
    assert got == want
    assert report.exit_code == v["checker"]["exit_code"]
