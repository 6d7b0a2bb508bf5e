"""Suite 3.1.0: a commit of an image without a backing file is refused for COMMIT-NEEDS-BACKING.

Suite 3.0.0 had no vector for it (the mutation ledger called the check ``spec-leaves-open``), so
a commit that lost the check, or refused for no rule, passed it. Each bug is planted by
monkeypatching the reference, which the forked ``python:`` adapter inherits.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from addcow_conformance.adapters import reference as reference_adapter

from addcow_ref.ops import commit as commit_module

from .test_vectors_3_0 import _with_edit
from .vectors_support import changed_and_added, run_reference, suite_ids

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"
NEW = "ops/commit-without-backing-refused"
_CHECK = ('            raise AddCowError("image has no backing file to commit into", file=path,\n'
          '                              field="backing_name_offset", '
          'rule_id="COMMIT-NEEDS-BACKING")\n')

pytestmark = pytest.mark.skipif(
    not (VECTORS / "manifest.json").is_file(), reason="vectors/manifest.json not generated yet"
)


def test_the_vector_is_new_in_3_1_0() -> None:
    assert changed_and_added("3.1.0") == (set(), {NEW})


@pytest.mark.parametrize("replacement", [
    "            pass\n",
    '            raise AddCowError("image has no backing file to commit into", file=path)\n',
], ids=["check-dropped", "no-rule-id"])
def test_a_commit_without_its_backing_check_fails_only_the_new_vector(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, replacement: str) -> None:
    """Without the check (mutant ``commit:raise-drop:1``) the commit fails later, on the
    missing name; with the check but no rule ID (the reference of suite 3.0.0) the refusal
    cites nothing. Either passes every commit vector of 3.0.0 and fails the one of 3.1.0."""
    old = suite_ids("3.0.0")
    ran, failing = run_reference(tmp_path, ["ops/commit-*", "legacy/commit-*"])
    assert NEW in ran
    assert len(ran & old) >= 5
    assert failing == set()
    monkeypatch.setattr(reference_adapter, "commit_image",
                        _with_edit(commit_module.commit, _CHECK, replacement))
    assert run_reference(tmp_path, ["ops/commit-*", "legacy/commit-*"])[1] == {NEW}
