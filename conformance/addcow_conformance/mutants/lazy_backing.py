"""Mutant ``backing-opened-lazily``: opens the backing file only when a read needs it, so an
image whose bitmap is all ones opens although its backing file is missing (BACK-EXISTS: a
reader opens the whole chain with the image and never decides by scanning the bitmap)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from addcow_conformance.adapters.reference import ReferenceAdapter
from addcow_conformance.mutants.base import MetadataMutant, get_field, set_field, v2_header

__all__ = ["BackingOpenedLazily"]


class BackingOpenedLazily(MetadataMutant):
    name = "backing-opened-lazily"
    breaks = "BACK-EXISTS"

    def open(self, path: str, mode: str = "r") -> Any:
        probe = bytearray(Path(path).read_bytes())
        self.rewrite(probe, Path(path).absolute())
        if self.hidden is None:  # nothing to hide: the reference, not a rewritten copy
            return ReferenceAdapter.open(self, path, mode)
        return super().open(path, mode)

    def rewrite(self, data: bytearray, original: Path) -> None:
        h = v2_header(data)
        if h is None or not h.has_backing:
            return
        off, length = int(h.backing_name_offset), int(h.backing_name_length)
        name = bytes(data[off:off + length])
        if (not length or off < int(h.header_length) or off + length > int(h.bitmap_offset)
                or b"\0" in name or (original.parent / os.fsdecode(name)).exists()):
            return  # a broken name is the reference's to refuse
        lo = int(h.bitmap_offset)
        bitmap = int.from_bytes(data[lo:lo + h.bitmap_length], "little")
        if bitmap & ((1 << h.cluster_count) - 1) != (1 << h.cluster_count) - 1:
            return
        # The mistake: nothing will be read from it, so the missing file is never noticed.
        self.hidden = (os.fsdecode(name), h.backing_format_name)
        data[off:off + length] = bytes(length)
        set_field(data, "backing_name_offset", 0)
        set_field(data, "backing_name_length", 0)
        set_field(data, "backing_format", b"")

    hidden: tuple[str, str] | None = None

    def info(self, image: Any) -> dict[str, Any]:
        out = super().info(image)
        if self.hidden is not None:  # it still reports the header it read
            out["backing_file"], out["backing_format"] = self.hidden
        return out

    def restore(self, data: bytearray, original: Path) -> None:
        with original.open("rb") as f:
            head = f.read(128)
            h = v2_header(head)
            if h is None or not h.has_backing:
                return
            off, length = int(h.backing_name_offset), int(h.backing_name_length)
            f.seek(off)
            data[off:off + length] = f.read(length)
        for name in ("backing_name_offset", "backing_name_length", "backing_format"):
            set_field(data, name, get_field(head, name))
