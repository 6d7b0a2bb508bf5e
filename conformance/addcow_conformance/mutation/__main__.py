"""``python -m addcow_conformance.mutation``."""

from __future__ import annotations

import sys

from addcow_conformance.mutation.cli import main

sys.exit(main())
