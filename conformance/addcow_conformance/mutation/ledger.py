"""The reviewed ledger of mutants that survive the vectors, each with why no vector kills it.

A survivor is a change of behaviour the vectors do not notice. Most are of a kind no vector can
or should notice, and each reason of :data:`REASONS` says which; a survivor that is not listed
is reported as new, since it is either a gap in the vectors or a survivor still to review. The
ledger is TOML, one line per mutant: ``"ID" = { reason = "...", note = "..." }``, keyed by the
mutant identity of :mod:`addcow_conformance.mutation.mutate`. An entry still matches when only
the mutant's index moved (a similar site added earlier in the same function): its module,
function, operator and line hash are enough when they pick out one mutant.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal, get_args

from addcow_conformance.mutation.mutate import MutantSpec

__all__ = [
    "DEFAULT_LEDGER",
    "REASONS",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "Reason",
    "load_ledger",
    "toml_entry",
    "unmatched",
]

Reason = Literal[
    "equivalent",
    "unreachable-by-adapter",
    "performance-only",
    "untestable-by-static-files",
    "spec-leaves-open",
]

#: Each reason with what it claims about the mutant (published on the docs page).
REASONS: dict[Reason, str] = {
    "equivalent": "the mutated code behaves as the original for every input it can get",
    "unreachable-by-adapter": "no call of the adapter interface (info, read, map, apply with "
                              "write, write-zeroes, discard, resize, flush, hydrate, upgrade, "
                              "commit, rebase) runs the mutated code, or none can see its "
                              "effect (a warning only the checker reports)",
    "performance-only": "only speed, memory or the number of system calls changes",
    "untestable-by-static-files": "the change shows only in the order of writes and syncs, "
                                  "under concurrency, or on a failing device: nothing a "
                                  "committed file and a sequence of calls can observe",
    "spec-leaves-open": "the specification allows both behaviours",
}
assert set(REASONS) == set(get_args(Reason))

#: The ledger the project reviews, next to this module.
DEFAULT_LEDGER = Path(__file__).with_name("ledger.toml")


class LedgerError(ValueError):
    """The ledger file cannot be read or has an entry that is not well formed."""


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    id: str
    reason: Reason
    note: str

    @property
    def loose_key(self) -> tuple[str, str, str, str]:
        module, function, operator, _index, digest = self.id.rsplit(":", 4)
        return (module, function, operator, digest)


@dataclasses.dataclass(frozen=True)
class Ledger:
    entries: dict[str, LedgerEntry]

    def lookup(self, spec: MutantSpec) -> LedgerEntry | None:
        """The entry for ``spec``: by identity, else by identity without the index when that
        matches exactly one entry."""
        entry = self.entries.get(spec.id)
        if entry is not None:
            return entry
        loose = [e for e in self.entries.values() if e.loose_key == spec.loose_key]
        return loose[0] if len(loose) == 1 else None

    def counts(self) -> dict[str, int]:
        """How many entries give each reason (every reason listed, zeros included)."""
        out: dict[str, int] = dict.fromkeys(REASONS, 0)
        for e in self.entries.values():
            out[e.reason] += 1
        return out


def _entry(path: Path, key: str, value: object) -> LedgerEntry:
    if not isinstance(value, Mapping):
        raise LedgerError(f"{path}: entry {key!r}: expected a table {{ reason, note }}")
    if key.count(":") < 4:
        raise LedgerError(f"{path}: entry {key!r}: not a mutant id "
                          "(MODULE:FUNCTION:OPERATOR:INDEX:HASH)")
    reason = value.get("reason")
    if reason not in REASONS:
        raise LedgerError(f"{path}: entry {key!r}: reason {reason!r} is not one of "
                          f"{', '.join(REASONS)}")
    note = value.get("note", "")
    if not isinstance(note, str) or not note.strip():
        raise LedgerError(f"{path}: entry {key!r}: field 'note' must say why (a string)")
    unknown = set(value) - {"reason", "note"}
    if unknown:
        raise LedgerError(f"{path}: entry {key!r}: unknown field {sorted(unknown)[0]!r}")
    return LedgerEntry(key, reason, note)


def load_ledger(path: Path = DEFAULT_LEDGER) -> Ledger:
    """Read a ledger; a missing file is an empty ledger."""
    if not path.exists():
        return Ledger({})
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise LedgerError(f"{path}: {e}") from None
    return Ledger({key: _entry(path, key, value) for key, value in doc.items()})


def toml_entry(spec: MutantSpec, reason: str, note: str) -> str:
    """One ledger line (a JSON string is a valid TOML basic string)."""
    return (f"{json.dumps(spec.id)} = {{ reason = {json.dumps(reason)}, "
            f"note = {json.dumps(note, ensure_ascii=False)} }}")


def unmatched(ledger: Ledger, specs: Iterable[MutantSpec]) -> list[str]:
    """Ledger entries no mutant of ``specs`` matches (stale after a full run)."""
    seen = {e.id for s in specs if (e := ledger.lookup(s)) is not None}
    return sorted(set(ledger.entries) - seen)
