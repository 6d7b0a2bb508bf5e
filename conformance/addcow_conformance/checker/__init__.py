"""``addcow-check``: the conformance checker of add-cow images.

``check_file(path, options)`` returns a :class:`Report` listing every rule the image breaks
(a :class:`Finding` each, citing the rule ID and the clause), the rules it checked and the rules
it could not apply, and never raises on any input.
"""

from __future__ import annotations

import os

from addcow_conformance.checker.context import CheckOptions
from addcow_conformance.checker.engine import check_path
from addcow_conformance.checker.findings import (
    Finding,
    InternalError,
    NotApplicable,
    Report,
    worst_exit_code,
)

__all__ = [
    "CheckOptions",
    "Finding",
    "InternalError",
    "NotApplicable",
    "Report",
    "check_file",
    "worst_exit_code",
]


def check_file(path: str | os.PathLike[str], options: CheckOptions | None = None) -> Report:
    """Check one add-cow file (and, unless ``options.follow`` is false, the files it names)."""
    return check_path(path, options)
