"""Stateful property test: random sequences of write, write-zeroes, discard, read, resize,
flush, reopen and hydrate against a bytearray model of the guest disk over a random backing file.

After every step: reads equal the model, the set of allocated clusters equals exactly the
clusters ever written or grown (or all of them after hydrate), and at every durable point the
add-cow file passes the spec's structural checks.
"""

from __future__ import annotations

import itertools
import random
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import addcow_ref
from addcow_ref.format.header import bitmap_length_for, cluster_count_for

from .helpers import bitmap_clusters, check_valid, make_image

SECTOR = 512


class AddCowMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="addcow-stateful-"))
        self.img: addcow_ref.AddCowImage | None = None

    @initialize(cluster_bits=st.integers(9, 12), sectors=st.integers(1, 48),
                backing_len=st.integers(0, 48 * SECTOR + 700), seed=st.integers(0, 2**32),
                has_backing=st.booleans(), tiny_cache=st.booleans())
    def setup(self, cluster_bits: int, sectors: int, backing_len: int, seed: int,
              has_backing: bool, tiny_cache: bool) -> None:
        self.rng = random.Random(seed)
        self.cluster_bits = cluster_bits
        size = sectors * SECTOR
        backing = self.rng.randbytes(backing_len) if has_backing else None
        self.path = make_image(self.dir, size=size, cluster_bits=cluster_bits, backing=backing)
        # The model: what a reader must see. Unallocated clusters show the backing file
        # (zeros past its end), so that is where the model starts.
        self.model = bytearray((backing or b"")[:size].ljust(size, b"\0"))
        self.allocated: set[int] = set()
        # A tiny cache (8-byte chunks, 2 entries) pushes every path through eviction.
        self.cache = {"cache_chunk_size": 8, "cache_capacity": 2} if tiny_cache else {}
        self.img = addcow_ref.open_image(self.path, "r+", **self.cache)
        self.hydrated = False

    def teardown(self) -> None:
        if self.img is not None:
            self.img.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def size(self) -> int:
        return len(self.model)

    def _image(self) -> addcow_ref.AddCowImage:
        assert self.img is not None
        return self.img

    def _range(self, data: st.DataObject, min_length: int) -> tuple[int, int]:
        """An offset (often near a cluster boundary) and a length (often sub-sector or
        cluster-straddling) inside the disk."""
        cs = 1 << self.cluster_bits
        near = data.draw(st.integers(0, (self.size - 1) // cs)) * cs + data.draw(
            st.sampled_from([0, 1, 511, 512, cs // 2, cs - 1]))
        offset = data.draw(st.one_of(st.just(min(near, self.size - 1)),
                                     st.integers(0, self.size - 1)))
        limit = self.size - offset
        length = data.draw(st.one_of(st.integers(min_length, min(limit, 511)),
                                     st.integers(min_length, min(limit, 3 * cs))))
        return offset, length

    @rule(data=st.data(), pattern=st.integers(0, 255))
    def write(self, data: st.DataObject, pattern: int) -> None:
        offset, length = self._range(data, 1)
        payload = bytes((pattern + i * 7) & 0xFF for i in range(length))
        self._image().write(offset, payload)
        self.model[offset:offset + length] = payload
        cb = self.cluster_bits
        self.allocated.update(range(offset >> cb, ((offset + length - 1) >> cb) + 1))

    @rule(data=st.data(), punch=st.booleans())
    def write_zeroes(self, data: st.DataObject, punch: bool) -> None:
        """WRITE-ZEROES-ALLOCATE: allocates like a write of zeros."""
        offset, length = self._range(data, 1)
        self._image().write_zeroes(offset, length, punch=punch)
        self.model[offset:offset + length] = bytes(length)
        cb = self.cluster_bits
        self.allocated.update(range(offset >> cb, ((offset + length - 1) >> cb) + 1))

    @rule(data=st.data())
    def discard(self, data: st.DataObject) -> None:
        """DISCARD-KEEP-BITS, DISCARD-PUNCH: bits unchanged, unallocated clusters unchanged,
        allocated bytes read as before or as zero (the model then follows what they read)."""
        offset, length = self._range(data, 1)
        self._image().discard(offset, length)
        got = self._image().read(offset, length)
        cb = self.cluster_bits
        for i, b in enumerate(got):
            at = offset + i
            if (at >> cb) in self.allocated:
                assert b in (0, self.model[at]), at
                self.model[at] = b
            else:
                assert b == self.model[at], at

    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        offset, length = self._range(data, 0)
        assert self._image().read(offset, length) == self.model[offset:offset + length]

    @rule()
    def read_all(self) -> None:
        assert self._image().read(0, self.size) == self.model

    @rule(sectors=st.integers(1, 64))
    def resize(self, sectors: int) -> None:
        new = sectors * SECTOR
        old = self.size
        cb = self.cluster_bits
        self._image().resize(new)
        if new < old:
            del self.model[new:]
            count = cluster_count_for(new, cb)
            self.allocated = {c for c in self.allocated if c < count}
        elif new > old:
            self.model.extend(bytes(new - old))
            old_count = cluster_count_for(old, cb)
            if old % (1 << cb):
                self.allocated.add(old_count - 1)  # RESIZE-GROW: the old last cluster first
            self.allocated.update(range(old_count, cluster_count_for(new, cb)))
        self._check_file()

    @rule()
    def flush(self) -> None:
        self._image().flush()
        self._check_file()

    @rule()
    def reopen(self) -> None:
        self._image().close()
        self._check_file()
        self.img = addcow_ref.open_image(self.path, "r+", **self.cache)

    @precondition(lambda self: not self.hydrated)
    @rule()
    def hydrate(self) -> None:
        seen: list[tuple[int, int]] = []
        self._image().hydrate(lambda done, total: seen.append((done, total)))
        assert seen[-1] == (self.size, self.size)
        assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))
        self.allocated = set(range(cluster_count_for(self.size, self.cluster_bits)))
        self.hydrated = True
        self._check_file()
        # The raw file alone is now the guest disk.
        raw = (self.dir / "disk.raw").read_bytes()
        assert raw == self.model  # exactly virtual_size long too (IMG-LENGTH)

    def _check_file(self) -> None:
        bitmap = check_valid(self.path, strict=True)  # no padding bits, exact image length
        count = cluster_count_for(self.size, self.cluster_bits)
        assert len(bitmap) == bitmap_length_for(self.size, self.cluster_bits)
        assert bitmap_clusters(bitmap, count) == self.allocated

    @invariant()
    def allocation_matches_model(self) -> None:
        if self.img is None:
            return
        cb = self.cluster_bits
        seen: set[int] = set()
        pos = 0
        for e in self.img.map():
            assert e.start == pos
            pos += e.length
            if e.allocated:
                assert e.depth == 0
                seen.update(range(e.start >> cb, ((e.start + e.length - 1) >> cb) + 1))
        assert pos == self.size
        assert seen == self.allocated
        assert self.img.virtual_size == self.size


# Inherits max_examples from the loaded profile (250 under HYPOTHESIS_PROFILE=ci).
AddCowMachine.TestCase.settings = settings(stateful_step_count=20)
TestAddCowStateful = AddCowMachine.TestCase
