"""The rule registry: every normative MUST/SHOULD of the spec, by stable rule ID.

Loaded from ``rules.json``, which ``rulesource.py`` extracts from ``spec/*.rst``; a test fails
when the two disagree. The checker, the vector manifest and the error messages of the reference
all read this one list.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from importlib import resources
from typing import Literal

__all__ = ["SPEC_BASE_URL", "Rule", "all_rules", "get_rule", "rule_url"]

#: Where the rendered spec lives; clause links are ``SPEC_BASE_URL + rule.url_path``.
SPEC_BASE_URL = "https://addcow.readthedocs.io/en/latest/"

Severity = Literal["error", "warning", "info"]


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    title: str
    text: str
    level: Literal["MUST", "SHOULD"]
    severity: Severity
    applies_to: Literal["file", "reader", "writer"]
    testability: Literal["file", "reader", "writer", "untestable"]
    unbreakable: bool
    reason: str | None
    field: str | None
    spec_since: str
    status: Literal["active", "retired"]
    page: str
    anchor: str

    @property
    def url_path(self) -> str:
        """Clause path relative to the docs root, e.g. ``spec/header.html#rule-hdr-magic``."""
        return f"{self.page}.html#{self.anchor}"


@cache
def all_rules() -> dict[str, Rule]:
    """Every rule, keyed by ID, in ID order."""
    data = json.loads(resources.files(__package__).joinpath("rules.json").read_text("utf-8"))
    return {r["id"]: Rule(**r) for r in data["rules"]}


def get_rule(rule_id: str) -> Rule:
    try:
        return all_rules()[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule ID {rule_id!r}") from None


def rule_url(rule_id: str, base: str = SPEC_BASE_URL) -> str:
    return base + get_rule(rule_id).url_path
