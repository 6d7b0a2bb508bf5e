"""The mutator: which mutants a piece of code gets, what applying one does, stable identities."""

from __future__ import annotations

import ast

import pytest
from addcow_conformance.mutation.mutate import (
    OPERATORS,
    MutantSpec,
    apply_mutant,
    enumerate_mutants,
)

SAMPLE = '''\
from __future__ import annotations

LIMIT = 5


def check(a: int, b: int = 1) -> int:
    """A docstring is not code."""
    if a < 3 and not b:
        log(a)
        raise ValueError("small")
    return a


class Box:
    def size(self) -> int:
        return 2
'''


def _specs(source: str = SAMPLE) -> list[MutantSpec]:
    return [site.spec for site in enumerate_mutants("sample", source)]


def test_every_operator_on_sample_code() -> None:
    got = [(s.function, s.operator, s.index, s.mutated) for s in _specs()]
    assert got == [
        ("check", "and-or", 0, "a < 3 or not b"),
        ("check", "cmp-negate", 0, "a >= 3"),
        ("check", "cmp-boundary", 0, "a <= 3"),
        ("check", "const+1", 0, "4"),
        ("check", "const-1", 0, "2"),
        ("check", "not-drop", 0, "b"),
        ("check", "call-drop", 0, "pass"),
        ("check", "raise-drop", 0, "pass"),
        ("check", "return-none", 0, "return None"),
        ("Box.size", "return-none", 0, "return None"),
        ("Box.size", "const+1", 0, "3"),
        ("Box.size", "const-1", 0, "1"),
    ]
    # Defaults, annotations, docstrings and module-level code are never mutated.
    assert {s.operator for s in _specs()} == set(OPERATORS)
    assert all(s.line >= 8 for s in _specs())


def test_comparisons_are_negated_and_moved_across_the_boundary() -> None:
    source = "def f(x, y):\n    return x == y or x in y or x is y or x >= y\n"
    got = {(s.operator, s.mutated) for s in _specs(source) if s.operator.startswith("cmp")}
    assert got == {
        ("cmp-negate", "x != y"), ("cmp-negate", "x not in y"), ("cmp-negate", "x is not y"),
        ("cmp-negate", "x < y"), ("cmp-boundary", "x > y"),
    }


def _run(tree: ast.Module) -> dict[str, object]:
    namespace: dict[str, object] = {"log": lambda _a: None}
    exec(compile(tree, "sample", "exec"), namespace)
    return namespace


def test_applying_a_mutant_changes_only_that_site() -> None:
    specs = {(s.function, s.operator): s for s in _specs()}
    plain = _run(ast.parse(SAMPLE))
    boundary = _run(apply_mutant(specs["check", "cmp-boundary"], SAMPLE, "sample"))
    assert plain["check"](3, 0) == 3  # type: ignore[operator]
    with pytest.raises(ValueError, match="small"):
        boundary["check"](3, 0)  # type: ignore[operator]
    dropped = _run(apply_mutant(specs["check", "raise-drop"], SAMPLE, "sample"))
    assert dropped["check"](0, 0) == 0  # type: ignore[operator]
    box = _run(apply_mutant(specs["Box.size", "const+1"], SAMPLE, "sample"))["Box"]
    assert box().size() == 3  # type: ignore[operator]
    assert plain["Box"]().size() == 2  # type: ignore[operator]


def test_applying_a_mutant_the_source_no_longer_has_fails() -> None:
    spec = next(s for s in _specs() if s.operator == "raise-drop")
    with pytest.raises(KeyError, match="raise-drop"):
        apply_mutant(spec, SAMPLE.replace('raise ValueError("small")', "pass"), "sample")


def test_identity_survives_edits_elsewhere() -> None:
    before = {s.id for s in _specs()}
    moved = SAMPLE.replace("LIMIT = 5\n", "LIMIT = 5\n\n\ndef other(x):\n    return x > 1\n")
    after = {s.id for s in _specs(moved) if s.function != "other"}
    assert before == after
    # A similar site added earlier in the same function moves the index, not the loose key.
    earlier = SAMPLE.replace('    """A docstring is not code."""\n',
                             '    """A docstring is not code."""\n    log(0)\n')
    old = next(s for s in _specs() if s.operator == "call-drop")
    new = [s for s in _specs(earlier) if s.operator == "call-drop"]
    assert [s.index for s in new] == [0, 1]
    assert new[1].loose_key == old.loose_key
    assert new[1].id != old.id


def test_identities_are_unique_and_name_the_site() -> None:
    specs = _specs()
    assert len({s.id for s in specs}) == len(specs)
    s = specs[0]
    assert s.id == f"sample:check:and-or:0:{s.digest}"
    assert s.original == "if a < 3 and not b:"
