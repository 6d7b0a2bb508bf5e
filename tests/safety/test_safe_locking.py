"""Image locking between processes (spec page "Locking and concurrent use"): two openers that
could lose each other's writes never both get the image; each run ends with every acknowledged
write present or with a clean, one-line refusal naming the file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from addcow_conformance.checker.cli import main as check_main

import addcow_ref
from addcow_ref.engine.oslocks import ImageLockedError

from .conftest import run

CB = 12
CLUSTERS = 64
SIZE = CLUSTERS << CB

#: A writer process: opens the image, says so, waits for the go file, then writes and flushes
#: one cluster at a time, printing each one it acknowledged ("ok N"), or "refused: ..." when
#: the image cannot be opened.
WORKER = textwrap.dedent("""
    import os, sys, time
    import addcow_ref
    from addcow_ref.format.errors import AddCowError
    path, go, first, step = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    try:
        img = addcow_ref.open_image(path, "r+")
    except AddCowError as e:
        print("refused:", e, flush=True)
        sys.exit(0)
    print("open", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    for c in range(first, CLUSTERS, step):
        img.write(c << CB, bytes([c + 1]) * (1 << CB))
        img.flush()
        print("ok", c, flush=True)
    img.close()
""".replace("CLUSTERS", str(CLUSTERS)).replace("CB", str(CB)))


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.add-cow"
    (tmp_path / "base.raw").write_bytes(b"\x00" * SIZE)
    addcow_ref.create(path, size=SIZE, image_file="disk.raw", backing_file="base.raw",
                      backing_format="raw", cluster_bits=CB)
    return path


@contextmanager
def _holding(path: Path, mode: str) -> Iterator[subprocess.Popen[str]]:
    """Another process that has ``path`` open in ``mode`` until the block ends."""
    code = ("import sys, addcow_ref; img = addcow_ref.open_image(sys.argv[1], sys.argv[2]); "
            "print('open', flush=True); sys.stdin.read(); img.close()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), mode], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdin is not None
    assert proc.stdout.readline().strip() == "open"
    try:
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(30)
        proc.stdout.close()


def _race_two_writers(where: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Start two writer processes of a fresh image in the new directory ``where`` at once:
    each one's first line (``open`` or ``refused: ...``) and, after the go file, each one's
    output and exit code."""
    where.mkdir()
    path = _image(where)
    go = where / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(go), str(i), "2"],
                              text=True, stdout=subprocess.PIPE) for i in (0, 1)]
    first = []
    for p in procs:
        assert p.stdout is not None
        first.append(p.stdout.readline().strip())
    go.touch()
    return first, [(p.communicate(timeout=120)[0], p.returncode) for p in procs]


def test_two_concurrent_writers_never_lose_an_acknowledged_write(tmp_path: Path) -> None:
    # Each opener takes its own lock bytes before it probes for the other's (spec page
    # "Locking and concurrent use"), so two that race can both be refused; never can both
    # open. A race in which both were refused proves nothing about lost writes, so it is run
    # again, on a fresh image, until one writer got the image.
    for attempt in range(20):
        where = tmp_path / f"race{attempt}"
        first, outputs = _race_two_writers(where)
        assert all(code == 0 for _, code in outputs)
        refused = [line for line in first if line.startswith("refused:")]
        # Both opened at once before locking existed, and the later flush dropped the other's
        # bits.
        assert refused, f"both writers opened the image: {first}"
        for line in refused:
            assert "is in use (locked by another process)" in line
            assert "disk.add-cow" in line
        if len(refused) == 1:
            break
    else:
        pytest.fail("in 20 races both writers were refused every time")
    acknowledged = [int(line.split()[1]) for out, _ in outputs for line in out.splitlines()
                    if line.startswith("ok")]
    assert acknowledged
    with addcow_ref.open_image(where / "disk.add-cow") as img:
        for c in acknowledged:
            assert img.read(c << CB, 1 << CB) == bytes([c + 1]) * (1 << CB), f"cluster {c} lost"


def test_addcow_write_refuses_an_image_another_process_writes(tmp_path: Path) -> None:
    path = _image(tmp_path)
    with _holding(path, "r+"):
        result = run("write", "--pattern", "0xab", "--length", "4096", path)
        assert result.exit_code == 1
        assert f"{path} is in use (locked by another process)" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        # readers share with each other, not with a writer
        assert run("read", "--length", "512", path).exit_code == 1
        forced = run("read", "-U", "-P", "0", "--length", "512", path)
        assert forced.exit_code == 0, forced.stderr
        assert run("info", "-U", path).exit_code == 0
        assert run("map", "-U", path).exit_code == 0
        assert run("info", path).exit_code == 1


def test_readers_share_but_keep_writers_out(tmp_path: Path) -> None:
    path = _image(tmp_path)
    with _holding(path, "r"):
        with addcow_ref.open_image(path) as img:  # a second reader is welcome
            assert img.read(0, 16) == bytes(16)
        with pytest.raises(ImageLockedError, match="is in use"):
            addcow_ref.open_image(path, "r+")
    with addcow_ref.open_image(path, "r+") as img:  # and the lock goes with the holder
        img.write(0, b"x")


def test_a_writer_cannot_open_a_file_another_image_reads_as_backing(tmp_path: Path) -> None:
    base = _image(tmp_path)
    top = tmp_path / "top.add-cow"
    addcow_ref.create(top, size=SIZE, image_file="top.raw", backing_file=base.name,
                      backing_format="add-cow", cluster_bits=CB)
    with _holding(top, "r"):
        result = run("write", "--pattern", "0xcd", "--length", "4096", base)
        assert result.exit_code == 1
        assert f"{base} is in use (locked by another process)" in result.stderr
    assert run("write", "--pattern", "0xcd", "--length", "4096", base).exit_code == 0


def test_force_share_is_refused_for_a_writer(tmp_path: Path) -> None:
    path = _image(tmp_path)
    with pytest.raises(ValueError, match="force_share"):
        addcow_ref.open_image(path, "r+", force_share=True)


def test_the_checker_takes_a_shared_lock_too(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _image(tmp_path)
    with _holding(path, "r+"):
        assert check_main([str(path)]) == 1  # a bitmap being written: no verdict
        err = capsys.readouterr().err
        assert "is in use (locked by another process); use -U" in err
        assert check_main(["-U", str(path)]) == 0
    assert check_main([str(path)]) == 0


def test_a_lock_conflict_fails_at_once(tmp_path: Path) -> None:
    path = _image(tmp_path)
    with _holding(path, "r+"):
        start = time.monotonic()
        with pytest.raises(ImageLockedError):
            addcow_ref.open_image(path)
        assert time.monotonic() - start < 5
