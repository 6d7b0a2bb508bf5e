"""The scenario registry: each scenario is a function that measures and returns result rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .measure import Row

__all__ = ["SCENARIOS", "Params", "Scenario", "ScenarioSkipped", "scenario"]


class ScenarioSkipped(Exception):
    """Raised by a scenario that cannot run here (a missing peer, an API not built yet, a size
    the file system cannot hold); the reason is published on the results page, never dropped."""


@dataclasses.dataclass(frozen=True)
class Params:
    """How big and how often: ``tiny`` shrinks every size so a smoke test runs in seconds."""

    tiny: bool = False
    repeats: int = 5
    workdir: str = "/var/tmp"
    #: Where built images survive between runs (keyed by their parameters); tiny runs keep
    #: theirs in ``workdir`` so the smoke test leaves nothing behind.
    cache: str = "/var/tmp/addcow-bench"

    @property
    def cheap_repeats(self) -> int:
        """Repeats for scenarios whose runs take well under a second: more samples cost little
        and steady the medians on a shared machine."""
        return self.repeats if self.tiny else max(self.repeats, 7)


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Callable[[Params], list[Row]]
    #: External tools the scenario needs; missing ones make it skip with a reason.
    needs: tuple[str, ...] = ()


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, description: str, *, needs: tuple[str, ...] = (),
             replaces: bool = False
             ) -> Callable[[Callable[[Params], list[Row]]], Callable[[Params], list[Row]]]:
    """Register a scenario. ``replaces``: take over a name an imported script registered itself
    (a wrapper that judges the script's measurements against its target)."""
    def register(fn: Callable[[Params], list[Row]]) -> Callable[[Params], list[Row]]:
        if name in SCENARIOS and not replaces:
            raise ValueError(f"scenario {name} registered twice")
        SCENARIOS[name] = Scenario(name, description, fn, needs)
        return fn
    return register
