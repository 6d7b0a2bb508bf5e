"""The NBD server's data path (``addcow_ref.cli.nbdlayers.Layers``) against the library.

``Layers`` answers reads from the files directly, walking a request as runs of clusters whose
status it remembers, and answers block status from the library's map as columns with one
``SEEK_DATA``/``SEEK_HOLE`` cursor per file. Both are shortcuts; these tests hold them to the
plain answers: :meth:`AddCowImage.read` for the bytes, and
:func:`addcow_ref.ops.holes.split_extents` over :meth:`AddCowImage.map` for block status, on
disks with every kind of range (allocated data, a hole punched in an allocated cluster, backing
data, a backing hole, the range past the backing file's end), through writes made while the
server's memory of cluster status is warm.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import addcow_ref
from addcow_ref.cli.nbdlayers import EXTENT_DATA, EXTENT_HOLE, EXTENT_ZERO, Layers
from addcow_ref.engine.fileio import BlockFile
from addcow_ref.ops.holes import LayerFiles, split_extents

CB = 12
C = 1 << CB
CLUSTERS = 24
SIZE = CLUSTERS * C

#: Per cluster: "a" allocated, "p" allocated and punched (a hole of the image file), "b"
#: unallocated over backing data, "h" unallocated over a backing hole; the backing file ends
#: two clusters before the disk, so the last two clusters read zeros from no layer.
KINDS = st.lists(st.sampled_from("apbh"), min_size=CLUSTERS, max_size=CLUSTERS)


def _disk(d: Path, kinds: list[str]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    backing_size = SIZE - 2 * C
    with (d / "base.raw").open("wb") as f:
        f.truncate(backing_size)
        for i, k in enumerate(kinds):
            if k != "h" and (i + 1) * C <= backing_size:
                f.seek(i * C)
                f.write(bytes([0x40 + i]) * C)
    path = d / "d.addcow"
    for p in (path, d / "d.raw"):
        p.unlink(missing_ok=True)
    addcow_ref.create(path, size=SIZE, image_file="d.raw", backing_file="base.raw",
                      backing_format="raw", cluster_bits=CB)
    with addcow_ref.open_image(path, "r+") as img:
        for i, k in enumerate(kinds):
            if k == "a":
                img.write(i * C, bytes([0x80 + i]) * C)
            elif k == "p":
                img.write(i * C, b"\x01" * C)
                img.discard(i * C, C)
    return path


def _reference(img: addcow_ref.AddCowImage, offset: int, count: int) -> list[tuple[int, int, int]]:
    """Block status the plain way: split_extents over the library's map, merged."""
    out: list[tuple[int, int, int]] = []
    end = min(offset + count, img.virtual_size)
    if end <= offset:
        return out
    with LayerFiles(img) as files:
        for span in split_extents(img.map(offset, end - offset), files.files):
            flags = EXTENT_DATA if span.data else EXTENT_HOLE | EXTENT_ZERO
            if out and out[-1][2] == flags and out[-1][0] + out[-1][1] == span.start:
                s, n, f = out[-1]
                out[-1] = (s, n + span.length, f)
            else:
                out.append((span.start, span.length, flags))
    return out


RANGES = st.lists(st.tuples(st.integers(0, SIZE - 1), st.integers(1, 6 * C)), min_size=1,
                  max_size=12)


@settings(max_examples=40, deadline=None)
@given(kinds=KINDS, ranges=RANGES, limit=st.integers(1, 8))
def test_extents_equal_split_extents(tmp_path_factory: object, kinds: list[str],
                                     ranges: list[tuple[int, int]], limit: int) -> None:
    d = Path(str(tmp_path_factory.mktemp("ext")))  # type: ignore[attr-defined]
    path = _disk(d, kinds)
    with addcow_ref.open_image(path) as img:
        layers = Layers(img)
        try:
            for offset, count in [(0, SIZE), *ranges]:
                want = _reference(img, offset, count)
                assert layers.extents(offset, count, limit=10**6) == want
                assert layers.extents(offset, count, limit=limit) == want[:limit]
        finally:
            layers.close()


WRITES = st.lists(st.tuples(st.integers(0, SIZE - 1), st.integers(1, 3 * C)), max_size=4)


@settings(max_examples=40, deadline=None)
@given(kinds=KINDS, ranges=RANGES, writes=WRITES)
def test_reads_equal_library_reads_across_writes(tmp_path_factory: object, kinds: list[str],
                                                  ranges: list[tuple[int, int]],
                                                  writes: list[tuple[int, int]]) -> None:
    """Each range is read twice (the second time from remembered status), then every write
    is made the way the server makes it (library write, then ``forget``) and all ranges are
    read again: the bytes always equal the library's."""
    d = Path(str(tmp_path_factory.mktemp("rd")))  # type: ignore[attr-defined]
    path = _disk(d, kinds)
    with addcow_ref.open_image(path, "r+") as img:
        layers = Layers(img)
        try:
            def check() -> None:
                for offset, count in ranges:
                    n = min(count, SIZE - offset)
                    for _ in range(2):
                        buf = bytearray(b"\xee" * n)
                        layers.read_into(memoryview(buf), offset)
                        assert bytes(buf) == img.read(offset, n), (offset, n)

            check()
            for i, (offset, count) in enumerate(writes):
                n = min(count, SIZE - offset)
                img.write(offset, bytes([0xC0 + i]) * n)
                layers.forget(offset, n)
                check()
        finally:
            layers.close()


def test_half_allocated_sequential_read_asks_the_library_once_per_run(tmp_path: Path) -> None:
    """A request over alternating clusters reads from remembered status once each cluster's
    status is known: the second pass makes no library call at all."""
    path = _disk(tmp_path, ["a", "b"] * (CLUSTERS // 2))
    with addcow_ref.open_image(path) as img:
        layers = Layers(img)
        calls = 0
        real = img.is_allocated

        def counting(offset: int, length: int) -> tuple[bool, int]:
            nonlocal calls
            calls += 1
            return real(offset, length)

        img.is_allocated = counting  # type: ignore[method-assign]
        try:
            buf = bytearray(SIZE)
            layers.read_into(memoryview(buf), 0)
            first = calls
            assert bytes(buf) == img.read(0, SIZE)
            layers.read_into(memoryview(buf), 0)
            assert calls == first, "the second pass asked the library again"
            assert first == CLUSTERS  # one call per run of the first pass
        finally:
            layers.close()


def test_extents_asks_a_fully_written_backing_file_once(tmp_path: Path) -> None:
    """Block status of a half-allocated disk over a fully written backing file: the backing
    file's data segments are asked once per reply (two lseeks), not once per extent."""
    path = _disk(tmp_path, ["p", "b"] * (CLUSTERS // 2))
    with addcow_ref.open_image(path) as img:
        layers = Layers(img)
        try:
            files = layers._files.files
            backing = files[1]
            assert backing is not None
            counting = _CountingSegments(backing)
            files[1] = counting  # type: ignore[call-overload]
            got = layers.extents(0, SIZE)
            assert got == _reference(img, 0, SIZE)
            assert counting.calls == 1
        finally:
            layers.close()
    assert os.path.exists(path)


class _CountingSegments:
    """A file of the server's layer list that counts the data-segment queries made of it
    (the library's own backing object is left alone: its map asks it too)."""

    def __init__(self, file: BlockFile) -> None:
        self._file = file
        self.calls = 0

    def data_segments(self, offset: int, length: int) -> Iterator[tuple[int, int]]:
        self.calls += 1
        return self._file.data_segments(offset, length)
