"""Write orders at every crash point (FEAT-AUTOCLEAR-DURABLE) and the step order of a grow
(RESIZE-GROW-ORDER) as the file layer sees it.

The autoclear rule: clearing unknown autoclear bits is durable before the writer's first other
change to any file of the image. So after a power loss at any point of a write, write-zeroes,
discard, resize or hydrate, either no byte outside the header changed, or the header on disk
has the bits cleared.
"""

from __future__ import annotations

import contextlib
import random
import shutil
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.format.header import parse_header

from .faultfs import CRASH_POINTS, CrashFS, FaultFS, PowerLoss
from .helpers import check_valid, make_image

CB = 9
SIZE = 20 * 512 + 512  # a partial last cluster (1 KiB clusters would be CB + 1)
MODES = ("drop", "keep", "random")
UNKNOWN_AUTOCLEAR = 1 << 7


def _operate(img: addcow_ref.AddCowImage, operation: str) -> None:
    if operation == "write":
        img.write(700, b"\x11" * 900)
    elif operation == "write_zeroes":
        img.write_zeroes(100, 3000, punch=True)
    elif operation == "discard":
        img.discard(0, SIZE)
    elif operation == "grow":
        img.resize(SIZE + 9 * 512)
    elif operation == "shrink":
        img.resize(SIZE - 5 * 512)
    else:
        img.hydrate()


def _pristine(directory: Path) -> Path:
    directory.mkdir()
    path = make_image(directory, size=SIZE, cluster_bits=CB, backing=b"\x42" * (SIZE + 4096))
    with addcow_ref.open_image(path, "r+") as img:
        img.write(0, b"\x99" * 600)  # an allocated cluster, for discard to punch
    data = bytearray(path.read_bytes())
    data[:128] = parse_header(bytes(data[:128])).replace(
        autoclear_features=UNKNOWN_AUTOCLEAR).build()
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("operation", ["write", "write_zeroes", "discard", "grow", "shrink",
                                       "hydrate"])
def test_autoclear_is_durable_before_any_other_change(tmp_path: Path, operation: str,
                                                      pytestconfig: pytest.Config) -> None:
    path = _pristine(tmp_path / "pristine")
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    counter = CrashFS()
    shutil.copytree(path.parent, tmp_path / "count")
    with addcow_ref.open_image(tmp_path / "count" / path.name, "r+", fs=counter) as img:
        _operate(img, operation)
    total = counter.boundaries
    assert total >= 3
    rng = random.Random(total)
    changed_points = 0
    for crash_at in range(1, total + 1):
        for mode in MODES:
            work = tmp_path / f"a{crash_at}{mode}"
            shutil.copytree(path.parent, work)
            fs = CrashFS(crash_at)
            img = addcow_ref.open_image(work / path.name, "r+", fs=fs)
            with contextlib.suppress(PowerLoss):
                _operate(img, operation)
            with contextlib.suppress(PowerLoss):
                img.close()
            fs.materialize(mode, rng)
            after = {p.name: p.read_bytes() for p in work.iterdir()}
            meta = after[path.name]
            autoclear = int(parse_header(meta[:128]).autoclear_features)
            others_changed = (meta[128:] != before[path.name][128:]
                              or any(after[n] != before[n] for n in before if n != path.name))
            if others_changed:
                changed_points += 1
                assert autoclear == 0, f"crash point {crash_at} ({mode}): a file changed " \
                                       "while the unknown autoclear bit was still on disk"
            check_valid(work / path.name)
            shutil.rmtree(work)
    assert changed_points  # the operation did change files at some crash points
    pytestconfig.stash[CRASH_POINTS].append(total * len(MODES))


def test_grow_steps_reach_the_files_in_the_spec_order(tmp_path: Path) -> None:
    """RESIZE-GROW-ORDER as the file layer logs it: old last cluster data, its sync and bitmap
    byte; the image file's zeros and sync; the new bits and sync; the header last."""
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB + 1, backing=b"\x42" * SIZE)
    fs = FaultFS()
    meta, raw = str(path), str(tmp_path / "disk.raw")
    with addcow_ref.open_image(path, "r+", fs=fs) as img:
        mark = len(fs.log)
        img.resize(SIZE + 40 * 512)
        log = [entry for entry in fs.log[mark:]
               if entry[0] in ("pwrite", "fsync", "truncate", "punch_hole")]
    assert log == [
        ("pwrite", raw), ("fsync", raw),     # 1. the partial old last cluster...
        ("pwrite", meta), ("fsync", meta),   # ...and its bit (a flush)
        ("truncate", raw), ("fsync", raw),   # 2. zeros in the image file (extended)
        ("pwrite", meta), ("fsync", meta),   # 3. the new bits, old padding bits included
        ("pwrite", meta), ("fsync", meta),   # 4. the header
    ], log
