"""Suite 3.0.0's commit and rebase vectors (spec: "Committing and rebasing"): each bug planted
here in the reference (by monkeypatching it; the forked ``python:`` adapter inherits the patch)
fails exactly the new vectors that pin what it breaks, while every other op vector, the whole
2.1.0 op suite included, still passes. The oracle's commit and rebase are checked against the
spec's sentences on random disks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.adapters import reference
from addcow_conformance.vectors.model import Disk
from hypothesis import given, settings
from hypothesis import strategies as st

from addcow_ref.ops import commit as commit_mod
from addcow_ref.ops import create as create_mod
from addcow_ref.ops import rebase as rebase_mod

from .vectors_support import changed_and_added, failing_vectors

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"

COMMITS = {"ops/commit-into-raw-backing", "ops/commit-after-writes", "ops/commit-keep",
           "ops/commit-into-add-cow-backing", "ops/commit-clears-unknown-autoclear",
           "ops/commit-into-add-cow-backing-to-its-end"}
SHORT = "ops/commit-into-shorter-add-cow-backing-refused"
OUTGROW = "ops/rebase-name-outgrows-name-area"
FULL = "ops/rebase-from-a-full-name-area"


def _skip_last_run(mp: pytest.MonkeyPatch) -> None:
    """A commit that forgets the last run of allocated clusters."""
    real = commit_mod._allocated
    mp.setattr(commit_mod, "_allocated", lambda img: real(img)[:-1])


def _never_empty(mp: pytest.MonkeyPatch) -> None:
    """A commit that leaves the bits set, then punches the image file anyway: COMMIT-ORDER's
    step 4 without step 3, so the allocated clusters read zeros."""
    mp.setattr(commit_mod, "empty_overlay", lambda path, fs=None: None)


def _truncate_image_file(mp: pytest.MonkeyPatch) -> None:
    """A commit that frees the emptied image's blocks by truncating its image file to 0 bytes
    instead of punching it: the file then breaks IMG-SIZE."""
    def truncate(path: str, size: int, fs: Any = None) -> bool:
        os.truncate(path, 0)
        return True

    mp.setattr(commit_mod, "punch_file", truncate)


def _add_cow_as_raw(mp: pytest.MonkeyPatch) -> None:
    """A commit that writes an add-cow backing image's file as if it were raw."""
    mp.setattr(commit_mod, "FORMAT_ADD_COW", "add-cow, never")


def _copy_nothing(mp: pytest.MonkeyPatch) -> None:
    """A safe rebase that copies no cluster before it renames: the unsafe form."""
    mp.setattr(rebase_mod, "_copy_differing", lambda img, new, progress: 0)


def _always_safe(mp: pytest.MonkeyPatch) -> None:
    """An unsafe rebase that copies like the safe one."""
    real = rebase_mod.rebase

    def rebase(path: str, backing: str, fmt: str | None, *, unsafe: bool = False,
               **kw: Any) -> Any:
        return real(path, backing, fmt, unsafe=False)

    mp.setattr(reference, "rebase_image", rebase)


def _keep_the_old_name(mp: pytest.MonkeyPatch) -> None:
    """A rebase to no backing file that leaves the old name in place."""
    real = rebase_mod.set_backing_name

    def set_name(path: str, backing: str | None, fmt: str | None, **kw: Any) -> None:
        if backing is not None:
            real(path, backing, fmt, **kw)

    mp.setattr(rebase_mod, "set_backing_name", set_name)


def _keep_unknown_autoclear(mp: pytest.MonkeyPatch) -> None:
    """A commit that empties the image but keeps its unknown autoclear bits (the reference
    before the fix that came with these vectors)."""
    mp.setattr(commit_mod, "KNOWN_AUTOCLEAR_FEATURES", ~0)


def _drop_extension(mp: pytest.MonkeyPatch) -> None:
    """A rebase that rebuilds the header at 128 bytes, dropping header_length and the header
    extension (the reference before the fix that came with these vectors)."""
    real = create_mod.build_metadata

    def build(**kw: Any) -> Any:
        return real(**{**kw, "extension": b""})

    mp.setattr(rebase_mod, "build_metadata", build)


