"""Extract the rule registry from the normative spec text (``spec/*.rst``).

The spec is the one place a rule is written: each normative sentence sits inside a
``.. rule:: ID`` directive with its level, severity and testability as options. This module reads
those directives without Sphinx, so ``addcow_ref/format/rules.json`` (the importable registry) can
be
regenerated and compared in a test, and the Sphinx extension renders the same blocks.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["RULE_ID_RE", "extract_rules", "main", "render_rules_json"]

RULE_ID_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")
_DIRECTIVE = re.compile(r"^\.\. rule:: *(\S+) *$")
_OPTION = re.compile(r"^ {3}:([a-z-]+):(?: *(.*))?$")
_REQUIRED = ("level", "severity", "applies-to", "testability")
_CHOICES = {
    "level": {"MUST", "SHOULD"},
    "severity": {"error", "warning", "info"},
    "applies-to": {"file", "reader", "writer"},
    "testability": {"file", "reader", "writer", "untestable"},
}
_KNOWN = set(_REQUIRED) | {"field", "unbreakable", "reason", "since", "retired"}


def anchor_for(rule_id: str) -> str:
    """HTML anchor of a rule: derived from the ID, never from a section number."""
    return "rule-" + rule_id.lower()


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.;:])(\s|$)", text)
    return (m.group(1) if m else text).strip()


def _parse_file(path: Path, page: str) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    rules: list[dict[str, Any]] = []
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
        for key in _REQUIRED:
            if key not in opts:
                raise ValueError(f"{path}:{start}: rule {rule_id} lacks :{key}:")
        for key, allowed in _CHOICES.items():
            if opts[key] not in allowed:
                raise ValueError(f"{path}:{start}: rule {rule_id} :{key}: must be one of "
                                 f"{sorted(allowed)}, not {opts[key]!r}")
        if opts["testability"] == "untestable" and not opts.get("reason"):
            raise ValueError(f"{path}:{start}: untestable rule {rule_id} needs a :reason:")
        if not text:
            raise ValueError(f"{path}:{start}: rule {rule_id} has no normative text")
        rules.append({
            "id": rule_id,
            "title": _first_sentence(text),
            "text": text,
            "level": opts["level"],
            "severity": opts["severity"],
            "applies_to": opts["applies-to"],
            "testability": opts["testability"],
            "unbreakable": "unbreakable" in opts,
            "reason": opts.get("reason"),
            "field": opts.get("field") or None,
            "spec_since": opts.get("since") or ("1" if rule_id.startswith("V1-") else "2.0"),
            "status": "retired" if "retired" in opts else "active",
            "page": page,
            "anchor": anchor_for(rule_id),
        })
    return rules


def extract_rules(spec_dir: Path) -> list[dict[str, Any]]:
    """Return every rule of the spec, sorted by ID; duplicate IDs are an error."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(spec_dir.glob("*.rst")):
        for rule in _parse_file(path, f"spec/{path.stem}"):
            if rule["id"] in found:
                raise ValueError(f"rule {rule['id']} is declared twice "
                                 f"({found[rule['id']]['page']} and {rule['page']})")
            found[rule["id"]] = rule
    return [found[k] for k in sorted(found)]


def render_rules_json(spec_dir: Path) -> str:
    return json.dumps({"rules": extract_rules(spec_dir)}, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m addcow_ref.format.rulesource [SPEC_DIR [OUT]]``: regenerate ``rules.json``."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(__file__).resolve().parent.parent
    spec_dir = Path(args[0]) if args else root / "spec"
    out = Path(args[1]) if len(args) > 1 else Path(__file__).with_name("rules.json")
    out.write_text(render_rules_json(spec_dir), encoding="utf-8")
    print(f"wrote {out} from {spec_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
