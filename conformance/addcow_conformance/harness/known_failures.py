"""The known-failures ledger: vectors an implementation is known to fail, with a reason.

TOML, one key per vector id or glob::

    "read/backing-ends-mid-cluster" = { reason = "zeros past EOF missing", bug = "https://…" }
    "legacy/*" = { reason = "no v1 support planned" }

A listed vector that fails is ``xfail`` (expected); one that passes is ``xpass`` (the ledger is
stale: a warning, an error with ``--strict-known-failures``). A reason is mandatory: a ledger entry
without one is how failures get forgotten.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import tomllib
from pathlib import Path

__all__ = ["KnownFailure", "KnownFailures", "KnownFailuresError", "load_known_failures"]


class KnownFailuresError(ValueError):
    """The ledger file cannot be read or has a malformed entry."""


@dataclasses.dataclass(frozen=True)
class KnownFailure:
    pattern: str
    reason: str
    bug: str | None


@dataclasses.dataclass(frozen=True)
class KnownFailures:
    entries: tuple[KnownFailure, ...] = ()

    def lookup(self, vector_id: str) -> KnownFailure | None:
        """The first entry naming ``vector_id`` exactly, else the first glob matching it."""
        for e in self.entries:
            if e.pattern == vector_id:
                return e
        for e in self.entries:
            if fnmatch.fnmatchcase(vector_id, e.pattern):
                return e
        return None


def load_known_failures(path: Path) -> KnownFailures:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as e:
        raise KnownFailuresError(f"{path}: cannot read ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise KnownFailuresError(f"{path}: not TOML ({e})") from None
    entries = []
    for key, value in data.items():
        if not isinstance(value, dict):
            raise KnownFailuresError(f"{path}: {key!r} must be a table {{reason = \"…\"}}")
        reason = value.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise KnownFailuresError(f"{path}: {key!r} has no reason")
        bug = value.get("bug")
        if bug is not None and not isinstance(bug, str):
            raise KnownFailuresError(f"{path}: {key!r}: bug must be a string")
        unknown = set(value) - {"reason", "bug"}
        if unknown:
            raise KnownFailuresError(f"{path}: {key!r}: unknown keys {sorted(unknown)}")
        entries.append(KnownFailure(key, reason, bug))
    return KnownFailures(tuple(entries))
