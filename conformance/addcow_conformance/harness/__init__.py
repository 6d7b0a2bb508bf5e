"""addcow-conformance: run any add-cow implementation over the golden vectors.

The harness drives an implementation through a small process interface (``capabilities``,
``info``, ``read``, ``map``, ``apply``; documented in ``docs/guides/test-your-implementation.rst``),
compares what it printed with ``vectors/manifest.json`` and reports, per vector and per
capability, which clause (rule ID) the implementation got wrong. Adapters report raw behaviour;
only the harness compares.
"""

from __future__ import annotations
