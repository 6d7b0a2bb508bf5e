"""Extract the rule registry from the normative spec text (``spec/*.rst``).

The spec is the one place a rule is written: each normative sentence sits inside a
``.. rule:: ID`` directive with its level, severity and testability as options. This module reads
those directives without Sphinx, so ``addcow_ref/format/rules.json`` (the importable registry) can
be regenerated and compared in a test, and the Sphinx extension renders the same blocks.

The metadata must agree with the text, or the registry would tell the checker and the vectors
something the reader of the spec does not see: a rule's ``:level:`` is the strongest RFC 2119
key word of its text, every file-testable rule says what a reader does with a file that breaks
it (``:reader:``), and a rule split off another names it (``:split-from:``). A rule that breaks
this is refused with a one-line error naming the file, the line and the rule.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["KEYWORD_LEVEL", "RULE_ID_RE", "anchor_for", "extract_rules", "main",
           "render_rules_json", "strongest_keyword"]

RULE_ID_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")
_DIRECTIVE = re.compile(r"^\.\. rule:: *(\S+) *$")
_OPTION = re.compile(r"^ {3}:([a-z-]+):(?: *(.*))?$")
_REQUIRED = ("level", "severity", "applies-to", "testability")
_CHOICES = {
    "level": {"MUST", "SHOULD", "MAY"},
    "severity": {"error", "warning", "info"},
    "applies-to": {"file", "reader", "writer"},
    "testability": {"file", "reader", "writer", "untestable"},
}
#: What a reader does with a file that breaks a file-testable rule (spec/conventions.rst).
READER_DUTIES = {"refuse", "ignore", "either"}
_KNOWN = set(_REQUIRED) | {"field", "unbreakable", "reason", "since", "retired", "reader",
                           "split-from"}

#: RFC 2119 / RFC 8174 key words (in capitals only) and the level each one expresses.
KEYWORD_LEVEL = {"MUST": "MUST", "REQUIRED": "MUST", "SHALL": "MUST",
                 "SHOULD": "SHOULD", "RECOMMENDED": "SHOULD",
                 "MAY": "MAY", "OPTIONAL": "MAY"}
_KEYWORD_RE = re.compile(r"\b(" + "|".join(KEYWORD_LEVEL) + r")\b")
_STRENGTH = ("MAY", "SHOULD", "MUST")


def anchor_for(rule_id: str) -> str:
    """HTML anchor of a rule: derived from the ID, never from a section number."""
    return "rule-" + rule_id.lower()


def strongest_keyword(text: str) -> str | None:
    """The strongest level (MUST > SHOULD > MAY) that the key words of ``text`` express.

    ``MUST NOT`` and ``SHOULD NOT`` count as their positive word: a prohibition is as strong as
    the requirement it negates. ``None`` when the text holds no key word in capitals.
    """
    levels = {KEYWORD_LEVEL[w] for w in _KEYWORD_RE.findall(text)}
    return max(levels, key=_STRENGTH.index) if levels else None


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.;:])(\s|$)", text)
    return (m.group(1) if m else text).strip()


def _check_metadata(where: str, rule_id: str, opts: dict[str, str], text: str) -> None:
    """Refuse metadata that the clause's own text contradicts (see the module docstring)."""
    for key in _REQUIRED:
        if key not in opts:
            raise ValueError(f"{where}: rule {rule_id} lacks :{key}:")
    for key, allowed in _CHOICES.items():
        if opts[key] not in allowed:
            raise ValueError(f"{where}: rule {rule_id} :{key}: must be one of "
                             f"{sorted(allowed)}, not {opts[key]!r}")
    if opts["testability"] == "untestable" and not opts.get("reason"):
        raise ValueError(f"{where}: untestable rule {rule_id} needs a :reason:")
    if not text:
        raise ValueError(f"{where}: rule {rule_id} has no normative text")
    strongest = strongest_keyword(text)
    if strongest is None:
        raise ValueError(f"{where}: rule {rule_id} holds no RFC 2119 key word "
                         f"(MUST, SHOULD or MAY in capitals)")
    if strongest != opts["level"]:
        raise ValueError(f"{where}: rule {rule_id} is :level: {opts['level']} but the strongest "
                         f"key word of its text is {strongest}")
    if opts["testability"] == "file":
        if opts.get("reader") not in READER_DUTIES:
            raise ValueError(f"{where}: file-testable rule {rule_id} needs :reader: one of "
                             f"{sorted(READER_DUTIES)}, not {opts.get('reader')!r}")
    elif "reader" in opts:
        raise ValueError(f"{where}: rule {rule_id} has :reader: but only file-testable rules "
                         f"(:testability: file) carry a reader duty")
    split = opts.get("split-from")
    if split is not None and not RULE_ID_RE.match(split):
        raise ValueError(f"{where}: rule {rule_id} :split-from: {split!r} is not a rule ID")


