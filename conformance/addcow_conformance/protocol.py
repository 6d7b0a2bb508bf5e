"""The adapter protocol: the process interface between the harness and an implementation.

An implementation under test is a command the harness runs once per call (``COMMAND info
IMAGE``, ...; docs/guides/test-your-implementation.rst). The harness, the reference adapter and
the mutants all speak it, so its words live here once: the subcommands and their arguments, the
exit statuses that tell a clean refusal from a crash and "not supported" from a failure, the
capability flags an adapter may declare, the feature names a vector may require, and the
policies for ``acceptable`` vectors. This module imports nothing from the kit or the library, so
every side of the interface can use it.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "APPLY_OPERATIONS",
    "ARITY",
    "CALLS",
    "CMD_APPLY",
    "CMD_CAPABILITIES",
    "CMD_INFO",
    "CMD_MAP",
    "CMD_READ",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNSUPPORTED",
    "EXIT_USAGE",
    "FEATURE_BACKING_CHAIN",
    "FEATURE_BIG_INT",
    "FEATURE_BITMAP_VALIDATION",
    "FEATURE_V1",
    "FILE_OPERATIONS",
    "POLICIES",
    "REQUIREMENTS",
    "SYNOPSIS",
    "CapabilitiesRecord",
    "Policy",
    "RefusalRecord",
    "apply_flag",
    "call_of",
]

# -- subcommands -----------------------------------------------------------------------------

CMD_CAPABILITIES = "capabilities"
CMD_INFO = "info"
CMD_READ = "read"
CMD_MAP = "map"
CMD_APPLY = "apply"

#: The calls a vector is judged by, in the order the harness makes them for one vector.
CALLS = (CMD_INFO, CMD_MAP, CMD_READ, CMD_APPLY)

#: How many positional arguments each subcommand takes.
ARITY = {CMD_CAPABILITIES: 0, CMD_INFO: 1, CMD_READ: 3, CMD_MAP: 1, CMD_APPLY: 2}

#: Each subcommand with its arguments, for usage messages.
SYNOPSIS = (
    CMD_CAPABILITIES,
    f"{CMD_INFO} IMAGE",
    f"{CMD_READ} IMAGE OFFSET LENGTH",
    f"{CMD_MAP} IMAGE",
    f"{CMD_APPLY} IMAGE OPS.json",
)

#: The operations an ``apply`` list may hold.
APPLY_OPERATIONS = ("write", "write-zeroes", "discard", "resize", "flush", "hydrate",
                    "upgrade", "commit", "rebase")

#: The operations that work on the image's files, not on an open image: each writes a new
#: add-cow file (or the backing file) and may rename one over the old, so an adapter runs them
#: with the image closed, between runs of the other operations of the same list.
FILE_OPERATIONS = ("upgrade", "commit", "rebase")


def apply_flag(operation: str) -> str:
    """The finer capability flag of one ``apply`` operation (``apply:write``)."""
    return f"{CMD_APPLY}:{operation}"


def call_of(requirement: str) -> str:
    """The subcommand a capability flag or requirement is about (``apply`` for
    ``apply:write``); a feature name comes back unchanged."""
    return requirement.partition(":")[0]


# -- exit statuses (sysexits) -----------------------------------------------------------------

EXIT_OK = 0
#: EX_USAGE: the call itself was malformed.
EXIT_USAGE = 64
#: EX_DATAERR: "I refuse this image because it is invalid".
EXIT_REFUSED = 65
#: EX_UNAVAILABLE: "this implementation does not support that": a skip, never a failure.
EXIT_UNSUPPORTED = 69
#: EX_SOFTWARE: the adapter (or the harness) failed internally.
EXIT_INTERNAL = 70

# -- what an adapter may declare --------------------------------------------------------------

FEATURE_V1 = "v1"
FEATURE_BACKING_CHAIN = "backing-chain"
FEATURE_BITMAP_VALIDATION = "bitmap-validation"
FEATURE_BIG_INT = "big-int"

#: Every name a vector's ``requires`` may list (the calls, the finer ``apply:*`` flags and the
#: optional features), with what it means; published as the manifest's ``features`` map.
REQUIREMENTS: dict[str, str] = {
    CMD_INFO: "the implementation decodes the header (adapter command `info`)",
    CMD_READ: "the implementation reads guest data (adapter command `read`)",
    CMD_MAP: "the implementation reports allocation extents (adapter command `map`)",
    apply_flag("write"): "the implementation writes guest data (`apply` with write operations)",
    apply_flag("resize"): "the implementation resizes images (`apply` with resize operations)",
    apply_flag("flush"): "the implementation flushes (`apply` with flush operations)",
    apply_flag("write-zeroes"): "the implementation writes zeroes without data (`apply` with "
                                "write-zeroes operations)",
    apply_flag("discard"): "the implementation discards ranges (`apply` with discard "
                           "operations)",
    apply_flag("hydrate"): "the implementation hydrates images (`apply` with hydrate "
                           "operations)",
    apply_flag("upgrade"): "the implementation upgrades a version 1 image to version 2 in "
                           "place (`apply` with upgrade operations)",
    apply_flag("commit"): "the implementation commits an image into its backing file, raw or "
                          "add-cow, and then empties it unless told to keep it (`apply` with "
                          "commit operations)",
    apply_flag("rebase"): "the implementation changes an image's backing file, in the safe form "
                          "(the guest disk is unchanged) and the unsafe one (only the names "
                          "change) (`apply` with rebase operations)",
    FEATURE_V1: "the implementation reads legacy version 1 images",
    FEATURE_BACKING_CHAIN: "the implementation opens add-cow backing files (chains)",
    FEATURE_BITMAP_VALIDATION: "the implementation checks bitmap contents (padding bits, the "
                               "all_allocated promise) when it opens an image; readers need not "
                               "scan the bitmap, so an implementation that does not declare "
                               "this skips the vectors that break only bitmap contents",
    FEATURE_BIG_INT: "the vector holds integers above 2^53 - 1 (JSON consumers limited to "
                     "doubles may deselect it)",
}

Policy = Literal["accept", "refuse"]
#: What an adapter may declare it does with each flag of an ``acceptable`` vector.
POLICIES: tuple[Policy, ...] = ("accept", "refuse")


class CapabilitiesRecord(TypedDict, total=False):
    """What ``COMMAND capabilities`` prints (every key optional: a missing one means "did not
    say", and the harness then assumes the most it can)."""

    name: str
    version: str
    supports: list[str]
    features: list[str]
    policies: dict[str, Policy]


class RefusalRecord(TypedDict):
    """What a clean refusal (exit 65) may print on stdout."""

    refused: bool
    rule: str | None
    message: str
