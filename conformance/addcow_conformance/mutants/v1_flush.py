"""Mutant ``v1-flush-accepted``: refuses writes to a version 1 image but lets an ``apply`` that
only flushes succeed, opening the image read-only since nothing would be written
(V1-NO-WRITE-OPEN: a writer refuses to open v1 for writing, whatever it would write)."""

from __future__ import annotations

from pathlib import Path

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.protocol import EXIT_OK
from addcow_ref.format.constants import VERSION_1
from addcow_ref.format.header import read_version

__all__ = ["V1FlushAccepted"]


class V1FlushAccepted(ReferenceAdapter):
    name = "v1-flush-accepted"
    breaks = "V1-NO-WRITE-OPEN"

    def cmd_apply(self, path: str, ops_path: str) -> int:
        ops = self.load_ops(ops_path)
        with Path(path).open("rb") as f:
            version = read_version(f.read(16))
        if version == VERSION_1 and all(op.get("op") == "flush" for op in ops):
            with self.open(path):  # the mistake: "nothing to write" is taken as read-only
                return EXIT_OK
        return super().cmd_apply(path, ops_path)
