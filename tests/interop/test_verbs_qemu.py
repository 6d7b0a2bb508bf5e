"""convert, commit, rebase, compare and measure against the real qemu-img, qemu-io and
qemu-nbd: every result is judged by ``qemu-img compare`` and ``qemu-img map``, not by add-cow's
own reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from . import tools

SIZE = 64 << 20
CLUSTER = 1 << 16
ADDCOW = [str(Path(sys.executable).parent / "addcow")]


def addcow(*args: str | Path, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    return tools.run([*ADDCOW, *map(str, args)], ok=ok)


def qrun(argv: Sequence[str | Path], ok: tuple[int, ...] = (0,)
         ) -> subprocess.CompletedProcess[str]:
    """``tools.run`` with paths among the arguments."""
    return tools.run([str(a) for a in argv], ok=ok)


@pytest.fixture
def qcow2_overlay(tmp_path: Path) -> Path:
    """base.raw (a distinct byte per 4 KiB block) and a qcow2 overlay with data in three
    clusters (one partly written) and a zero cluster over data."""
    tools.need("qemu-img", "qemu-io")
    (tmp_path / "base.raw").write_bytes(tools.sector_pattern(SIZE))
    ov = tmp_path / "vm.qcow2"
    qrun(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", ov])
    qrun(["qemu-io", "-f", "qcow2", "-c", "write -q -P 0xaa 65536 1000",
               "-c", "write -q -P 0xbb 10M 70000", "-c", "write -q -z 20M 64k", ov])
    return ov


def depth0_clusters(path: Path, fmt: str) -> int:
    entries = tools.qemu_img_json("map", "-f", fmt, str(path))
    return sum(-(-e["length"] // CLUSTER) for e in entries if e["depth"] == 0)


def allocated_clusters(path: Path) -> int:
    info = json.loads(addcow("info", "--output=json", path).stdout)
    return int(info["format-specific"]["data"]["allocated_clusters"])


def qemu_compare(a: Path | str, fa: str, b: Path | str, fb: str
                 ) -> subprocess.CompletedProcess[str]:
    return qrun(["qemu-img", "compare", "-f", fa, "-F", fb, a, b], ok=(0, 1))


def test_convert_qcow2_overlay_is_thin_and_identical(qcow2_overlay: Path) -> None:
    dst = qcow2_overlay.parent / "vm.add-cow"
    addcow("convert", "-f", "qcow2", "-b", "base.raw", "-F", "raw", qcow2_overlay, dst)
    served = qcow2_overlay.parent / "guest.raw"
    addcow("read", "-o", served, dst)
    assert qemu_compare(qcow2_overlay, "qcow2", served, "raw").returncode == 0
    assert allocated_clusters(dst) == depth0_clusters(qcow2_overlay, "qcow2") == 4
    tools.assert_conforming(dst)


def test_export_to_qcow2_writes_only_allocated_clusters(qcow2_overlay: Path) -> None:
    dst = qcow2_overlay.parent / "vm.add-cow"
    addcow("convert", "-f", "qcow2", "-b", "base.raw", "-F", "raw", qcow2_overlay, dst)
    out = qcow2_overlay.parent / "out.qcow2"
    addcow("convert", "-O", "qcow2", dst, out)
    assert qemu_compare(qcow2_overlay, "qcow2", out, "qcow2").returncode == 0
    assert depth0_clusters(out, "qcow2") == allocated_clusters(dst)
    assert os.stat(out).st_size <= os.stat(qcow2_overlay).st_size  # a few clusters, not 64 MiB
    flat = qcow2_overlay.parent / "flat.qcow2"
    addcow("convert", "-O", "qcow2", "-B", "", dst, flat)
    assert tools.qemu_img_json("info", str(flat)).get("backing-filename") is None
    assert qemu_compare(qcow2_overlay, "qcow2", flat, "qcow2").returncode == 0


def test_commit_equals_guest_data(qcow2_overlay: Path) -> None:
    tmp = qcow2_overlay.parent
    guest = tmp / "guest.raw"
    qrun(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2_overlay, guest])
    dst = tmp / "vm.add-cow"
    addcow("convert", "-f", "qcow2", "-b", "base.raw", "-F", "raw", qcow2_overlay, dst)
    addcow("commit", "-q", dst)
    assert qemu_compare(guest, "raw", tmp / "base.raw", "raw").returncode == 0
    assert allocated_clusters(dst) == 0


@pytest.mark.parametrize("unsafe", [False, True])
def test_rebase_then_compare(qcow2_overlay: Path, unsafe: bool) -> None:
    tmp = qcow2_overlay.parent
    dst = tmp / "vm.add-cow"
    addcow("convert", "-f", "qcow2", "-b", "base.raw", "-F", "raw", qcow2_overlay, dst)
    new = tmp / "new.raw"
    if unsafe:  # the base moved: same bytes, new name
        os.rename(tmp / "base.raw", new)
        qrun(["qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "new.raw", "-F", "raw",
                   qcow2_overlay])
    else:  # a different base: only the differing clusters may be copied
        qrun(["qemu-img", "create", "-q", "-f", "raw", new, str(SIZE)])
    addcow("rebase", *(["-u"] if unsafe else []), "-b", "new.raw", "-F", "raw", dst)
    guest = tmp / "guest.raw"
    addcow("read", "-o", guest, dst)
    assert qemu_compare(qcow2_overlay, "qcow2", guest, "raw").returncode == 0
    if unsafe:
        assert allocated_clusters(dst) == 4
    tools.assert_conforming(dst)


def test_compare_matches_qemu_img(qcow2_overlay: Path, tmp_path: Path) -> None:
    (tmp_path / "short.raw").write_bytes(tools.sector_pattern(SIZE)[: SIZE // 2])
    pairs = [
        (qcow2_overlay, "qcow2", tmp_path / "base.raw", "raw"),
        (qcow2_overlay, "qcow2", qcow2_overlay, "qcow2"),
        (tmp_path / "base.raw", "raw", tmp_path / "short.raw", "raw"),
    ]
    for a, fa, b, fb in pairs:
        theirs = qemu_compare(a, fa, b, fb)
        ours = addcow("compare", "-f", fa, "-F", fb, a, b, ok=(0, 1))
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), (a, b)
    theirs = qrun(["qemu-img", "compare", "-f", "raw", "-F", "raw", tmp_path / "base.raw",
                        tmp_path / "none.raw"], ok=(2,))
    ours = addcow("compare", "-F", "raw", tmp_path / "base.raw", tmp_path / "none.raw", ok=(2,))
    assert ours.returncode == theirs.returncode == 2


def test_measure_has_qemu_img_shape(qcow2_overlay: Path) -> None:
    theirs = tools.qemu_img_json("measure", "--size", "1G", "-O", "qcow2")
    ours = json.loads(addcow("measure", "--size", "1G", "--output=json").stdout)
    assert set(theirs) <= set(ours)
    assert ours["required"] < ours["fully-allocated"]
    human = addcow("measure", "--size", "1G").stdout.splitlines()
    assert [line.split(":")[0] for line in human[:2]] == ["required size", "fully allocated size"]
    src = json.loads(addcow("measure", "--output=json", "-f", "qcow2", qcow2_overlay).stdout)
    # the base holds data in every cluster but the one the overlay zeroed
    assert src["image-file-required"] == SIZE - CLUSTER


def test_convert_from_nbd_allocates_only_changes(tmp_path: Path) -> None:
    tools.need("qemu-img", "qemu-nbd")
    base = tmp_path / "base.raw"
    base.write_bytes(tools.sector_pattern(SIZE))
    disk = bytearray(base.read_bytes())
    disk[5 * CLUSTER + 3] ^= 0xFF
    (tmp_path / "disk.raw").write_bytes(bytes(disk))
    sock, pid = tmp_path / "nbd.sock", tmp_path / "nbd.pid"
    qrun(["qemu-nbd", "--fork", "--persistent", "-r", "-f", "raw", "-k", sock,
               "--pid-file", pid, tmp_path / "disk.raw"])
    try:
        uri = f"nbd+unix:///?socket={sock}"
        # Not disk.add-cow: its default image file would be disk.raw, the file qemu-nbd serves
        # (the locks refuse to write it).
        dst = tmp_path / "copy.add-cow"
        addcow("convert", "-f", "raw", "-b", "base.raw", "-F", "raw", uri, dst)
        assert allocated_clusters(dst) == 1
        guest = tmp_path / "guest.raw"
        addcow("read", "-o", guest, dst)
        assert qemu_compare(tmp_path / "disk.raw", "raw", guest, "raw").returncode == 0
    finally:
        for _ in range(50):
            if pid.exists():
                break
            time.sleep(0.1)
        os.kill(int(pid.read_text()), 15)


def test_export_to_qcow2_keeps_a_colon_name_a_file(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A backing name read from the image is hostile input: ``nbd:base.raw`` must not reach
    qemu as protocol ``nbd`` (qemu parses ``PROTO:REST`` when the colon comes before any
    slash), nor may an output file named so. Before, ``qemu-img create`` failed on it."""
    tools.need("qemu-img", "qemu-io")
    monkeypatch.chdir(tmp_path)  # relative names, as a user types them
    base = tmp_path / "nbd:base.raw"
    base.write_bytes(tools.sector_pattern(1 << 20))
    addcow("create", "-b", "nbd:base.raw", "-F", "raw", "disk.add-cow", "1M")
    addcow("write", "-q", "--pattern", "0x5c", "--offset", "65536", "--length", "4096",
           "disk.add-cow")
    addcow("convert", "-O", "qcow2", "disk.add-cow", "out:put.qcow2")
    assert (tmp_path / "out:put.qcow2").is_file()
    info = tools.qemu_img_json("info", "-f", "qcow2", "./out:put.qcow2")
    assert info["backing-filename"] == "./nbd:base.raw"
    qrun(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", "./out:put.qcow2", "guest.raw"])
    data = (tmp_path / "guest.raw").read_bytes()
    expected = bytearray(base.read_bytes())
    expected[65536:65536 + 4096] = b"\x5c" * 4096
    assert data == bytes(expected)
