"""Loading the library with one mutant applied, in a forked child, never touching the tree.

The run reads every module of ``addcow_ref`` once, at its start (:class:`Snapshot`): the
baseline and every mutant then run against the same code even while the files are being
edited. A mutant's child process drops the library (and the adapter that imported it) from
``sys.modules`` and installs a finder that serves each module from the snapshot, the mutated
one compiled from its mutated tree; importing the adapter again then builds a fresh library
with the mutant in it. The harness, imported before the fork, keeps its own copy of whatever it
imported, so the mutant never judges itself. Every module of the library is imported right
away: the adapter's calls are forked from this child, and a module imported lazily would
otherwise be imported again by every call.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ModuleSource", "Snapshot", "install", "take_snapshot"]

#: Packages reloaded in a mutant's child: the library and the adapter that imports it.
RELOADED = ("addcow_ref", "addcow_conformance.adapters")
#: Never imported eagerly: the tools (layer above the kit) and the interactive extras.
SKIPPED = ("addcow_ref.cli",)


@dataclasses.dataclass(frozen=True)
class ModuleSource:
    name: str
    path: Path
    is_package: bool
    source: str
    code: types.CodeType


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The library's modules as read at the start of the run."""

    modules: dict[str, ModuleSource]

    def source_of(self, name: str) -> ModuleSource:
        try:
            return self.modules[name]
        except KeyError:
            raise KeyError(f"{name}: not a module of the snapshot") from None


def _module_name(root: Path, package: str, path: Path) -> tuple[str, bool]:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def take_snapshot(package: str = "addcow_ref") -> Snapshot:
    """Read and compile every module of ``package`` (from where it is imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ImportError(f"cannot find the package {package}")
    root = Path(spec.origin).parent
    modules: dict[str, ModuleSource] = {}
    for path in sorted(root.rglob("*.py")):
        name, is_package = _module_name(root, package, path)
        source = path.read_text("utf-8")
        try:
            code = compile(source, str(path), "exec", dont_inherit=True)
        except SyntaxError as e:
            raise ImportError(f"{path}:{e.lineno}: does not compile: {e.msg}") from None
        modules[name] = ModuleSource(name, path, is_package, source, code)
    return Snapshot(modules)


class _Loader(importlib.machinery.SourceFileLoader):
    """A file loader (so ``importlib.resources`` finds the package's data files beside it) that
    runs the snapshot's code instead of reading the file again."""

    def __init__(self, module: ModuleSource, code: types.CodeType) -> None:
        super().__init__(module.name, str(module.path))
        self.code = code

    def get_code(self, fullname: str) -> types.CodeType:
        return self.code


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, snapshot: Snapshot, codes: dict[str, types.CodeType]) -> None:
        self.snapshot = snapshot
        self.codes = codes

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        module = self.snapshot.modules.get(fullname)
        if module is None:
            return None
        loader = _Loader(module, self.codes.get(fullname, module.code))
        locations = [str(module.path.parent)] if module.is_package else None
        return importlib.util.spec_from_file_location(
            fullname, module.path, loader=loader, submodule_search_locations=locations)


def _purge() -> None:
    for name in list(sys.modules):
        if any(name == p or name.startswith(p + ".") for p in RELOADED):
            del sys.modules[name]


def install(snapshot: Snapshot, mutated: dict[str, ast.Module] | None = None) -> list[str]:
    """In a child about to run one mutant: rebuild the library from ``snapshot`` with the
    ``mutated`` modules' trees in place of their sources; returns the modules that failed to
    import (a mutant that breaks importing is reported by the harness as crashes)."""
    codes = {
        name: compile(tree, str(snapshot.source_of(name).path), "exec", dont_inherit=True)
        for name, tree in (mutated or {}).items()
    }
    _purge()
    sys.meta_path.insert(0, _Finder(snapshot, codes))
    failed: list[str] = []
    for name in snapshot.modules:
        if any(name == p or name.startswith(p + ".") for p in SKIPPED):
            continue
        try:
            importlib.import_module(name)
        except Exception as e:
            failed.append(f"{name}: {type(e).__name__}: {e}")
    return failed
