"""Mutant ``names-relative-to-cwd``: resolves relative stored names against the current working
directory instead of the add-cow file's directory (READ-NAME-RELATIVE)."""

from __future__ import annotations

from pathlib import Path

from addcow_conformance.mutants.base import MetadataMutant

__all__ = ["NamesRelativeToCwd"]


class NamesRelativeToCwd(MetadataMutant):
    name = "names-relative-to-cwd"
    breaks = "READ-NAME-RELATIVE"

    def copy_directory(self, original: Path) -> Path:
        # The reference resolves names against the directory of the file it opens: putting the
        # copy in the CWD makes it resolve them against the CWD.
        return Path.cwd()
