"""``python -m addcow_conformance.mutants NAME COMMAND ARGS``."""

from __future__ import annotations

import sys

from addcow_conformance.mutants import main

sys.exit(main())
