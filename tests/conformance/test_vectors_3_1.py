"""Suite 3.1.0: a commit of an image without a backing file is refused for COMMIT-NEEDS-BACKING,
and a rebase counts the image itself when it checks the depth of the new chain (BACK-DEPTH).

Suite 3.0.0 had no vector for either (the mutation ledger called the commit check
``spec-leaves-open``; the rebase's starting depth survived the mutation run), so a commit that
lost the check, or refused for no rule, and a rebase that started counting at 0 or 2 passed it.
Each bug is planted by monkeypatching the reference, which the forked ``python:`` adapter
inherits.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from addcow_conformance.adapters import reference as reference_adapter

from addcow_ref.ops import commit as commit_module
from addcow_ref.ops import rebase as rebase_module

from .test_vectors_3_0 import _with_edit
from .vectors_support import changed_and_added, run_reference, suite_ids

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"
NEW = "ops/commit-without-backing-refused"
DEEP, TOO_DEEP = "ops/rebase-onto-a-64-deep-chain", "ops/rebase-onto-a-65-deep-chain-refused"
_CHECK = ('            raise AddCowError("image has no backing file to commit into", file=path,\n'
          '                              field="backing_name_offset", '
          'rule_id="COMMIT-NEEDS-BACKING")\n')

pytestmark = pytest.mark.skipif(
    not (VECTORS / "manifest.json").is_file(), reason="vectors/manifest.json not generated yet"
)


def test_the_vector_is_new_in_3_1_0() -> None:
    assert changed_and_added("3.1.0") == (set(), {NEW, DEEP, TOO_DEEP})


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


@pytest.mark.parametrize(("start", "fails"), [(2, DEEP), (0, TOO_DEEP)],
                         ids=["counts-from-2", "counts-from-0"])
def test_a_rebase_that_miscounts_the_new_chain_fails_only_its_depth_vector(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: int, fails: str) -> None:
    """The mutants ``rebase:_open_new:const+1`` and ``const-1``: the new backing file opened
    at depth 2 refuses a chain of 64 add-cow files below the image, at depth 0 accepts 65.
    Every rebase vector of 3.0.0 passes either way."""
    globs = ["ops/rebase-*", "legacy/rebase-*"]
    ran, failing = run_reference(tmp_path, globs)
    assert {DEEP, TOO_DEEP} <= ran
    assert len(ran & suite_ids("3.0.0")) >= 10
    assert failing == set()
    monkeypatch.setattr(rebase_module, "_open_new",
                        _with_edit(rebase_module._open_new, "frozenset({ident}), 1)",
                                   f"frozenset({{ident}}), {start})"))
    assert run_reference(tmp_path, globs)[1] == {fails}
