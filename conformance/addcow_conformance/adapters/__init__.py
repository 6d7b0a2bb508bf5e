"""Adapters that put implementations behind the harness's process interface.

``reference`` is the reference implementation's adapter (``addcow-impl``), run in CI.
"""

from __future__ import annotations
