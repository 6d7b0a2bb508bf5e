"""The header page's annotated hexdump shows a real vector's bytes, each field named once.

The dump (``docs/_ext/addcow_hexdump.py``) is read back from the built page, not from the
extension, so what is checked is what a reader sees: every shown byte equals the vector file's
byte at that offset, every collapsed line covers only zero bytes, the two tables together cover
the file from byte 0 to the last bitmap byte without a gap, and each field of the fixed header
is named exactly once, in order, with its bytes coloured by the kind the layout diagram uses.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

from addcow_ref.format.header import parse_header
from addcow_ref.format.layout import field_table
from addcow_ref.format.schema import HEADER_V2

from .conftest import ROOT
from .test_spec_docs import DOCS, _soup, site  # noqa: F401 - the session-scoped site build

VECTOR = "header/base"


def _vector_bytes() -> bytes:
    manifest = json.loads((ROOT / "vectors" / "manifest.json").read_text("utf-8"))
    [entry] = [v for v in manifest["vectors"] if v["id"] == VECTOR]
    return (ROOT / "vectors" / "v2" / VECTOR / str(entry["entry"])).read_bytes()


def _tables(site: Path) -> list[Any]:  # noqa: F811
    tables: list[Any] = _soup(site / "spec" / "header.html").select("table.addcow-hexdump")
    assert len(tables) == 2, f"expected the header and the name-area tables, got {len(tables)}"
    assert all(t["data-vector"] == VECTOR for t in tables)
    return tables


def _covered(table: Any, data: bytes) -> list[tuple[int, int]]:
    """The byte ranges a table shows or collapses, each checked against ``data``."""
    start, end = int(table["data-start"]), int(table["data-end"])
    ranges = []
    for tr in table.select("tbody tr"):
        if tr.has_attr("data-skip"):
            first, last = map(int, tr["data-skip"].split("-"))
            assert not data[first:last].strip(b"\0"), f"collapsed {first:#x}-{last:#x} is not zero"
            ranges.append((first, last))
            continue
        row = int(tr["data-offset"])
        shown = bytes.fromhex(tr.select_one("td.addcow-hx-bytes").get_text(" "))
        lo = max(row, start)
        assert shown == data[lo:lo + len(shown)], f"row {row:#x} shows other bytes"
        assert len(shown) == min(row + 16, end) - lo, f"row {row:#x} shows {len(shown)} bytes"
        ascii_col = tr.select_one("td.addcow-hx-ascii").get_text()
        assert ascii_col == "".join(chr(b) if 0x20 <= b < 0x7f else "." for b in shown)
        ranges.append((lo, lo + len(shown)))
    return ranges


def test_rendered_bytes_are_the_vectors_bytes(site: Path) -> None:  # noqa: F811
    data = _vector_bytes()
    header = parse_header(data)
    covered = [r for t in _tables(site) for r in _covered(t, data)]
    assert covered[0][0] == 0
    for (_, end), (start, _) in itertools.pairwise(covered):
        assert start == end, f"gap or overlap at {end:#x}"
    assert covered[-1][1] == header.bitmap_offset + header.bitmap_length


def test_every_header_field_is_labelled_once_with_its_kind(site: Path) -> None:  # noqa: F811
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from addcow_layout import field_kind
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    fields = field_table(HEADER_V2)
    head = _tables(site)[0]
    labels = [el["data-label"] for el in head.select(".addcow-hx-label")]
    assert labels == [f.name for f in fields]
    by_name = {f.name: f for f in fields}
    sizes: dict[str, int] = {}
    for span in head.select(".addcow-hx-span"):
        info = by_name[span["data-field"]]
        assert span["data-kind"] == field_kind(info).key, info.name
        sizes[info.name] = sizes.get(info.name, 0) + len(span.get_text().split())
    assert sizes == {f.name: f.size for f in fields}


def test_name_area_and_bitmap_are_labelled(site: Path) -> None:  # noqa: F811
    names = _tables(site)[1]
    labels = [el["data-label"] for el in names.select(".addcow-hx-label")]
    assert labels == ["image name", "backing name", "name area, rest", "bitmap byte 0"]
    text = names.get_text(" ")
    assert '"image.raw"' in text
    assert '"backing.raw"' in text
    # header/base allocates clusters 0 and 2 of 3: bitmap byte 0x05.
    assert "0b00000101: clusters 0, 2 in the image file" in text
    legend = {li["data-kind"] for li in _soup(site / "spec" / "header.html").select(
        "figure.addcow-hexdump-figure ul.addcow-legend li")}
    assert legend == {"ident", "features", "geometry", "location", "text", "reserved", "bitmap"}
