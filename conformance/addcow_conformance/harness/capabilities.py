"""What an adapter declares it can do (``COMMAND capabilities``), and how a vector is matched
against it.

An adapter that does not answer ``capabilities`` is assumed to support everything: the harness
then holds it to every vector, which is the strict reading, never the lenient one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypedDict

from addcow_conformance.harness.impl import Impl
from addcow_conformance.protocol import CALLS, CMD_CAPABILITIES, POLICIES, Policy, call_of

__all__ = ["Capabilities", "CapabilitiesDict", "probe_capabilities"]


class CapabilitiesDict(TypedDict):
    """The declared capabilities as the JSON results record them."""

    name: str
    version: str
    supports: list[str] | None
    features: list[str] | None
    policies: dict[str, Policy]
    note: str | None


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What the adapter declared; ``supports``/``features`` of None = it did not say."""

    name: str
    version: str
    supports: frozenset[str] | None
    features: frozenset[str] | None
    policies: Mapping[str, Policy]
    note: str | None = None

    def has(self, requirement: str) -> bool:
        call = call_of(requirement)
        if call in CALLS:
            if self.supports is None:
                return True
            if requirement in self.supports or call in self.supports:
                return True
            return requirement == call and any(s.startswith(call + ":") for s in self.supports)
        return self.features is None or requirement in self.features

    def policy_for(self, flags: Sequence[str]) -> Policy | None:
        """'refuse' if any flag's declared policy refuses, 'accept' if all accept, else None."""
        declared = [self.policies.get(f) for f in flags]
        if "refuse" in declared:
            return "refuse"
        if declared and all(d == "accept" for d in declared):
            return "accept"
        return None

    def as_dict(self) -> CapabilitiesDict:
        return {
            "name": self.name,
            "version": self.version,
            "supports": sorted(self.supports) if self.supports is not None else None,
            "features": sorted(self.features) if self.features is not None else None,
            "policies": dict(self.policies),
            "note": self.note,
        }


def _policy(value: object) -> Policy | None:
    return "accept" if value == "accept" else "refuse" if value == "refuse" else None


def probe_capabilities(impl: Impl, work: Path, timeout: float) -> Capabilities:
    """Ask the adapter ``capabilities``; an adapter without it is assumed to support everything."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / "capabilities.out"
    r = impl.call([CMD_CAPABILITIES], cwd=work, stdout_path=out, timeout=timeout)
    unknown = Capabilities(impl.text, "", None, None, {})
    if r.exit_code != 0:
        return dataclasses.replace(
            unknown, note=f"'capabilities' {r.status_text}: assuming every call is supported"
        )
    try:
        data = json.loads(r.stdout_bytes(1 << 20))
        if not isinstance(data, dict):
            raise ValueError("not an object")
        supports = data.get("supports")
        features = data.get("features")
        policies = data.get("policies") or {}
        if not isinstance(policies, dict):
            raise ValueError("'policies' is not an object")
        declared = {str(k): p for k, v in policies.items() if (p := _policy(v)) is not None}
        return Capabilities(
            name=str(data.get("name", impl.text)),
            version=str(data.get("version", "")),
            supports=frozenset(map(str, supports)) if isinstance(supports, list) else None,
            features=frozenset(map(str, features)) if isinstance(features, list) else None,
            policies=declared,
            note=None
            if all(v in POLICIES for v in policies.values())
            else "'capabilities': policies other than accept/refuse were ignored",
        )
    except ValueError as e:
        return dataclasses.replace(
            unknown, note=f"'capabilities' printed unusable JSON ({e}): assuming everything"
        )
