"""The golden test vector generator (``addcow-vectors``): deterministic vectors plus manifest.

One module per area (``header``, ``features``, ``names``, ``bitmap``, ``read``, ``ops``,
``chains``, ``files``, ``legacy``, ``limits``) returns vectors; ``manifest.py`` writes them.
Expected values come from the independent oracle in ``model.py``, not from the reference.
"""

from __future__ import annotations
