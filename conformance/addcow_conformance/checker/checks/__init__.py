"""The checks, one module per area of the spec; importing this package registers them all.

The import order below is the order checks run in, and so the order of findings in a report:
header, features, names and formats, bitmap, files, legacy.
"""

from __future__ import annotations

from addcow_conformance.checker.checks import bitmap, features, files, header, legacy, names  # noqa: F401

__all__: list[str] = []
