"""Suite 3.0.0: expectations tightened where the spec leaves no choice, and the vectors added
for the survivors of the mutation run of suite 2.1.0 (issue 16).

Each bug planted here (by monkeypatching the reference, which the forked ``python:`` adapter
inherits) is one that suite 2.1.0 let through, and that a vector of 3.0.0 now fails.
"""

from __future__ import annotations
import __future__

import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.adapters import reference as reference_adapter

from addcow_ref.engine import bitmapcache as bitmapcache_module
from addcow_ref.engine import extents as extents_module
from addcow_ref.engine.hydrate import HydrateMixin
from addcow_ref.format import bitmap as bitmap_module
from addcow_ref.ops import upgrade as upgrade_module

from .vectors_support import changed_and_added, failing_vectors, run_reference, suite_ids

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"

pytestmark = pytest.mark.skipif(
    not (VECTORS / "manifest.json").is_file(), reason="vectors/manifest.json not generated yet"
)


def test_hydration_that_leaves_a_longer_image_file(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Hydration that skips step 3 of HYDRATE-ORDER (the truncation of a longer image file).
    Suite 2.1.0 compared only the image file's first virtual_size bytes after a hydration, so
    this bug passed it (the mutation run's ``_cut_image_file`` survivors); 3.0.0 pins the
    length, and the one hydrate vector whose image file is longer fails."""
    assert "ops/hydrate-image-file-longer" in changed_and_added("3.0.0")[0]
    assert failing_vectors(tmp_path, ["ops/hydrate*"]) == set()
    monkeypatch.setattr(HydrateMixin, "_cut_image_file", lambda self: None)
    assert failing_vectors(tmp_path, ["ops/hydrate*"]) == {"ops/hydrate-image-file-longer"}


# -- the survivors of the mutation run of 2.1.0 that new 3.0.0 vectors kill ----------------------


def _blind_then_seen(tmp_path: Path, globs: list[str], new: set[str]) -> None:
    """Under the planted bug, every vector of ``globs`` that suite 2.1.0 has passes (the old
    suite was blind to it) and exactly the vectors ``new``, added in 3.0.0, fail."""
    old = suite_ids("2.1.0")
    assert new
    assert not new & old
    ran, failing = run_reference(tmp_path, globs)
    assert new <= ran
    assert len(ran & old) >= 2, "the old suite's related vectors ran"
    assert failing == new


def _with_edit(func: Callable[..., Any], old: str, new: str) -> Callable[..., Any]:
    """A copy of the function or method ``func`` with the one occurrence of ``old`` in its
    source replaced by ``new`` (a mutant of the mutation run, written out), compiled against
    ``func``'s module globals, so it calls the same helpers the original does."""
    source = textwrap.dedent(inspect.getsource(func))
    assert source.count(old) == 1, (func.__name__, old)
    code = compile(source.replace(old, new), inspect.getfile(func), "exec",
                   flags=__future__.annotations.compiler_flag, dont_inherit=True)
    namespace: dict[str, Any] = {}
    exec(code, func.__globals__, namespace)
    edited: Callable[..., Any] = namespace[func.__name__]
    return edited


#: The long-bitmap vectors: 2.1.0's ``big/*`` and the hydration of 10,000 clusters, which
#: reach the numpy search of the bitmap too, and the two added in 3.0.0.
_LONG_BITMAP = ["big/*", "ops/hydrate-long-bitmap"]
_MAP_MID_WORD = "big/map-last-run-ends-mid-word"
_MAP_LAST_WORD = "big/map-last-cluster-alone-in-word"
_LONG_WRITES = "big/write-long-runs-from-mid-word"
_LONG_ZEROES = "big/write-zeroes-long-run-ends-unallocated"


@pytest.fixture
def numpy_loaded() -> None:
    """The numpy paths of ``format.bitmap`` (``run_arrays``), which the library takes only
    where numpy is loaded already; the forked adapter inherits this process's modules."""
    pytest.importorskip("numpy")
    assert bitmap_module.numpy_if_loaded() is not None


def test_long_bitmap_vectors_pass_with_numpy(tmp_path: Path, numpy_loaded: None) -> None:
    ran, failing = run_reference(tmp_path, _LONG_BITMAP)
    assert {_MAP_MID_WORD, _MAP_LAST_WORD, _LONG_WRITES, _LONG_ZEROES} <= ran
    assert failing == set()


@pytest.mark.parametrize(("where", "func", "old", "new", "fails"), [
    # The first run's slot gets the last run's length (mutant run_arrays:const-1:10, made
    # deterministic: the mutant leaves the last slot uninitialised). Seen by a write whose
    # first run, unallocated, is longer than its last: its tail is never allocated.
    pytest.param((bitmap_module, bitmapcache_module), "run_arrays",
                 "lengths[-1] = end - starts[-1]", "lengths[-1] = lengths[0] = end - starts[-1]",
                 {_LONG_WRITES}, id="first-run-gets-last-length"),
    # The last run's length is measured from the range's first cluster (mutant run_arrays:
    # const-1:11). Seen by a write-zeroes whose last run, unallocated, ends inside the range:
    # clusters past the range get allocated.
    pytest.param((bitmap_module, bitmapcache_module), "run_arrays",
                 "lengths[-1] = end - starts[-1]", "lengths[-1] = end - starts[0]",
                 {_LONG_ZEROES}, id="last-run-from-range-start"),
    # The search starts at word first >> 5 (mutant _boundaries:const-1:6): the changes of bit
    # between a range's first cluster and twice it are lost. A write from cluster 4500, which
    # is allocated, then looks allocated throughout.
    pytest.param((bitmap_module,), "_boundaries", "word = first >> 6", "word = first >> 5",
                 {_LONG_WRITES}, id="search-starts-late"),
    # The search stops a word early when the range's last cluster is the first of its word
    # (mutant _boundaries:const+1:7): that cluster takes the status of the one before it.
    pytest.param((bitmap_module,), "_boundaries", "last_word = (end - 1) >> 6",
                 "last_word = (end - 2) >> 6", {_MAP_LAST_WORD}, id="last-word-dropped"),
    # The last window's changes of bit are not cut at the range's end (mutant
    # _boundaries:cmp-negate:5): the padding bit after an allocated last cluster, in the same
    # word, becomes an empty extent at the end of the map.
    pytest.param((bitmap_module,), "_boundaries", "if word + n > last_word else len(pos)",
                 "if word + n <= last_word else len(pos)", {_MAP_MID_WORD, _LONG_WRITES},
                 id="boundary-past-end-kept"),
    # The one-change-per-word shortcut returns nothing (mutant _set_bit_positions:
    # return-none:1): 2.1.0's long bitmaps all have a word with two changes (cluster 0
    # allocated, or short runs), so none took it.
    pytest.param((bitmap_module,), "_set_bit_positions", "        return at\n",
                 "        return None\n",
                 {_MAP_MID_WORD, _MAP_LAST_WORD, _LONG_WRITES, _LONG_ZEROES},
                 id="single-change-words-lost"),
])
def test_long_bitmap_search_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                numpy_loaded: None, where: tuple[Any, ...], func: str,
                                old: str, new: str, fails: set[str]) -> None:
    """A bug in the word-parallel search of the bitmap (``format.bitmap``'s numpy path, for
    ranges of 4096 clusters or more) that the mutation run of 2.1.0 let survive."""
    edited = _with_edit(getattr(bitmap_module, func), old, new)
    for module in where:
        monkeypatch.setattr(module, func, edited)
    _blind_then_seen(tmp_path, _LONG_BITMAP, fails)


def test_map_that_never_merges_backing_extents(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-extent map (without numpy) merging two extents of the backing file into
    nothing (mutant ``extents:_joined:return-none``): no 2.1.0 chain has two consecutive
    backing extents of one status, so none merged; an add-cow backing file without a backing
    file, shorter than the top image, has them (its unallocated tail, then past its end)."""
    monkeypatch.setattr(extents_module, "numpy_if_loaded", lambda: None)
    monkeypatch.setattr(extents_module, "_joined", lambda a, b: None)
    _blind_then_seen(tmp_path, ["chains/*"], {"chains/add-cow-backing-tail-merges"})


def test_upgrade_that_reads_three_bytes_of_the_version(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An upgrade that reads the version from bytes 9..11 (mutant ``upgrade_v1:const+1:5``):
    version 0x01000001 then looks like 1. A whole file still fails version 1's own check of
    the field for HDR-VERSION, so only a file too short for a version 1 header tells: the
    upgrade refuses it as truncated (HDR-COMPLETE), the wrong rule."""
    edited = _with_edit(upgrade_module.upgrade_v1, 'int.from_bytes(head[8:12], "big")',
                        'int.from_bytes(head[9:12], "big")')
    monkeypatch.setattr(reference_adapter, "upgrade_v1", edited)
    _blind_then_seen(tmp_path, ["header/upgrade-*", "legacy/upgrade-*"],
                     {"header/upgrade-version-low-bytes-1-refused"})


def test_bit_range_that_starts_a_byte_early(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Setting a range of bits from bit 1 of a byte with the whole byte (mutant
    ``_apply_range:const-1:5``: its first whole byte rounded from ``first + 6``): the cluster
    before the range is allocated too. No write of 2.1.0 starts at bit 1 of a byte after an
    unallocated cluster."""
    edited = _with_edit(bitmap_module._apply_range, "full_lo, full_hi = (first + 7) >> 3",
                        "full_lo, full_hi = (first + 6) >> 3")
    monkeypatch.setattr(bitmap_module, "_apply_range", edited)
    _blind_then_seen(tmp_path, ["ops/write-*"], {"ops/write-from-bit-1-of-bitmap-byte"})


def test_map_that_drops_one_byte_extents(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-extent map dropping extents of one byte as if they were empty (mutant
    ``MapMixin._map_window:const+1:0``, ``e.length <= 1``): the map then has a gap. Only a
    backing file's end can cut an extent to one byte; no backing file of 2.1.0 ends one byte
    into an unallocated range."""
    edited = _with_edit(extents_module.MapMixin._map_window, "if e.length <= 0:",
                        "if e.length <= 1:")
    monkeypatch.setattr(extents_module, "numpy_if_loaded", lambda: None)
    monkeypatch.setattr(extents_module.MapMixin, "_map_window", edited)
    _blind_then_seen(tmp_path, ["read/*", "chains/*"],
                     {"read/backing-ends-one-byte-into-cluster"})


def test_commit_that_notices_version_1_only_when_it_empties(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit without its first check of the version (mutant ``commit:raise-drop:0``): it
    writes the v1 image's clusters into the backing file, and only emptying the image refuses
    (V1-READ-ONLY), with the backing file changed. The commit vectors of 3.0.0 are all
    version 2, so only ``legacy/commit-refused`` tells."""
    from addcow_ref.ops import commit as commit_module

    edited = _with_edit(commit_module.commit, "        if not d.writable:\n",
                        "        if False:\n")
    monkeypatch.setattr(reference_adapter, "commit_image", edited)
    ran, failing = run_reference(tmp_path, ["legacy/*", "ops/commit-*"])
    assert {"legacy/commit-refused", "legacy/resize-refused", "ops/commit-keep"} <= ran
    assert failing == {"legacy/commit-refused"}
