"""The reader and writer duties add-cow 2.0 final adds or sharpens, one test each (spec pages
"Reading, writing and resizing", "Image file and backing file", "Features", "COW bitmap").

Crash orders (RESIZE-GROW-ORDER, HYDRATE-ORDER, FEAT-AUTOCLEAR-DURABLE) are tested at every
crash point in ``test_crash.py`` and ``test_spec2_orders.py``; these tests pin outcomes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.format.errors import AddCowError, BackingFileError
from addcow_ref.format.header import parse_header

from .helpers import bitmap_clusters, check_valid, make_image

CB = 12
CS = 1 << CB
SIZE = 8 * CS + 1024  # a partial last cluster: 9 clusters, 7 padding bits


def _set_padding(path: Path) -> None:
    data = bytearray(path.read_bytes())
    bo = int(parse_header(bytes(data[:128])).bitmap_offset)
    data[bo + 1] |= 0xFE  # bits 9..15: cluster 8 is bit 8, the rest stand for no cluster
    data[bo + 1] &= ~0x01 & 0xFF
    path.write_bytes(bytes(data))


def test_padding_bits_are_ignored_by_readers_and_written_zero(tmp_path: Path) -> None:
    """BMP-PADDING (duty ignore): set padding bits never refuse the image and never count as
    allocation; the next bitmap write-back of a writer writes them 0."""
    backing = b"\x42" * SIZE
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=backing)
    _set_padding(path)
    with addcow_ref.open_image(path) as img:
        assert img.allocated_clusters() == 0
        assert img.read(0, SIZE) == backing
        assert [e.allocated for e in img.map()] == [False]
    with addcow_ref.open_image(path, "r+") as img:
        img.write(8 * CS, b"x")  # the last cluster: its bitmap byte is written back
    bitmap = check_valid(path, strict=True)
    assert bitmap_clusters(bitmap, 9) == {8}
    _set_padding(path)
    with addcow_ref.open_image(path, "r+") as img:
        img.hydrate()  # counts the ones: padding bits must not make it think it is done
        assert img.all_allocated
    check_valid(path, strict=True)


def test_grow_over_a_long_image_file_reads_zeros(tmp_path: Path) -> None:
    """RESIZE-GROW, IMG-LENGTH: old bytes of a longer image file never reappear, backing bytes
    past the old end never show, and the image file ends up exactly the new size."""
    backing = b"\x42" * (4 * SIZE)
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=backing)
    with open(tmp_path / "disk.raw", "r+b") as f:
        f.seek(SIZE)
        f.write(b"\xee" * (3 * SIZE))
    new = 2 * SIZE
    with addcow_ref.open_image(path, "r+") as img:
        img.resize(new)
        assert img.read(0, SIZE) == backing[:SIZE]
        assert img.read(SIZE, new - SIZE) == bytes(new - SIZE)
        assert img.allocated_clusters() == img.descriptor.cluster_count - 8
    assert (tmp_path / "disk.raw").stat().st_size == new
    check_valid(path, strict=True)


def test_grow_and_shrink_keep_all_allocated_and_exact_lengths(tmp_path: Path) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=b"\x42" * SIZE)
    with addcow_ref.open_image(path, "r+") as img:
        img.hydrate()
        img.resize(SIZE + 3 * CS + 512)
        assert img.all_allocated
        img.resize(3 * CS + 512)
        assert img.all_allocated
        assert img.read(0, 3 * CS + 512) == b"\x42" * (3 * CS + 512)
    assert (tmp_path / "disk.raw").stat().st_size == 3 * CS + 512
    check_valid(path, strict=True)


def _with_autoclear(path: Path, bits: int) -> None:
    data = bytearray(path.read_bytes())
    header = parse_header(bytes(data[:128]))
    data[:128] = header.replace(autoclear_features=bits).build()
    path.write_bytes(bytes(data))


def _compat(path: Path) -> tuple[int, int]:
    header = parse_header(path.read_bytes()[:128])
    return int(header.compatible_features), int(header.autoclear_features)


@pytest.mark.parametrize("operation", ["write", "write_zeroes", "discard", "resize",
                                       "hydrate"])
def test_unknown_autoclear_bits_are_cleared_before_the_first_change(
        tmp_path: Path, operation: str) -> None:
    """FEAT-AUTOCLEAR-UNKNOWN: any change clears them (opening and closing clears nothing);
    unknown compatible bits survive every header rewrite (FEAT-COMPAT-KEEP)."""
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=b"\x42" * SIZE)
    data = bytearray(path.read_bytes())
    data[:128] = parse_header(bytes(data[:128])).replace(
        compatible_features=1 << 40).build()
    path.write_bytes(bytes(data))
    _with_autoclear(path, 1 << 5)
    with addcow_ref.open_image(path, "r+") as img:
        img.flush()
    assert _compat(path) == (1 << 40, 1 << 5)
    with addcow_ref.open_image(path, "r+") as img:
        if operation == "write":
            img.write(0, b"x")
        elif operation == "write_zeroes":
            img.write_zeroes(0, 10)
        elif operation == "discard":
            img.discard(0, CS)
        elif operation == "resize":
            img.resize(SIZE + CS)
        else:
            img.hydrate()
    compat, autoclear = _compat(path)
    assert autoclear == 0
    assert compat & (1 << 40)
    check_valid(path)


def test_header_extension_bytes_are_kept(tmp_path: Path) -> None:
    """HDR-EXTENSION-KEEP: header_length and bytes 128..header_length survive resize and
    hydrate, which rewrite the header."""
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=b"\x42" * SIZE)
    data = bytearray(path.read_bytes())
    header = parse_header(bytes(data[:128]))
    names_at = int(header.image_name_offset)
    names = bytes(data[names_at:int(header.bitmap_offset)]).rstrip(b"\0")
    ext = bytes(range(1, 17))
    data[names_at:names_at + len(names) + 16] = ext + names
    data[:128] = header.replace(
        header_length=144, image_name_offset=int(header.image_name_offset) + 16,
        backing_name_offset=int(header.backing_name_offset) + 16).build()
    path.write_bytes(bytes(data))
    check_valid(path)
    with addcow_ref.open_image(path, "r+") as img:
        img.write(0, b"x")
        img.resize(SIZE + CS)
        img.hydrate()
    after = path.read_bytes()
    assert int(parse_header(after[:128]).header_length) == 144
    assert after[128:144] == ext


def test_identity_is_compared_by_inode_not_by_name(tmp_path: Path) -> None:
    """IMG-IDENTITY: the image file may not be the add-cow file, a backing file or the image
    file of an add-cow backing file; hard links show that names are not compared."""
    base = b"\x42" * SIZE
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=base)
    raw = tmp_path / "disk.raw"
    cases = [tmp_path / "disk-base.raw", path]
    for target in cases:
        raw.unlink()
        os.link(target, raw)
        for mode in ("r", "r+"):
            with pytest.raises(AddCowError) as info:
                addcow_ref.open_image(path, mode)
            assert info.value.rule_id == "IMG-IDENTITY", info.value
    raw.unlink()
    raw.write_bytes(bytes(SIZE))
    # top -> mid (add-cow) -> base: top's image file is a hard link to mid's image file.
    mid = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=base, name="mid")
    addcow_ref.create(tmp_path / "top.addcow", size=SIZE, image_file="top.raw",
                      backing_file="mid.addcow", backing_format="add-cow", cluster_bits=CB)
    (tmp_path / "top.raw").unlink()
    os.link(tmp_path / "mid.raw", tmp_path / "top.raw")
    with pytest.raises(BackingFileError) as chain_info:
        addcow_ref.open_image(tmp_path / "top.addcow", "r+")
    assert chain_info.value.rule_id == "IMG-IDENTITY"
    with addcow_ref.open_image(mid) as ok:
        assert ok.read(0, 4) == b"\x42" * 4


def _open_with_timeout(path: Path, seconds: float = 10.0) -> BaseException | None:
    """Open ``path`` in a thread; fail the test if the open hangs (a FIFO opened blocking)."""
    result: list[BaseException | None] = []

    def target() -> None:
        try:
            addcow_ref.open_image(path).close()
            result.append(None)
        except BaseException as e:  # handed to the test
            result.append(e)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "opening the image blocked"
    return result[0]


@pytest.mark.parametrize("which", ["disk.raw", "disk-base.raw"])
@pytest.mark.parametrize("kind", ["fifo", "directory", "char device", "socket"])
def test_file_types_are_learnt_without_blocking(tmp_path: Path, which: str,
                                                kind: str) -> None:
    """IMG-FILE-TYPE, READ-FILE-TYPE: a FIFO, directory, character device or socket as the
    image file or raw backing file is refused, and a FIFO is never opened (it would block)."""
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=b"\x42" * SIZE)
    target = tmp_path / which
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    elif kind == "char device":
        target.symlink_to("/dev/null")
    else:
        import socket

        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.bind(str(target))
        except OSError:  # pragma: no cover - a path too long for AF_UNIX
            pytest.skip("cannot bind a socket in the temporary directory")
        sock.close()
    error = _open_with_timeout(path)
    assert isinstance(error, AddCowError), error
    assert error.rule_id == "IMG-FILE-TYPE"
    assert kind in str(error)


def test_out_of_range_io_is_refused_never_clipped(tmp_path: Path) -> None:
    """READ-RANGE, WRITE-RANGE: nothing is read, and no file changes."""
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=b"\x42" * SIZE)
    before = [p.read_bytes() for p in (path, tmp_path / "disk.raw")]
    with addcow_ref.open_image(path, "r+") as img:
        for call in (lambda: img.read(SIZE - 10, 11), lambda: img.write(SIZE - 1, b"ab"),
                     lambda: img.write_zeroes(SIZE - CS, CS + 1),
                     lambda: img.discard(0, SIZE + 512), lambda: img.read(-1, 1)):
            with pytest.raises(ValueError, match="outside"):
                call()
    assert [p.read_bytes() for p in (path, tmp_path / "disk.raw")] == before


def test_write_zeroes_allocates_like_a_write(tmp_path: Path) -> None:
    """WRITE-ZEROES-ALLOCATE: bits set, the range reads zeros, head and tail copied from the
    backing file; with ``punch`` the full clusters become holes of the image file."""
    base = bytes(range(256)) * (SIZE // 256)
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=base)
    with addcow_ref.open_image(path, "r+") as img:
        img.write(0, b"\x77" * SIZE)  # allocated clusters with data, to be punched
    path2 = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=base, name="two")
    for p, punch in ((path, True), (path2, False)):
        with addcow_ref.open_image(p, "r+") as img:
            img.write_zeroes(100, 5 * CS, punch=punch)
            img.write_zeroes(SIZE - 10, 10, punch=punch)  # the partial last cluster
            got = img.read(0, SIZE)
            assert img.is_allocated(0, 6 * CS) == (True, 6 * CS)
        old = b"\x77" * SIZE if p == path else base
        want = bytearray(old)
        want[100:100 + 5 * CS] = bytes(5 * CS)
        want[SIZE - 10:] = bytes(10)
        assert got == bytes(want)
        bits = bitmap_clusters(check_valid(p, strict=True), 9)
        assert bits == (set(range(9)) if p == path else {0, 1, 2, 3, 4, 5, 8})
    if hasattr(os.stat(path), "st_blocks"):
        # clusters 1..4 are fully covered: punched out of the image file
        assert os.stat(tmp_path / "disk.raw").st_blocks * 512 <= SIZE - 3 * CS


def test_discard_punches_allocated_clusters_and_keeps_every_bit(tmp_path: Path) -> None:
    """DISCARD-KEEP-BITS, DISCARD-PUNCH: unallocated clusters still read the backing file."""
    base = b"\x42" * SIZE
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB, backing=base)
    with addcow_ref.open_image(path, "r+") as img:
        img.write(0, b"\x77" * (3 * CS))
        img.discard(0, SIZE)
        assert img.read(3 * CS, SIZE - 3 * CS) == base[3 * CS:]
        for b in img.read(0, 3 * CS):
            assert b in (0, 0x77)
    assert bitmap_clusters(check_valid(path, strict=True), 9) == {0, 1, 2}


def test_hydrate_keeps_holes_and_cuts_a_long_image_file(tmp_path: Path) -> None:
    """Hydrating a sparse base keeps the image file within one cluster per data extent of the
    base's allocation, and leaves it exactly ``virtual_size`` long (IMG-LENGTH)."""
    cb = 16
    size = 64 << 20
    base = tmp_path / "big-base.raw"
    extents = [(1 << 20, 300_000), (20 << 20, 65536), (50 << 20, 5 << 20)]
    with open(base, "wb") as f:
        f.truncate(size)
        for at, n in extents:
            f.seek(at)
            f.write(os.urandom(n))
    addcow_ref.create(tmp_path / "big.addcow", size=size, image_file="big.raw",
                      backing_file="big-base.raw", backing_format="raw", cluster_bits=cb)
    with open(tmp_path / "big.raw", "r+b") as f:
        f.truncate(size + (3 << 20))  # a longer image file, as a user might hand in
    with addcow_ref.open_image(tmp_path / "big.addcow", "r+") as img:
        img.write(10 << 20, b"\x55" * 1000)
        img.hydrate()
        assert img.read(1 << 20, 300_000) == base.read_bytes()[1 << 20:(1 << 20) + 300_000]
    raw = tmp_path / "big.raw"
    assert raw.stat().st_size == size
    used = raw.stat().st_blocks * 512
    base_used = base.stat().st_blocks * 512
    assert used <= base_used + (len(extents) + 1) * (1 << cb), (used, base_used)
    with open(raw, "rb") as f, open(base, "rb") as g:
        for at, n in extents:
            f.seek(at)
            g.seek(at)
            assert f.read(n) == g.read(n)
    check_valid(tmp_path / "big.addcow", strict=True)


@pytest.mark.parametrize(("new_size", "rule"), [
    (1 << 63, "HDR-VIRTUAL-SIZE-MAX"),  # a multiple of 512: once refused as ALIGN
    (-512, "HDR-VIRTUAL-SIZE-MAX"),
    (SIZE + 1, "HDR-VIRTUAL-SIZE-ALIGN"),
    (SIZE + 511, "HDR-VIRTUAL-SIZE-ALIGN"),
])
def test_an_invalid_resize_names_the_rule_it_breaks(tmp_path: Path, new_size: int,
                                                     rule: str) -> None:
    path = make_image(tmp_path, size=SIZE, cluster_bits=CB)
    before = path.read_bytes()
    with addcow_ref.open_image(path, "r+") as img, pytest.raises(AddCowError) as caught:
        img.resize(new_size)
    assert caught.value.rule_id == rule
    assert path.read_bytes() == before
