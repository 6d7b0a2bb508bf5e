"""Make the ``bench`` package (not part of the wheel) importable for its own unit tests.

Appended, not prepended, to ``sys.path``: site-packages stays first, so ``addcow_ref`` and
``conformance`` still resolve to the installed wheel that the rest of the suite tests.
"""

from __future__ import annotations

import sys

from ..conftest import ROOT

if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))