def _refuse_a_full_backing_image(mp: pytest.MonkeyPatch) -> None:
    """A commit that refuses an add-cow backing image its data would fill to the last byte
    (``need >= virtual_size``)."""
    real = commit_mod._AddCowTarget.__init__

    def init(self: Any, path: str, need: int, fs: Any) -> None:
        real(self, path, need + 1, fs)

    mp.setattr(commit_mod._AddCowTarget, "__init__", init)


def _no_size_check(mp: pytest.MonkeyPatch) -> None:
    """A commit that writes into a shorter add-cow backing image until a write past its end
    fails, after the clusters before it are written."""
    real = commit_mod._AddCowTarget.__init__

    def init(self: Any, path: str, need: int, fs: Any) -> None:
        real(self, path, 0, fs)

    mp.setattr(commit_mod._AddCowTarget, "__init__", init)


def _unjoined_runs_lose_length(mp: pytest.MonkeyPatch) -> None:
    """A safe rebase whose join of adjacent unallocated extents (of different layers) keeps
    only the first one's length: the clusters of the second are never compared."""
    def runs(img: Any) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for e in img.iter_map():
            if e.allocated:
                continue
            if out and out[-1][0] + out[-1][1] == e.start:
                continue
            out.append((e.start, e.length))
        return out

    mp.setattr(rebase_mod, "_unallocated_runs", runs)


def _keep_bitmap_offset(mp: pytest.MonkeyPatch) -> None:
    """A rebase that keeps bitmap_offset even when the names no longer fit before it (the
    mutant ``set_backing_name:cmp-negate:3``): building the header then fails NAME-BOUNDS."""
    real = create_mod.build_metadata

    def build(**kw: Any) -> Any:
        return real(**{**kw, "bitmap_offset": kw["bitmap_offset"] or 4096})

    mp.setattr(rebase_mod, "build_metadata", build)


def _copy_from_a_byte_early(mp: pytest.MonkeyPatch) -> None:
    """A rename that copies the bitmap from one byte before it (mutant
    ``_copy_bitmap:const-1:0``): the old name's last byte lands in the new name area's padding
    when the old names ended at the bitmap."""
    from addcow_ref.ops import metafile

    real = metafile._copy_bitmap

    def copy(path: str, fs: Any, new: Any, source: tuple[int, int], dest: int) -> None:
        real(path, fs, new, (source[0] - 1, source[1] + 1), dest - 1)

    mp.setattr(metafile, "_copy_bitmap", copy)


BUGS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], set[str]]] = {
    "rebase-copies-the-bitmap-a-byte-early": (_copy_from_a_byte_early,
                                              {FULL}),
    "commit-refuses-a-full-backing-image": (_refuse_a_full_backing_image,
                                            {"ops/commit-into-add-cow-backing-to-its-end"}),
    "commit-without-size-check": (_no_size_check, {SHORT}),
    "rebase-join-loses-length": (_unjoined_runs_lose_length, {"ops/rebase-safe-across-layers"}),
    "commit-keeps-unknown-autoclear": (_keep_unknown_autoclear,
                                       {"ops/commit-clears-unknown-autoclear"}),
    "rebase-drops-header-extension": (_drop_extension, {"ops/rebase-keeps-header-extension",
                                                        OUTGROW, FULL}),
    "rebase-keeps-a-bitmap-it-outgrew": (_keep_bitmap_offset, {OUTGROW}),
    "commit-skips-last-run": (_skip_last_run, COMMITS | {SHORT}),
    "commit-never-empties": (_never_empty, COMMITS - {"ops/commit-keep"}),
    "commit-truncates-image-file": (_truncate_image_file, COMMITS - {"ops/commit-keep"}),
    "commit-add-cow-as-raw": (_add_cow_as_raw, {"ops/commit-into-add-cow-backing",
                                                 "ops/commit-into-add-cow-backing-to-its-end",
                                                 SHORT}),
    "safe-rebase-copies-nothing": (_copy_nothing, {"ops/rebase-safe",
                                                   "ops/rebase-drop-middle-layer",
                                                   "ops/rebase-safe-across-layers"}),
    "unsafe-rebase-copies": (_always_safe, {"ops/rebase-unsafe",
                                            "ops/rebase-unsafe-to-no-backing",
                                            "ops/rebase-keeps-header-extension", OUTGROW,
                                            FULL, "ops/rebase-onto-a-64-deep-chain"}),
    "no-backing-keeps-name": (_keep_the_old_name, {"ops/rebase-to-no-backing",
                                                   "ops/rebase-unsafe-to-no-backing"}),
}

