"""The suite's version history: which vectors each suite version held, and what they expected.

Consumers pin a ``suite_version`` and trust that its expectations never move under them, so a
changed expectation must come with a version bump: an expectation that changes in place under
a fixed version leaves its users unable to tell their own regression from a suite update.
``history.json`` (committed beside this module) records, per suite version, every vector id and
a digest of its expectation. From it the generator derives each
vector's ``since`` and ``changed``, the manifest's ``retired`` list and ``CHANGELOG.md``; and it
refuses to write vectors whose expectations differ from the latest recorded version, so a
change cannot be published silently. ``addcow-vectors record-version X.Y.Z`` records a new
version after checking that the bump is big enough (major for a changed or removed vector,
minor for an added one).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from addcow_conformance.vectors.changenotes import NOTES

__all__ = [
    "HISTORY_PATH",
    "HistoryError",
    "SuiteVersion",
    "check_current",
    "expectation_digest",
    "load_history",
    "provenance",
    "record_version",
    "render_changelog",
    "retired_ids",
    "write_history",
]

#: Where ``record-version`` writes in a source checkout.
HISTORY_PATH = Path(__file__).with_name("history.json")

#: Entry fields that are not part of the expectation: prose and provenance. Changing a
#: description is at most a patch release and is not tracked here.
_NOT_EXPECTATION = frozenset({"description", "since", "changed", "generator"})


class HistoryError(ValueError):
    """The vectors and the recorded history disagree, or a new version is not a valid bump."""


@dataclasses.dataclass(frozen=True)
class SuiteVersion:
    version: str
    #: vector id -> digest of its expectation in this version
    vectors: Mapping[str, str]


def _key(version: str) -> tuple[int, int, int]:
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise HistoryError(f"{version!r} is not a semantic version X.Y.Z")
    return int(parts[0]), int(parts[1]), int(parts[2])


def expectation_digest(entry: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of everything a consumer checks against."""
    kept = {k: v for k, v in entry.items() if k not in _NOT_EXPECTATION}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_history(text: str | None = None) -> list[SuiteVersion]:
    """The recorded versions, oldest first (``text`` defaults to the packaged history.json)."""
    if text is None:
        text = resources.files(__package__).joinpath("history.json").read_text("utf-8")
    doc = json.loads(text)
    out = [SuiteVersion(v["version"], dict(v["vectors"])) for v in doc["versions"]]
    keys = [_key(v.version) for v in out]
    if not out or keys != sorted(set(keys)):
        raise HistoryError("history.json must list at least one version, in increasing order")
    return out


def history_text(history: Sequence[SuiteVersion]) -> str:
    doc = {"versions": [{"version": v.version, "vectors": dict(sorted(v.vectors.items()))}
                        for v in history]}
    return json.dumps(doc, indent=2) + "\n"


def write_history(history: Sequence[SuiteVersion], path: Path = HISTORY_PATH) -> None:
    path.write_text(history_text(history), "utf-8")


def _diff(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[list[str], list[str],
                                                                   list[str]]:
    """(added, changed, removed) ids from ``old`` to ``new``."""
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(i for i in set(old) & set(new) if old[i] != new[i])
    return added, changed, removed


def _listing(ids: Sequence[str], limit: int = 10) -> str:
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def check_current(history: Sequence[SuiteVersion], digests: Mapping[str, str]) -> str:
    """The current suite version; raises unless the vectors are exactly the latest recorded."""
    latest = history[-1]
    added, changed, removed = _diff(latest.vectors, digests)
    if not (added or changed or removed):
        return latest.version
    what = []
    if changed:
        what.append(f"changed expectations: {_listing(changed)}")
    if removed:
        what.append(f"removed: {_listing(removed)}")
    if added:
        what.append(f"added: {_listing(added)}")
    bump = "a major" if changed or removed else "a minor"
    raise HistoryError(
        f"the vectors differ from suite {latest.version} as recorded in "
        f"conformance/addcow_conformance/vectors/history.json ({'; '.join(what)}). "
        "Published expectations never "
        f"change silently: record {bump} version with `addcow-vectors record-version X.Y.Z`, "
        "or undo the change.")


def record_version(history: Sequence[SuiteVersion], version: str,
                   digests: Mapping[str, str]) -> list[SuiteVersion]:
    """``history`` plus ``version`` holding ``digests``, if that is a big enough bump."""
    latest = history[-1]
    new, old = _key(version), _key(latest.version)
    if new <= old:
        raise HistoryError(f"{version} is not after the latest recorded version {latest.version}")
    added, changed, removed = _diff(latest.vectors, digests)
    if not (added or changed or removed):
        raise HistoryError(f"nothing changed since {latest.version}: no version to record")
    every = {i for v in history for i in v.vectors}
    reused = sorted(set(added) & every)
    if reused:
        raise HistoryError(f"ids of retired vectors are never reused: {_listing(reused)}")
    if (changed or removed) and new[0] == old[0]:
        raise HistoryError(f"{version}: changed or removed vectors need a major version "
                           f"(after {latest.version})")
    if added and new[:2] == old[:2]:
        raise HistoryError(f"{version}: added vectors need at least a minor version "
                           f"(after {latest.version})")
    return [*history, SuiteVersion(version, dict(digests))]


def provenance(history: Sequence[SuiteVersion]) -> dict[str, tuple[str, str]]:
    """Vector id -> (since, changed) for the vectors of the latest version: the version that
    introduced it and the one that last changed its expectation (``since`` if never)."""
    out: dict[str, tuple[str, str]] = {}
    previous: Mapping[str, str] = {}
    for v in history:
        for vid, digest in v.vectors.items():
            if vid not in out:
                out[vid] = (v.version, v.version)
            elif previous.get(vid) != digest:
                out[vid] = (out[vid][0], v.version)
        previous = v.vectors
    return {vid: out[vid] for vid in history[-1].vectors}


def retired_ids(history: Sequence[SuiteVersion]) -> list[str]:
    """Ids some version held that the latest does not: never to be reused."""
    every = {i for v in history for i in v.vectors}
    return sorted(every - set(history[-1].vectors))


def render_changelog(history: Sequence[SuiteVersion]) -> str:
    """``vectors/CHANGELOG.md``: per suite version, newest first, the ids added, changed and
    retired relative to the version before, each with its note (``changenotes.NOTES``)."""
    lines = [
        "# Changelog of the add-cow golden test vectors",
        "",
        "Generated by `addcow-vectors generate` from "
        "`conformance/addcow_conformance/vectors/history.json`; do not",
        "edit. A suite version's major number moves when an expectation changes or a vector is",
        "retired, its minor number when vectors are added. Retired ids are never reused.",
    ]
    previous: Mapping[str, str] = {}
    sections: list[list[str]] = []
    for v in history:
        added, changed, removed = _diff(previous, v.vectors)
        section = ["", f"## {v.version}", "",
                   f"{len(v.vectors)} vectors: {len(added)} added, {len(changed)} changed, "
                   f"{len(removed)} retired."]
        notes = NOTES.get(v.version, {})
        for title, ids in (("Added", added), ("Changed", changed), ("Retired", removed)):
            if ids:
                section += ["", f"### {title}", ""] + [
                    f"- `{i}`: {notes[i]}" if i in notes else f"- `{i}`" for i in ids]
        sections.append(section)
        previous = v.vectors
    for section in reversed(sections):
        lines += section
    return "\n".join(lines) + "\n"
