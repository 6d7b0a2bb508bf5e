"""Hypothesis strategies for add-cow headers, derived from the schema's field table.

Nothing here repeats a field name or width: integer fields range over exactly the values their
width can hold and byte fields are exactly their size, as ``addcow_ref.format.layout.field_table``
says.
A field added to or resized in ``addcow_ref.format.schema`` changes these strategies with it.
"""

from __future__ import annotations

from typing import Any

from construct import Struct
from hypothesis import strategies as st

from addcow_ref.format.constants import (
    BITMAP_ALIGNMENT,
    HEADER_LENGTH_V2,
    MAX_CLUSTER_BITS,
    MAX_VIRTUAL_SIZE,
    MIN_CLUSTER_BITS,
    SECTOR_SIZE,
)
from addcow_ref.format.forge import forge_v2, name_fields
from addcow_ref.format.layout import FieldInfo, field_table

__all__ = [
    "conforming_header_v2_values",
    "field_strategy",
    "header_values",
    "max_value",
]


def max_value(info: FieldInfo) -> int:
    """The largest value an integer field's width can hold."""
    return (1 << (8 * info.size)) - 1


def field_strategy(info: FieldInfo) -> st.SearchStrategy[Any]:
    """Every value the field's bytes can encode: any integer of its width, any bytes of its size."""
    if info.is_integer:
        return st.integers(min_value=0, max_value=max_value(info))
    return st.binary(min_size=info.size, max_size=info.size)


def header_values(struct: Struct) -> st.SearchStrategy[dict[str, Any]]:
    """A value for every field of ``struct``: whatever the widths allow, conforming or not."""
    return st.fixed_dictionaries({f.name: field_strategy(f) for f in field_table(struct)})


@st.composite
def conforming_header_v2_values(draw: st.DrawFn) -> dict[str, Any]:
    """A v2 header that passes every single-field check of the schema, with consistent names.

    Starts from the schema's default header (``forge_v2``) and draws the fields the spec leaves
    open; magic, version, reserved bytes and the image format keep their defaults. The names sit
    at the start of the name area, image name first.
    """
    header_length = HEADER_LENGTH_V2 + 8 * draw(st.integers(0, 16))
    image_len = draw(st.integers(1, 64))
    has_backing = draw(st.booleans())
    backing_len = draw(st.integers(1, 64)) if has_backing else 0
    min_offset = header_length + image_len + backing_len
    bitmap_offset = BITMAP_ALIGNMENT * draw(
        st.integers(max(1, -(-min_offset // BITMAP_ALIGNMENT)), 16))
    backing_format = draw(st.sampled_from(["raw", "add-cow"])) if has_backing else ""
    header = forge_v2(
        header_length=header_length,
        compatible_features=draw(st.sampled_from([0, 1])),
        virtual_size=SECTOR_SIZE * draw(st.integers(0, MAX_VIRTUAL_SIZE // SECTOR_SIZE)),
        bitmap_offset=bitmap_offset,
        cluster_bits=draw(st.integers(MIN_CLUSTER_BITS, MAX_CLUSTER_BITS)),
        backing_format=backing_format.encode("ascii"),
        **name_fields(bytes(image_len), bytes(backing_len) if has_backing else None,
                      start=header_length),
    )
    return header.as_dict()