def _parse_file(path: Path, page: str) -> list[tuple[str, dict[str, Any]]]:
    """(``file:line`` of the directive, rule) of every rule of one page."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rules: list[tuple[str, dict[str, Any]]] = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m:
            i += 1
            continue
        rule_id, start = m.group(1), i + 1
        if not RULE_ID_RE.match(rule_id):
            raise ValueError(f"{path}:{start}: rule ID {rule_id!r} is not AREA-NAME in [A-Z0-9-]")
        i += 1
        opts: dict[str, str] = {}
        while i < len(lines) and (om := _OPTION.match(lines[i])):
            if om.group(1) not in _KNOWN:
                raise ValueError(f"{path}:{i + 1}: unknown option :{om.group(1)}: on {rule_id}")
            opts[om.group(1)] = (om.group(2) or "").strip()
            i += 1
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith("   ")):
            body.append(lines[i].strip())
            i += 1
        text = " ".join(" ".join(body).split())
        _check_metadata(f"{path}:{start}", rule_id, opts, text)
        rules.append((f"{path}:{start}", {
            "id": rule_id,
            "title": _first_sentence(text),
            "text": text,
            "level": opts["level"],
            "severity": opts["severity"],
            "applies_to": opts["applies-to"],
            "testability": opts["testability"],
            "reader": opts.get("reader"),
            "unbreakable": "unbreakable" in opts,
            "reason": opts.get("reason"),
            "field": opts.get("field") or None,
            "spec_since": opts.get("since") or ("1" if rule_id.startswith("V1-") else "2.0"),
            "status": "retired" if "retired" in opts else "active",
            "split_from": opts.get("split-from"),
            "page": page,
            "anchor": anchor_for(rule_id),
        }))
    return rules


def extract_rules(spec_dir: Path) -> list[dict[str, Any]]:
    """Return every rule of the spec, sorted by ID; duplicate IDs are an error, and so is a
    ``:split-from:`` that names no rule of the spec."""
    found: dict[str, dict[str, Any]] = {}
    where: dict[str, str] = {}
    for path in sorted(spec_dir.glob("*.rst")):
        for loc, rule in _parse_file(path, f"spec/{path.stem}"):
            if rule["id"] in found:
                raise ValueError(f"{loc}: rule {rule['id']} is declared twice "
                                 f"({found[rule['id']]['page']} and {rule['page']})")
            found[rule["id"]] = rule
            where[rule["id"]] = loc
    for rule in found.values():
        if rule["split_from"] is not None and rule["split_from"] not in found:
            raise ValueError(f"{where[rule['id']]}: rule {rule['id']} :split-from: names "
                             f"{rule['split_from']}, which the spec does not declare")
    return [found[k] for k in sorted(found)]


def render_rules_json(spec_dir: Path) -> str:
    return json.dumps({"rules": extract_rules(spec_dir)}, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m addcow_ref.format.rulesource [SPEC_DIR [OUT]]``: regenerate ``rules.json``."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(__file__).resolve().parents[2]  # the checkout: addcow_ref/format/ -> ../..
    spec_dir = Path(args[0]) if args else root / "spec"
    out = Path(args[1]) if len(args) > 1 else Path(__file__).with_name("rules.json")
    try:
        text = render_rules_json(spec_dir)
    except ValueError as exc:
        print(f"rulesource: {exc}", file=sys.stderr)
        return 1
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} from {spec_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
