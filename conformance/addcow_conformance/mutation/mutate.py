"""The AST mutator: small, plausible implementer mistakes applied to one function at a time.

A mutant is one edit of one node inside a function body: a comparison negated or moved across
its boundary, an integer constant off by one, ``and`` and ``or`` swapped, a ``not`` dropped, a
call statement or a ``raise`` dropped, a ``return`` that returns ``None``. Only code that runs
when a function runs is mutated (not decorators, default values, annotations or module-level
statements), so every mutant is a change of behaviour of some call the adapter may make.

A mutant's identity must survive edits elsewhere in the file, since the reviewed ledger of
survivors refers to it across runs: it is the module, the qualified name of the outermost
function holding the edit, the operator, the index of the site among that operator's sites in
that function (in source order), and a short hash of the source line with the edited node
before and after. Line numbers are recorded for reading but are not part of the identity.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import hashlib
from collections.abc import Callable, Iterator

__all__ = [
    "OPERATORS",
    "MutantSpec",
    "Site",
    "apply_mutant",
    "enumerate_mutants",
]

#: Every operator, with what it does (published in the results and on the docs page).
OPERATORS: dict[str, str] = {
    "cmp-negate": "a comparison replaced by its negation (== and !=, < and >=, in and not in)",
    "cmp-boundary": "a comparison moved across its boundary (< and <=, > and >=)",
    "const+1": "an integer constant plus one",
    "const-1": "an integer constant minus one",
    "and-or": "``and`` and ``or`` swapped",
    "not-drop": "``not x`` replaced by ``x``",
    "call-drop": "a call statement (its value unused) removed",
    "raise-drop": "a ``raise`` statement removed",
    "return-none": "``return EXPR`` replaced by ``return None``",
}

_NEGATE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt,
    ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_BOUNDARY: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
}

_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclasses.dataclass(frozen=True)
class MutantSpec:
    """One mutant, as recorded in the results and matched against the ledger."""

    module: str
    function: str
    operator: str
    index: int
    line: int
    original: str
    mutated: str
    digest: str

    @property
    def id(self) -> str:
        return f"{self.module}:{self.function}:{self.operator}:{self.index}:{self.digest}"

    @property
    def loose_key(self) -> tuple[str, str, str, str]:
        """The identity without the index: still the same mutant when a similar site is added
        earlier in the function."""
        return (self.module, self.function, self.operator, self.digest)


@dataclasses.dataclass(frozen=True)
class Site:
    """A place a mutant can be made: ``edit`` performs it on the tree it was found in."""

    spec: MutantSpec
    edit: Callable[[], None]
    #: First and last line of the innermost statement holding the site: a run that executes
    #: none of these lines cannot be changed by the mutant (one line is not enough, since
    #: the compiler may fold a constant on a continuation line into one on the first).
    span: tuple[int, int]


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _digest(operator: str, line: str, before: str, after: str) -> str:
    raw = "\0".join((operator, " ".join(line.split()), before, after)).encode()
    return hashlib.sha256(raw).hexdigest()[:8]


def _top_functions(tree: ast.Module) -> Iterator[tuple[str, _FunctionNode]]:
    """Module-level functions and methods of module-level classes (nested classes too), with
    their qualified names; code inside them is the mutable code."""

    def walk(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, _FunctionNode]]:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield prefix + node.name, node
            elif isinstance(node, ast.ClassDef):
                yield from walk(node.body, f"{prefix}{node.name}.")

    yield from walk(tree.body, "")


#: A node's place in its parent: ``(parent, field, index)`` (index None for a single child).
_Place = tuple[ast.AST, str, int | None]


def _is_docstring(node: ast.AST) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def _walk(node: ast.AST, stmt: ast.stmt) -> Iterator[tuple[ast.AST, _Place, ast.stmt]]:
    """Every node under ``node`` in source order with its place and innermost statement,
    leaving out annotations (never evaluated under ``from __future__ import annotations``)
    and docstrings."""
    for field, value in ast.iter_fields(node):
        if field in ("annotation", "returns", "type_comment"):
            continue
        if isinstance(value, ast.AST):
            yield value, (node, field, None), stmt
            yield from _walk(value, value if isinstance(value, ast.stmt) else stmt)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, ast.AST):
                    continue
                if field == "body" and i == 0 and _is_docstring(item):
                    continue
                inner = item if isinstance(item, ast.stmt) else stmt
                yield item, (node, field, i), inner
                yield from _walk(item, inner)


def _body_nodes(fn: _FunctionNode) -> Iterator[tuple[ast.AST, _Place, ast.stmt]]:
    """The nodes of ``fn``'s body: what runs when the function runs (its own decorators,
    defaults and annotations run once, at definition)."""
    for i, stmt in enumerate(fn.body):
        if i == 0 and _is_docstring(stmt):
            continue
        yield stmt, (fn, "body", i), stmt
        yield from _walk(stmt, stmt)


def _replace(place: _Place, new: ast.AST) -> Callable[[], None]:
    parent, field, index = place

    def edit() -> None:
        if index is None:
            old = getattr(parent, field)
            setattr(parent, field, ast.copy_location(new, old))
        else:
            seq = getattr(parent, field)
            seq[index] = ast.copy_location(new, seq[index])

    return edit


def _candidates(node: ast.AST, place: _Place) -> Iterator[tuple[str, str, str, ast.AST]]:
    """``(operator, before, after, replacement)`` for every mutant of one node."""
    if isinstance(node, ast.Compare):
        for k, op in enumerate(node.ops):
            for name, table in (("cmp-negate", _NEGATE), ("cmp-boundary", _BOUNDARY)):
                new = table.get(type(op))
                if new is not None:
                    after = copy.deepcopy(node)
                    after.ops[k] = new()
                    yield name, ast.unparse(node), ast.unparse(after), after
    elif (isinstance(node, ast.Constant) and isinstance(node.value, int)
          and not isinstance(node.value, bool)):
        for name, delta in (("const+1", 1), ("const-1", -1)):
            value = ast.Constant(value=node.value + delta)
            yield name, repr(node.value), repr(value.value), value
    elif isinstance(node, ast.BoolOp):
        swapped = copy.deepcopy(node)
        swapped.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield "and-or", ast.unparse(node), ast.unparse(swapped), swapped
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        operand = copy.deepcopy(node.operand)
        yield "not-drop", ast.unparse(node), ast.unparse(operand), operand
    if place[2] is None:  # only statements in a statement list can be dropped
        return
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Await):
        yield "call-drop", ast.unparse(node), "pass", ast.Pass()
    elif isinstance(node, ast.Raise):
        yield "raise-drop", ast.unparse(node), "pass", ast.Pass()
    elif isinstance(node, ast.Return) and node.value is not None and not (
        isinstance(node.value, ast.Constant) and node.value.value is None
    ):
        yield "return-none", ast.unparse(node), "return None", ast.Return(
            value=ast.Constant(value=None))


def enumerate_mutants(module: str, source: str, tree: ast.Module | None = None) -> list[Site]:
    """Every mutant of ``source`` (the text of ``module``), in a stable order.

    Pass ``tree`` (parsed from the same source) to get sites whose ``edit`` changes it.
    """
    if tree is None:
        tree = ast.parse(source)
    lines = source.splitlines()
    sites: list[Site] = []
    for qualname, fn in _top_functions(tree):
        counts: dict[str, int] = {}
        for node, place, stmt in _body_nodes(fn):
            lineno = getattr(node, "lineno", fn.lineno)
            text = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
            for operator, before, after, replacement in _candidates(node, place):
                index = counts.get(operator, 0)
                counts[operator] = index + 1
                spec = MutantSpec(
                    module=module, function=qualname, operator=operator, index=index,
                    line=lineno, original=_short(text.strip()),
                    mutated=_short(after), digest=_digest(operator, text, before, after),
                )
                span = (stmt.lineno, stmt.end_lineno or stmt.lineno)
                sites.append(Site(spec, _replace(place, replacement), span))
    return sites


def apply_mutant(spec: MutantSpec, source: str, filename: str) -> ast.Module:
    """A fresh tree of ``source`` with ``spec`` applied; ``KeyError`` if it has no such site
    (the source changed since the mutant was listed)."""
    tree = ast.parse(source, filename)
    for site in enumerate_mutants(spec.module, source, tree):
        if site.spec == spec:
            site.edit()
            return ast.fix_missing_locations(tree)
    raise KeyError(spec.id)