pytestmark = pytest.mark.skipif(
    not (VECTORS / "manifest.json").is_file(), reason="vectors/manifest.json not generated yet"
)


def test_the_reference_passes_every_op_vector(tmp_path: Path) -> None:
    assert failing_vectors(tmp_path, ["ops/*"]) == set()


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_a_planted_bug_fails_exactly_the_new_vectors_that_pin_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bug: str) -> None:
    """Each bug is planted in code that only its operation runs (named first in its id), so
    only that operation's vectors are run with it: every other op vector runs none of the
    planted code, and passes unpatched (test_the_reference_passes_every_op_vector)."""
    plant, expected = BUGS[bug]
    op = "commit" if bug.startswith("commit-") else "rebase"
    assert all(v.startswith(f"ops/{op}-") for v in expected), expected
    # The vectors that pin it came with the commit and rebase operations (3.0.0) or later.
    assert expected <= changed_and_added("3.0.0")[1] | changed_and_added("3.1.0")[1]
    plant(monkeypatch)
    assert failing_vectors(tmp_path, [f"ops/{op}-*"]) == expected


# -- the oracle against the spec's sentences ----------------------------------------------------

CS = 512


@st.composite
def disks(draw: st.DrawFn) -> Disk:
    n = draw(st.integers(1, 12))
    bits = draw(st.sets(st.integers(0, n - 1)))
    image = bytearray(draw(st.binary(min_size=n * CS, max_size=n * CS)))
    backing = draw(st.binary(max_size=(n + 2) * CS))
    return Disk(n * CS, 9, image, bits, backing)


@settings(max_examples=60, deadline=None)
@given(disks(), st.booleans())
def test_the_oracles_commit_is_the_spec(disk: Disk, keep: bool) -> None:
    """COMMIT-COMPLETE: the raw backing file, read with zeros past its end, returns the guest
    disk from before over the whole disk and keeps every byte no allocated cluster covers; an
    emptied image has no bit set, a kept one keeps its bits."""
    before, old, bits = disk.guest(), disk.backing or b"", set(disk.bits)
    disk.commit(keep)
    new = disk.backing or b""
    vs = disk.virtual_size
    assert new[:vs].ljust(vs, b"\0") == before
    covered = {i for c in bits for i in range(c * CS, (c + 1) * CS)}
    assert all(new[i] == old[i] for i in range(len(old)) if i not in covered)
    assert len(new) == max(len(old), max(((c + 1) * CS for c in bits), default=0))
    assert disk.bits == (bits if keep else set())
    assert disk.guest() == before


@settings(max_examples=60, deadline=None)
@given(disks(), st.binary(max_size=14 * CS), st.booleans(), st.booleans())
def test_the_oracles_rebase_is_the_spec(disk: Disk, target: bytes, none: bool,
                                        unsafe: bool) -> None:
    """REBASE-COMPLETE: the safe form keeps the guest disk and allocates exactly the clusters
    that read differently (the others are returned as the writer's choice); the unsafe form
    changes no bit and no image byte, and the guest then reads the new file."""
    new = None if none else target
    before, bits, image = disk.guest(), set(disk.bits), bytes(disk.image)
    old_view = disk._backing_bytes(0, disk.virtual_size)
    same = disk.rebase(new, unsafe=unsafe)
    new_view = (new or b"")[:disk.virtual_size].ljust(disk.virtual_size, b"\0")
    if unsafe:
        assert (disk.bits, bytes(disk.image), same) == (bits, image, set())
        expected = bytearray(new_view)
        for c in bits:
            expected[c * CS:(c + 1) * CS] = image[c * CS:(c + 1) * CS]
        assert disk.guest() == bytes(expected)
        return
    assert disk.guest() == before
    differ = {c for c in range(disk.cluster_count) if c not in bits
              and old_view[c * CS:(c + 1) * CS] != new_view[c * CS:(c + 1) * CS]}
    assert disk.bits == bits | differ
    assert same == set(range(disk.cluster_count)) - bits - differ
