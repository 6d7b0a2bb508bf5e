"""Sphinx configuration of the add-cow site: the spec, the rule index, API and CLI reference.

Built with ``sphinx-build -W --keep-going -n``: any warning, including an unresolved reference,
fails the build, so a rule, field or option that disappears from the code cannot leave a silent
hole in the site.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# The tree first: the spec pages (docs/spec -> ../spec) and rules.json must come from one checkout.
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]

import addcow_ref  # noqa: E402 - needs the path above

project = "add-cow"
author = "The addcow developers"
copyright = "2012-2026, the add-cow authors"
release = addcow_ref.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx_click",
    "addcow_spec",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_theme = "furo"
html_title = f"add-cow {release}"
html_static_path = ["_static"]
html_css_files = ["addcow.css"]

nitpicky = True
# No network at build time (no intersphinx), so names from the standard library and from
# third-party packages have no target; everything of our own must still resolve.
nitpick_ignore_regex = [
    # Standard library and typing names as they appear in signatures.
    ("py:class", r"(typing|collections\.abc|os|io|pathlib|enum|dataclasses|types|"
                 r"concurrent\.futures|threading|subprocess|argparse|json)\..*"),
    ("py:class", r"(Path|PathLike|BinaryIO|IO|Iterator|Iterable|Callable|Mapping|Sequence|"
                 r"Any|Literal|TypeAlias|Self|NoReturn|Enum|IntFlag|IntEnum)(\[.*\])?"),
    ("py:(class|exc|obj|data)", r"(builtins\.)?(bytes|bytearray|memoryview|int|str|bool|float|"
                                r"dict|list|tuple|set|frozenset|object|type|None|Exception|"
                                r"ValueError|OSError|TypeError|KeyError)"),
    # Third-party libraries we build on.
    ("py:(class|exc|obj)", r"(construct|click|tqdm|jsonschema)(\..*)?"),
    ("py:(class|obj)", r"(Struct|Renamed|Container|Construct)"),
    # Literal values rendered by autodoc in type hints, e.g. Literal['MUST', 'SHOULD'].
    ("py:class", r"'.*'"),
    # Private base classes (``_Header``) shown by show-inheritance; private names have no page.
    ("py:class", r"(.*\.)?_[A-Za-z]\w*"),
    # Internal modules of the reference (file layer, backing files, bitmap cache) appear in
    # signatures of the public API but are not part of it, so they have no page.
    ("py:class", r"addcow_ref\.engine\.(fileio|backing|bitmapcache)\.\w+"),
]

# Everything a module exports is listed, documented or not; constant values are left out (the
# value of HEADER_V2 is a construct repr, its fields are on the spec's header page).
autodoc_default_options = {
    "members": True,
    "undoc-members": True,
    "no-value": True,
    "show-inheritance": True,
}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"

_PUBLIC = {id(getattr(addcow_ref, name)) for name in addcow_ref.__all__
           if not isinstance(getattr(addcow_ref, name), str)}
_current_module: list[str] = [""]


def _note_module(app: object, what: str, name: str, obj: object, options: object,
                 lines: list[str]) -> None:
    if what == "module":
        _current_module[0] = name


def _skip_reexported(app: object, what: str, name: str, obj: object, skip: bool,
                     options: object) -> bool | None:
    """A public object is documented once, on the package page, never again per module.

    Submodule pages would otherwise repeat every re-exported class, and Sphinx refuses duplicate
    object descriptions under -W. autodoc reads a module's docstring before filtering its members,
    so ``_note_module`` has recorded which module is being documented.
    """
    if what == "module" and _current_module[0] != "addcow_ref" and id(obj) in _PUBLIC:
        return True
    return None


def _parseable_signature(app: object, what: str, name: str, obj: object, options: object,
                         signature: str | None, return_annotation: str | None
                         ) -> tuple[str | None, str | None] | None:
    """Dataclass fields with ``default_factory`` show ``<factory>`` as their default, which is not
    Python; Sphinx then splits the signature at every comma (``dict[str`` / ``Any]``) and reports
    the pieces as missing classes. ``...`` parses and says the same."""
    if signature and "<factory>" in signature:
        return signature.replace("<factory>", "..."), return_annotation
    return None


def _literal_option_help(app: object, ctx: object, lines: list[str]) -> None:
    """Option help is written for the terminal (``--rules 'HDR-*'``), where ``*`` is a glob, not
    reStructuredText emphasis: escape it so the page shows what ``--help`` prints."""
    for i, line in enumerate(lines):
        if not line.lstrip().startswith(".. "):
            lines[i] = line.replace("\\", "\\\\").replace("*", "\\*")


def setup(app: object) -> None:
    app.connect("sphinx-click-process-options", _literal_option_help)  # type: ignore[attr-defined]
    app.connect("autodoc-process-signature", _parseable_signature)  # type: ignore[attr-defined]
    app.connect("autodoc-process-docstring", _note_module)  # type: ignore[attr-defined]
    app.connect("autodoc-skip-member", _skip_reexported)  # type: ignore[attr-defined]
