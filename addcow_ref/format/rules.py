"""The rule registry: every normative MUST/SHOULD/MAY of the spec, by stable rule ID.

Loaded from ``rules.json``, which ``rulesource.py`` extracts from ``spec/*.rst``; a test fails
when the two disagree. The checker, the vector manifest and the error messages of the reference
all read this one list.
"""

from __future__ import annotations

import dataclasses
import json
import os
from functools import cache
from typing import Literal

__all__ = [
    "DOCS_SITE",
    "DOCS_URL_ENV",
    "REGISTRY_PATH",
    "ReaderDuty",
    "Rule",
    "all_rules",
    "docs_base_url",
    "get_rule",
    "registry_bytes",
    "rule_url",
    "spec_version",
]

#: ``rules.json`` sits beside this module in the source tree, the wheel and the editable
#: install alike (hatch ships every file of the package directory). A plain read of that path, not
#: ``importlib.resources``, whose import costs more than reading the registry: this module is on
#: the start-up path of ``addcow-check``.
REGISTRY_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules.json")

#: The published site, one directory per spec version (``.readthedocs.yaml``). Clause links are
#: ``DOCS_SITE + spec_version() + "/" + rule.url_path``: a link names the version of the text
#: the rule registry was extracted from, so it keeps showing the clause a verdict was reached
#: with after the spec moves on ("latest" would not).
DOCS_SITE = "https://addcow.readthedocs.io/en/"
#: Environment variable that replaces the whole docs root (site and version), e.g. with a local
#: build: ``file:///home/me/addcow/docs/_build/html`` or a plain path to that directory.
DOCS_URL_ENV = "ADDCOW_DOCS_URL"

Severity = Literal["error", "warning", "info"]
#: What a reader does with a file that breaks a file-testable rule (spec/conventions.rst).
ReaderDuty = Literal["refuse", "ignore", "either"]


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    title: str
    text: str
    level: Literal["MUST", "SHOULD", "MAY"]
    severity: Severity
    applies_to: Literal["file", "reader", "writer"]
    testability: Literal["file", "reader", "writer", "untestable"]
    #: Set exactly for ``testability == "file"``; ``None`` for every other rule.
    reader: ReaderDuty | None
    unbreakable: bool
    reason: str | None
    field: str | None
    spec_since: str
    status: Literal["active", "retired"]
    #: The rule whose text this one took over part of, when it was split off it.
    split_from: str | None
    page: str
    anchor: str

    @property
    def url_path(self) -> str:
        """Clause path relative to the docs root, e.g. ``spec/header.html#rule-hdr-magic``."""
        return f"{self.page}.html#{self.anchor}"


@cache
def all_rules() -> dict[str, Rule]:
    """Every rule, keyed by ID, in ID order."""
    data = json.loads(registry_bytes().decode("utf-8"))
    return {r["id"]: Rule(**r) for r in data["rules"]}


def registry_bytes() -> bytes:
    """The bytes of ``rules.json``, as shipped (what a report's ``rules_digest`` hashes)."""
    with open(REGISTRY_PATH, "rb") as f:
        return f.read()


def get_rule(rule_id: str) -> Rule:
    try:
        return all_rules()[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule ID {rule_id!r}") from None


def spec_version() -> str:
    """The newest spec version any rule of the registry comes from: the version of the text the
    registry (and so every verdict and clause link) was written against."""
    versions = {r.spec_since for r in all_rules().values()}
    return max(versions, key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit()))


def docs_base_url(base: str | None = None) -> str:
    """The docs root clause paths are appended to, always ending in ``/``: ``base`` when given,
    else ``$ADDCOW_DOCS_URL``, else the published site at :func:`spec_version`. A value without
    a URL scheme is a directory (a local ``sphinx-build`` output) and becomes a ``file://`` URL."""
    chosen = base if base else os.environ.get(DOCS_URL_ENV)
    if not chosen:  # the published site: a URL already (and no urllib import for every check)
        return f"{DOCS_SITE}{spec_version()}/"
    from pathlib import Path
    from urllib.parse import urlsplit

    if not urlsplit(chosen).scheme or len(urlsplit(chosen).scheme) == 1:  # 1: a Windows drive
        chosen = Path(chosen).expanduser().resolve().as_uri()
    return chosen if chosen.endswith("/") else chosen + "/"


def rule_url(rule_id: str, base: str | None = None) -> str:
    """The link to a rule's clause under :func:`docs_base_url` (``base``, the environment or
    the published site)."""
    return docs_base_url(base) + get_rule(rule_id).url_path
