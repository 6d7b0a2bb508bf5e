"""The generator's own parts: the oracle, the builder's layout, determinism of data."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from addcow_conformance.vectors.builder import AddCow, V1File, set_field
from addcow_conformance.vectors.common import pattern
from addcow_conformance.vectors.model import Disk, bitmap_bytes, extents
from hypothesis import given

from addcow_ref.format.header import parse_header, parse_header_v1
from addcow_ref.format.layout import FieldInfo, field_table
from addcow_ref.format.schema import HEADER_V2


def test_bitmap_bytes_is_lsb_first() -> None:
    assert bitmap_bytes({0, 3, 9, 15}, 16) == bytes([0x09, 0x82])
    assert bitmap_bytes(set(), 0) == b""
    assert bitmap_bytes({10}, 11) == bytes([0, 0x04])


def test_extents_merge_and_clip() -> None:
    assert extents({0, 1, 3}, 3584, 1024) == [
        {"start": 0, "length": 2048, "allocated": True},
        {"start": 2048, "length": 1024, "allocated": False},
        {"start": 3072, "length": 512, "allocated": True}]
    assert extents(set(), 0, 512) == []


def test_oracle_reads_image_backing_and_zeros() -> None:
    d = Disk(3072, 10, bytearray(b"I" * 3072), {0}, b"B" * 1500)
    g = d.guest()
    assert g[:1024] == b"I" * 1024
    assert g[1024:1500] == b"B" * 476
    assert g[1500:] == bytes(1572)


def test_oracle_write_copies_head_and_tail() -> None:
    d = Disk(2048, 10, bytearray(b"I" * 2048), set(), b"B" * 2048)
    d.write(1000, b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    assert d.bits == {0, 1}
    assert d.image[:1000] == b"B" * 1000
    assert d.image[1050:] == b"B" * 998


def test_oracle_grow_hides_backing_past_old_end() -> None:
    d = Disk(1536, 10, bytearray(b"I" * 1536), set(), b"B" * 4096)
    d.resize(4096)
    g = d.guest()
    assert g[:1536] == b"B" * 1536
    assert g[1536:] == bytes(4096 - 1536)
    assert d.bits == {1, 2, 3}


@given(st.lists(st.tuples(st.integers(0, 4095), st.binary(min_size=1, max_size=700)),
                max_size=6), st.integers(9, 11), st.binary(max_size=5000))
def test_oracle_matches_a_flat_disk(writes: list[tuple[int, bytes]], cb: int,
                                    backing: bytes) -> None:
    """Whatever the writes, the guest equals a plain byte array that took the same writes."""
    vs = 4096
    d = Disk(vs, cb, bytearray(pattern("img", vs)), set(), backing)
    flat = bytearray(d.guest())
    for off, data in writes:
        data = data[:vs - off]
        d.write(off, data)
        flat[off:off + len(data)] = data
        assert d.guest() == bytes(flat)


def test_builder_header_parses_back() -> None:
    a = AddCow(virtual_size=3072, cluster_bits=10, backing_name=b"b.raw", bits={1},
               header_length=200, extension=b"\x01" * 72)
    raw = a.build()
    h = parse_header(raw)
    assert (h.virtual_size, h.cluster_bits, h.header_length) == (3072, 10, 200)
    assert raw[h.image_name_offset:h.image_name_offset + h.image_name_length] == b"image.raw"
    assert raw[h.backing_name_offset:h.backing_name_offset + h.backing_name_length] == b"b.raw"
    assert raw[4096:] == b"\x02"
    assert raw[128:200] == b"\x01" * 72
    assert len(raw) == 4097


@pytest.mark.parametrize("info", field_table(HEADER_V2), ids=lambda i: i.name)
def test_set_field_touches_only_that_field(info: FieldInfo) -> None:
    raw = AddCow(virtual_size=1024, cluster_bits=9).build()
    buf = bytearray(raw)
    value = (1 << (8 * info.size)) - 1 if info.is_integer else b"\xff" * info.size
    set_field(buf, info.name, value)
    changed = [i for i in range(len(raw)) if raw[i] != buf[i]]
    assert changed
    assert all(info.offset <= i < info.offset + info.size for i in changed)


def test_v1_builder() -> None:
    v = V1File(image_length=70000, backing_name=b"b.raw", bits={1})
    raw = v.build()
    assert len(raw) == 2561
    assert raw[2560] == 0x02
    h = parse_header_v1(raw).with_image_length(70000)
    assert (h.image_name, h.backing_name, h.virtual_size) == (b"image.raw", b"b.raw", 69632)


def test_pattern_is_deterministic_and_seeded() -> None:
    assert pattern("a", 100) == pattern("a", 100)
    assert pattern("a", 100) != pattern("b", 100)
    assert pattern("a", 50) == pattern("a", 100)[:50]


def test_generator_never_imports_the_reference_implementation() -> None:
    """Expectations come from the oracle: only layout/registry modules of addcow_ref are used
    (``forge`` builds headers from the schema's defaults and checks no rule; ``ops.info`` is
    imported for the info record's field names and types alone, and loads no engine code;
    ``clirun`` is the click runner every console script shares)."""
    import ast
    from pathlib import Path

    allowed = {"addcow_ref", "addcow_ref.format.constants", "addcow_ref.format.layout",
               "addcow_ref.format.header", "addcow_ref.format.forge",
               "addcow_ref.format.schema", "addcow_ref.format.rules", "addcow_ref.ops.info",
               "addcow_ref.clirun"}
    pkg = Path(__file__).resolve().parents[2] / "conformance" / "addcow_conformance" / "vectors"
    used: dict[str, set[str]] = {}
    for path in sorted(pkg.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.startswith(("addcow_ref", "addcow_conformance.")):
                    used.setdefault(name, set()).add(path.name)
    assert "addcow_ref.format.header" in used
    bad = {n: sorted(files) for n, files in used.items()
           if n.startswith("addcow_ref") and n not in allowed}
    assert not bad, bad
    assert not [n for n in used if n.startswith("conformance.")
                and not n.startswith("addcow_conformance.vectors")]


def test_twins_differ_from_their_base_only_in_the_rewritten_fields() -> None:
    from addcow_conformance.vectors.manifest import all_vectors

    from addcow_ref.format.layout import field_info

    vs = {v.id: v for v in all_vectors()}
    twins = [v for v in vs.values() if v.twin_of]
    assert len(twins) >= 10
    for t in twins:
        base = vs[str(t.twin_of)]
        assert base.result == "valid", t.id
        allowed: set[int] = set()
        for name in t.twin_fields:
            info = field_info(HEADER_V2, name)
            allowed |= set(range(info.offset, info.offset + info.size))
        files = {f.path: f.data for f in base.files}
        for f in t.files:
            assert f.data is not None
            want = files[f.path]
            assert want is not None
            assert len(f.data) == len(want), (t.id, f.path)
            diff = {i for i in range(len(want)) if f.data[i] != want[i]}
            if f.role == "add-cow":
                assert diff, t.id
                assert diff <= allowed, (t.id, sorted(diff - allowed)[:5])
            else:
                assert not diff, (t.id, f.path)


def test_importing_the_info_record_loads_no_engine_code() -> None:
    # The oracle names its info keys after addcow_ref.ops.info; that must not pull in the
    # implementation the vectors check.
    import subprocess
    import sys

    code = ("import sys, addcow_conformance.vectors.core, addcow_conformance.vectors.schema\n"
            "print(sorted(m for m in sys.modules if m.startswith('addcow_ref.engine')))\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "[]"


def test_the_manifest_info_object_is_the_published_part_of_the_info_record() -> None:
    from addcow_conformance.records import INFO_KEYS, REQUIRED_INFO_KEYS
    from addcow_conformance.vectors.core import info_v1
    from addcow_conformance.vectors.schema import build_schema

    from addcow_ref.ops.info import INFO_FIELDS

    assert set(INFO_KEYS) < set(INFO_FIELDS)
    assert set(REQUIRED_INFO_KEYS) < set(INFO_KEYS)
    assert tuple(info_v1(V1File(image_length=65536, bits=set()))) == INFO_KEYS
    info = build_schema([], [])["$defs"]["vector"]["properties"]["expect"]["properties"]["info"]
    assert tuple(info["properties"]) == INFO_KEYS
