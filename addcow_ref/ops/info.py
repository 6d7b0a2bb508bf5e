"""The info record of an image (``addcow info``, in the spirit of ``qemu-img info``).

:class:`ImageInfo` is the typed record; :data:`INFO_FIELDS` its field names in order. This
module imports the engine only for type checking, so the vectors generator, which must stay
independent of the implementation it checks, can import the field list without loading it.

``addcow info --output=json`` (:class:`InfoDoc`) has the shape of ``qemu-img info
--output=json``, so a script written for one reads the other: qemu-img's hyphenated keys
(``virtual-size``, ``actual-size``, ``cluster-size``, ``backing-filename``,
``full-backing-filename``, ``backing-filename-format``) at the top, and the add-cow record under
``format-specific``, as ``{"type": "add-cow", "data": {...}}``, the way qemu-img nests qcow2's
own fields. The keys of ``data`` are the record's field names, which are the header's field
names in the spec and the keys of the conformance harness's info record, so an adapter can pass
``data`` on unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from enum import IntFlag
from typing import TYPE_CHECKING, NotRequired, TypedDict

from addcow_ref.format.constants import (
    FORMAT_ADD_COW,
    VERSION_1,
    AutoclearFeature,
    CompatibleFeature,
    IncompatibleFeature,
)
from addcow_ref.format.text import printable

if TYPE_CHECKING:
    from addcow_ref.engine.image import AddCowImage

__all__ = ["INFO_FIELDS", "FormatSpecific", "ImageInfo", "InfoDoc", "disk_usage", "feature_names",
           "image_info", "info_json", "open_for_info", "render_info", "render_info_json"]


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What ``addcow info`` reports about an open image.

    ``image_file``/``backing_file`` are the names as stored; ``image_path``/``backing_path``
    those names resolved against the add-cow file's directory (READ-NAME-RELATIVE). A version 1
    image has no feature words (all three read 0), a ``raw`` image file and a backing file read
    as ``raw``.
    """

    filename: str
    version: int
    virtual_size: int
    cluster_bits: int
    cluster_size: int
    bitmap_offset: int
    bitmap_length: int
    header_length: int
    image_file: str
    image_path: str
    backing_file: str | None
    backing_path: str | None
    image_format: str
    backing_format: str | None
    incompatible_features: int
    compatible_features: int
    autoclear_features: int
    all_allocated: bool
    allocated_clusters: int
    cluster_count: int
    readonly: bool


#: The fields of :class:`ImageInfo`, in order.
INFO_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ImageInfo))

#: The flag class that names the bits of each feature word.
_FEATURE_FLAGS: dict[str, type[IntFlag]] = {
    "incompatible_features": IncompatibleFeature,
    "compatible_features": CompatibleFeature,
    "autoclear_features": AutoclearFeature,
}


def open_for_info(path: str | os.PathLike[str], *, force_share: bool = False) -> AddCowImage:
    """Open ``path`` read-only to show its header, as ``qemu-img info`` does for an image whose
    backing file is missing: a broken backing chain does not refuse the open, and the image's
    ``unreadable`` says why it cannot be read. Every other open refuses such an image
    (BACK-EXISTS); this one is for ``addcow info`` alone, and the image must not be read."""
    from addcow_ref.engine.image import AddCowImage

    return AddCowImage(path, "r", force_share=force_share, lenient_backing=True)


def image_info(img: AddCowImage) -> ImageInfo:
    """The info record of the open image ``img`` (counts its allocated clusters)."""
    from addcow_ref.engine.backing import resolve_name

    d = img.descriptor
    backing = os.fsdecode(d.backing_name) if d.backing_name is not None else None
    return ImageInfo(
        filename=img.path,
        version=d.version,
        virtual_size=d.virtual_size,
        cluster_bits=d.cluster_bits,
        cluster_size=d.cluster_size,
        bitmap_offset=d.bitmap_offset,
        bitmap_length=d.bitmap_length,
        header_length=d.header_length,
        image_file=os.fsdecode(d.image_name),
        image_path=img.image_path,
        backing_file=backing,
        backing_path=resolve_name(img.path, backing) if backing else None,
        image_format=d.image_format,
        backing_format=d.backing_format,
        incompatible_features=d.incompatible_features,
        compatible_features=d.compatible_features,
        autoclear_features=d.autoclear_features,
        all_allocated=img.all_allocated,
        allocated_clusters=img.allocated_clusters(),
        cluster_count=d.cluster_count,
        readonly=img.readonly,
    )


#: A field of :class:`ImageInfo` as JSON.
InfoValue = str | int | bool | None


class FormatSpecific(TypedDict):
    """``format-specific`` of :class:`InfoDoc`: the add-cow record, all of :class:`ImageInfo`
    but ``filename`` (which :class:`InfoDoc` carries), keys in the record's order."""

    type: str
    data: dict[str, InfoValue]


