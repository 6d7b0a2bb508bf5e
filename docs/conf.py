"""Sphinx configuration of the add-cow site: the spec, the rule index, API and CLI reference.

Built with ``sphinx-build -W --keep-going -n``: any warning, including an unresolved reference,
fails the build, so a rule, field or option that disappears from the code cannot leave a silent
hole in the site.
"""

from __future__ import annotations

import re
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
#: The version of the *format* the spec describes, from the spec's own title
#: ("The add-cow format, version 2.0"); the sidebar shows it, the software version goes in the
#: footer and the index page, since a reader of the spec cares about the former.
FORMAT_VERSION = re.search(r"version (\d+\.\d+)",
                           (ROOT / "spec" / "index.rst").read_text("utf-8")).group(1)  # type: ignore[union-attr]

extensions = [
    "sphinx.ext.autodoc",
    "sphinx_click",
    "addcow_spec",
    "addcow_schemas", "samples",  # schemas at their $id URLs; console samples run at build time
    "addcow_hexdump", "addcow_manifest", "myst_parser",  # header hexdump; manifest format page
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_theme = "furo"
html_title = f"add-cow {FORMAT_VERSION}"
html_short_title = f"add-cow {FORMAT_VERSION}"
html_static_path = ["_static"]
html_css_files = ["addcow.css"]
html_last_updated_fmt = None
rst_epilog = f"""
.. |format_version| replace:: {FORMAT_VERSION}
.. |software_version| replace:: {release}
"""

# Smart quotes would turn ``--offset`` in running text (option help, guides) into an en dash
# and ``'-'`` into curly quotes, so a reader who copies a command gets one that fails. Keep
# curly quotes in prose ("q"), ellipses ("e"), but never touch dashes.
smartquotes_action = "qe"

# Man pages, built with ``sphinx-build -b man docs docs/man`` and committed under docs/man/
# (the wheel installs them into share/man/man1). Each source page holds one tool's
# ``.. click::`` directive; the HTML build leaves them out (the CLI page already has them).
MAN_TOOLS = {
    "addcow": "create, inspect and modify add-cow disk images",
    "addcow-check": "check add-cow images against the specification's rules",
    "addcow-conformance": "run an implementation against the add-cow conformance vectors",
    "addcow-vectors": "generate and inspect the add-cow conformance vectors",
}
man_pages = [(f"man/src/{name}", name, summary, [author], 1)
             for name, summary in MAN_TOOLS.items()]
man_show_urls = False
#: The date on each man page: the newest release of CHANGELOG.md, so that a rebuild gives the
#: same bytes (tests compare docs/man/ with a fresh build) and the date means something.
_RELEASED = re.search(r"^## \[[^\]]+\] - (\d{4}-\d{2}-\d{2})",
                      (ROOT / "CHANGELOG.md").read_text("utf-8"), re.MULTILINE)
today = _RELEASED.group(1) if _RELEASED else ""

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
    ("py:(class|func|exc)",
     r"addcow_ref\.engine\.(fileio|backing|bitmapcache|extents|resize|hydrate|oslocks|"
     r"descriptor|imagebase)\.\w+"),
    # Likewise the checker's JSON record types (TypedDicts in its findings module).
    ("py:class", r"addcow_conformance\.checker\.findings\.\w+"),
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


#: A value a reader types, quoted in help text: ``'-'``, ``'HDR-*'``, ``'-o help'``. Not an
#: apostrophe (``FILE's``): the opening quote follows no letter, the closing one precedes none.
_QUOTED = re.compile(r"(?<![\w`])'([^'\s][^']*?)'(?![\w`])")
#: sphinx-click's own marker for a required option, the one emphasis the help may keep.
_REQUIRED = "**Required**"


def _terminal_text_to_rst(line: str) -> str:
    """Help is written for the terminal, where ``*`` is a glob (``--rules 'HDR-*'``), not
    reStructuredText emphasis: escape it so the page shows what ``--help`` prints, and show a
    quoted value as inline code, which neither smart quotes nor a proportional font can spoil."""
    head, sep, rest = line.partition(_REQUIRED) if line.lstrip().startswith(_REQUIRED) \
        else ("", "", line)
    rest = rest.replace("\\", "\\\\").replace("*", "\\*")
    rest = _QUOTED.sub(lambda m: "``" + m.group(1).replace("\\*", "*").replace("\\\\", "\\")
                       + "``", rest)
    return head + sep + rest


def _literal_option_help(app: object, ctx: object, lines: list[str]) -> None:
    for i, line in enumerate(lines):
        if not line.lstrip().startswith(".. "):
            lines[i] = _terminal_text_to_rst(line)


def _examples_as_code(app: object, ctx: object, lines: list[str]) -> None:
    """A ``\\b`` block whose lines after the first are indented (``Examples:`` and commands)
    reaches us as a line block, set in a proportional font; make it a literal block, so the
    commands copy as they are. Other ``\\b`` blocks (an exit-status table) stay line blocks."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        block = []
        while i + len(block) < len(lines) and lines[i + len(block)].startswith("| "):
            block.append(lines[i + len(block)][2:])
        if len(block) > 1 and all(b.startswith("  ") for b in block[1:]):
            out += [_terminal_text_to_rst(block[0]), "", ".. code-block:: shell", ""]
            out += ["   " + b.strip() for b in block[1:]]
            out.append("")
            i += len(block)
        elif block:
            out += ["| " + _terminal_text_to_rst(b) for b in block]
            i += len(block)
        else:
            out.append(_terminal_text_to_rst(lines[i]))
            i += 1
    lines[:] = out


def _man_sources_only_for_man(app: object) -> None:
    """The man page sources repeat the CLI page's ``.. click::`` directives: outside the man
    builder they would be duplicate descriptions of every option."""
    if app.builder.name != "man":  # type: ignore[attr-defined]
        app.config.exclude_patterns.append("man/**")  # type: ignore[attr-defined]


def setup(app: object) -> None:
    app.connect("sphinx-click-process-options", _literal_option_help)  # type: ignore[attr-defined]
    app.connect("sphinx-click-process-description", _examples_as_code)  # type: ignore[attr-defined]
    app.connect("builder-inited", _man_sources_only_for_man)  # type: ignore[attr-defined]
    app.connect("autodoc-process-signature", _parseable_signature)  # type: ignore[attr-defined]
    app.connect("autodoc-process-docstring", _note_module)  # type: ignore[attr-defined]
    app.connect("autodoc-skip-member", _skip_reexported)  # type: ignore[attr-defined]
