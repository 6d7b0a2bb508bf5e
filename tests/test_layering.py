"""The import graph keeps the layering the folders show, with no cycles.

``addcow_ref`` is layered format -> engine -> ops -> cli; the conformance kit
(``addcow_conformance``) sits beside the library and uses it, and only the tools
(``addcow_ref.cli``) may use the kit. Every import counts, including those inside functions and
under ``TYPE_CHECKING``: a lazy import still ties two modules together. The test reads the
sources with :mod:`ast`, so it sees the edges without importing anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"addcow_ref": ROOT / "addcow_ref",
            "addcow_conformance": ROOT / "conformance" / "addcow_conformance"}

#: Layer of each module prefix (the longest prefix wins); a module may import only modules of
#: its own layer or a lower one. ``addcow_ref`` itself is the public facade over format, engine
#: and ops; ``addcow_ref.clirun`` is the click runner every console script shares.
LAYERS: dict[str, int] = {
    "addcow_ref.format": 0,
    "addcow_ref.clirun": 0,
    "addcow_ref.engine": 1,
    "addcow_ref.ops": 2,
    "addcow_ref": 3,
    "addcow_conformance": 4,
    "addcow_ref.cli": 5,
}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg, base in PACKAGES.items():
        for path in sorted(base.rglob("*.py")):
            parts = [pkg, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an imported name refers to (a module, or a name inside one)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> Iterator[str]:
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target and target != module:
                yield target


GRAPH = {m: sorted(set(_imports(m, p))) for m, p in MODULES.items()}


def _layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def _is_package_of(a: str, b: str) -> bool:
    """``a`` is a package that contains ``b`` (importing a package runs its ``__init__``)."""
    return b.startswith(a + ".")


def test_no_module_imports_a_higher_layer() -> None:
    upward = [f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
              for m, targets in GRAPH.items() for t in targets
              if _layer(t) > _layer(m) and not _is_package_of(t, m)]
    assert upward == []


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if _is_package_of(w, v):  # a submodule importing its package's __init__
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    assert _cycles() == []


@pytest.mark.parametrize(("module", "target"), [
    ("addcow_ref.engine.image", "addcow_ref.cli.main"),
    ("addcow_ref.format.schema", "addcow_conformance.checker.engine"),
])
def test_the_layer_check_can_fail(module: str, target: str) -> None:
    assert _layer(target) > _layer(module)


def test_the_cycle_check_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = {"a.x": ["a.y"], "a.y": ["a.z"], "a.z": ["a.x"], "a.w": []}
    monkeypatch.setattr(f"{__name__}.GRAPH", fake)
    assert _cycles() == [["a.x", "a.y", "a.z"]]


def test_every_module_is_in_a_layer() -> None:
    assert all(any(m == p or m.startswith(p + ".") for p in LAYERS) for m in MODULES)
