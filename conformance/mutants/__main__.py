"""``python -m conformance.mutants NAME COMMAND ARGS``."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
