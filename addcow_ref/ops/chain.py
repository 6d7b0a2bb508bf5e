"""Every level of an image's backing chain (``addcow info --backing-chain``).

The top image and each add-cow backing image get the full info record
(:class:`~addcow_ref.ops.info.ImageInfo`); the raw file at the bottom, which has no header, gets
:class:`RawLevel`. The JSON form is a list, top first, as ``qemu-img info --backing-chain
--output=json`` prints it, with qemu-img's keys (:class:`~addcow_ref.ops.info.InfoDoc`; the raw
level as :class:`RawDoc`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import NotRequired, TypedDict

from addcow_ref.engine.image import AddCowImage, open_image
from addcow_ref.format.constants import FORMAT_ADD_COW, FORMAT_RAW, MAX_CHAIN_DEPTH
from addcow_ref.format.errors import BackingFileError
from addcow_ref.format.text import printable
from addcow_ref.ops.info import ImageInfo, InfoDoc, disk_usage, image_info, info_json, render_info

__all__ = ["ChainLevel", "RawDoc", "RawLevel", "backing_chain", "render_chain",
           "render_chain_json"]


@dataclasses.dataclass(frozen=True)
class RawLevel:
    """A raw file in a chain: its size, or why it cannot be read (``missing``)."""

    filename: str
    virtual_size: int
    missing: str | None = None


ChainLevel = ImageInfo | RawLevel


def backing_chain(img: AddCowImage) -> list[ChainLevel]:
    """The levels of ``img``'s chain, top first. A loop or a chain deeper than the spec allows
    raises :class:`~addcow_ref.format.errors.BackingFileError` (BACK-LOOP, BACK-DEPTH)."""
    levels: list[ChainLevel] = [image_info(img)]
    seen = {os.stat(img.path)[1:3]}
    while True:
        top = levels[-1]
        assert isinstance(top, ImageInfo)
        if top.backing_path is None:
            return levels
        path, fmt = top.backing_path, top.backing_format or FORMAT_RAW
        if not os.path.exists(path):
            levels.append(RawLevel(path, 0, missing="does not exist"))
            return levels
        if fmt != FORMAT_ADD_COW:
            levels.append(RawLevel(path, os.stat(path).st_size))
            return levels
        ident = os.stat(path)[1:3]
        if ident in seen:
            raise BackingFileError(f"backing chain loops back to {path}", file=top.filename,
                                   field="backing_name_offset", rule_id="BACK-LOOP")
        if len(levels) > MAX_CHAIN_DEPTH:
            raise BackingFileError(f"backing chain holds more than {MAX_CHAIN_DEPTH} add-cow "
                                   "files", file=top.filename, rule_id="BACK-DEPTH")
        seen.add(ident)
        with open_image(path, force_share=img.force_share, confine=img.confine) as below:
            levels.append(image_info(below))


#: The raw level of ``info --backing-chain --output=json``, as ``qemu-img info`` prints a raw
#: file; ``missing`` (add-cow's own) says why the file cannot be read.
RawDoc = TypedDict("RawDoc", {
    "filename": str,
    "format": str,
    "virtual-size": int,
    "actual-size": int,
    "missing": NotRequired[str],
})


def _raw_json(level: RawLevel) -> RawDoc:
    out: RawDoc = {"filename": level.filename, "format": FORMAT_RAW,
                   "virtual-size": level.virtual_size,
                   "actual-size": disk_usage(level.filename)}
    if level.missing:
        out["missing"] = level.missing
    return out


def render_chain_json(levels: list[ChainLevel]) -> str:
    """The JSON list of the chain: each add-cow level as ``addcow info --output=json`` prints
    it, the raw file with its name, format and size."""
    docs: list[InfoDoc | RawDoc] = [info_json(lv) if isinstance(lv, ImageInfo) else _raw_json(lv)
                                    for lv in levels]
    return json.dumps(docs, indent=4)


def render_chain(levels: list[ChainLevel], *, size_text: Callable[[int], str]) -> str:
    """The human chain: each level's info, separated by a blank line, as qemu-img does."""
    parts = []
    for lv in levels:
        if isinstance(lv, ImageInfo):
            parts.append(render_info(lv, size_text=size_text))
        elif lv.missing:
            parts.append(f"image: {printable(lv.filename)}\nfile format: {FORMAT_RAW}\n"
                         f"missing: {printable(str(lv.missing))}")
        else:
            parts.append(f"image: {printable(lv.filename)}\nfile format: {FORMAT_RAW}\n"
                         f"virtual size: {size_text(lv.virtual_size)} "
                         f"({lv.virtual_size} bytes)")
    return "\n\n".join(parts)
