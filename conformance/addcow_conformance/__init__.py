"""addcow_conformance: the add-cow conformance kit: the checker (``addcow-check``), the golden
vectors (``addcow-vectors``) and the harness (``addcow-conformance``) that runs any implementation
over them. It uses the reference library (:mod:`addcow_ref`), which never imports it."""

from __future__ import annotations
