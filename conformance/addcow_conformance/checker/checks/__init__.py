"""The checks, one module per area of the spec; importing this package registers them all.

Checks run, and reports list findings, by area in the order of ``registry.AREA_ORDER`` (header,
features, names and formats, bitmap, image and backing files, legacy); within an area, in the
order that area's module declares them. Every area is declared by one module, so the order of
the imports below does not change the run order.
"""

from __future__ import annotations

from addcow_conformance.checker.checks import bitmap, features, files, header, legacy, names

__all__ = ["MODULES"]

#: The check modules, in the order of the areas they declare.
MODULES = (header, features, names, bitmap, files, legacy)