#: ``addcow info --output=json``: qemu-img's keys (see the module docstring), in the order
#: printed; the backing keys only when there is a backing file, as qemu-img omits them, and
#: ``unreadable`` only when :func:`open_for_info` found the backing chain broken.
InfoDoc = TypedDict("InfoDoc", {
    "filename": str,
    "format": str,
    "virtual-size": int,
    "actual-size": int,
    "cluster-size": int,
    "backing-filename": NotRequired[str],
    "full-backing-filename": NotRequired[str],
    "backing-filename-format": NotRequired[str],
    "format-specific": FormatSpecific,
    "unreadable": NotRequired[str],
})


def disk_usage(*paths: str) -> int:
    """Bytes the files at ``paths`` take on disk (``st_blocks * 512``, as ``qemu-img info``'s
    ``actual-size``): holes of a sparse file count nothing. A file that is missing counts 0
    (``addcow info`` shows an image whose files are not all there), a path given twice once."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def info_json(info: ImageInfo, *, actual_size: int | None = None) -> InfoDoc:
    """The object ``addcow info --output=json`` prints (see :class:`InfoDoc`).

    ``actual_size`` defaults to the disk usage of the add-cow file and its image file
    (:func:`disk_usage`), read when this is called."""
    if actual_size is None:
        actual_size = disk_usage(info.filename, info.image_path)
    data: dict[str, InfoValue] = {k: v for k, v in dataclasses.asdict(info).items()
                                  if k != "filename"}
    doc: InfoDoc = {"filename": info.filename, "format": FORMAT_ADD_COW,
                    "virtual-size": info.virtual_size, "actual-size": actual_size,
                    "cluster-size": info.cluster_size,
                    "format-specific": FormatSpecific(type=FORMAT_ADD_COW, data=data)}
    if info.backing_file is not None:
        doc["backing-filename"] = info.backing_file
        if info.backing_path is not None:
            doc["full-backing-filename"] = info.backing_path
        if info.backing_format is not None:
            doc["backing-filename-format"] = info.backing_format
    return doc


def render_info_json(info: ImageInfo, *, unreadable: str | None = None) -> str:
    """The text of ``addcow info --output=json``; with ``unreadable`` (an image opened by
    :func:`open_for_info` whose backing chain is broken) a last key ``unreadable`` says why
    the image cannot be read."""
    record = info_json(info)
    if unreadable is not None:
        record["unreadable"] = unreadable
    return json.dumps(record, indent=4)


def feature_names(word: int, flags: type[IntFlag]) -> list[str]:
    """Names of the bits set in a feature word (``bit N`` for bits this version does not know).

    Looked up among the flag class's members rather than by calling it: an ``IntFlag`` called
    with an unknown bit returns a nameless pseudo-member, and one without members raises.
    """
    known = {int(member): str(member.name).lower() for member in flags}
    return [known.get(1 << bit, f"bit {bit}") for bit in range(64) if word >> bit & 1]


def render_info(info: ImageInfo, *, size_text: Callable[[int], str],
                unreadable: str | None = None) -> str:
    """The human form of ``info``: one ``key: value`` line each, like ``qemu-img info``.

    ``size_text`` renders a byte count for people (the CLI passes its ``format_size``; the
    tools layer, above this one, owns how sizes are spelt). Names and formats come from the
    image's header, so they are escaped for the terminal (:func:`printable`). ``unreadable``
    (see :func:`render_info_json`) adds a last line saying that the image cannot be read.
    """
    lines = [
        f"image: {printable(info.filename)}",
        f"file format: {FORMAT_ADD_COW}",
        f"version: {info.version}",
        f"virtual size: {size_text(info.virtual_size)} ({info.virtual_size} bytes)",
        f"cluster_size: {info.cluster_size} (cluster_bits {info.cluster_bits})",
    ]
    count = info.cluster_count
    share = f" ({100 * info.allocated_clusters / count:.1f}%)" if count else ""
    lines.append(f"allocated clusters: {info.allocated_clusters} of {count}{share}")
    lines.append(f"image file: {printable(info.image_file)} "
                 f"({printable(info.image_format or 'raw')})")
    if info.backing_file:
        lines.append(f"backing file: {printable(info.backing_file)}")
        lines.append(f"backing file format: {printable(str(info.backing_format))}")
    else:
        lines.append("backing file: none")
    lines.append(f"header length: {info.header_length}")
    lines.append(f"bitmap offset: {info.bitmap_offset} (0x{info.bitmap_offset:x})")
    if info.version != VERSION_1:  # v1 has no feature words
        for key, flags in _FEATURE_FLAGS.items():
            names = feature_names(getattr(info, key), flags)
            lines.append(f"{key.replace('_', ' ')}: {', '.join(names) if names else 'none'}")
    if unreadable is not None:
        lines.append(f"cannot be read: {printable(unreadable)}")
    return "\n".join(lines)
