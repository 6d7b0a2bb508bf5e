"""conformance: the add-cow checker (``addcow-check``), golden vectors and the harness that runs
any implementation over them."""

from __future__ import annotations
