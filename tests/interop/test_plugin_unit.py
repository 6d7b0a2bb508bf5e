"""The plugin's and the serve command's own logic, without nbdkit: extents flags, parameters,
error numbers, the nbdkit command line. (The interop tests prove them through real clients.)"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

import addcow_ref
from addcow_ref.cli import nbdplugin, serve
from addcow_ref.format.errors import ReadOnlyError

from . import images

HOLE_ZERO = nbdplugin.EXTENT_HOLE | nbdplugin.EXTENT_ZERO


def test_extents_follow_the_chain(tmp_path: Path) -> None:
    """Allocated clusters and backing data are data; past the backing file's end is a hole
    that reads as zeros; ranges are clipped to the disk and merged."""
    size = 16 * 65536
    disk = images.overlay(tmp_path, size=size, backing_size=10 * 65536 + 512)
    with addcow_ref.open_image(str(disk.path), mode="r+") as img:
        img.write(12 * 65536 + 5, b"x")
        ext = nbdplugin.extents_of(img, 0, size + 4096)
        assert ext == [(0, 10 * 65536 + 512, 0),
                       (10 * 65536 + 512, 2 * 65536 - 512, HOLE_ZERO),
                       (12 * 65536, 65536, 0),
                       (13 * 65536, 3 * 65536, HOLE_ZERO)]
        # A window starting mid-extent starts exactly at the requested offset.
        assert nbdplugin.extents_of(img, 12 * 65536 + 100, 70000)[0] == (
            12 * 65536 + 100, 65536 - 100, 0)
        assert nbdplugin.extents_of(img, size, 10) == []


def test_extents_without_backing_are_holes_except_written(tmp_path: Path) -> None:
    disk = images.overlay(tmp_path, size=8 * 4096, cluster_bits=12, backing_size=0)
    with addcow_ref.open_image(str(disk.path), mode="r+") as img:
        img.write(4096 * 3, bytes(4096))  # zeros written: allocated, so data, not a hole
        assert nbdplugin.extents_of(img, 0, 8 * 4096) == [
            (0, 3 * 4096, HOLE_ZERO), (3 * 4096, 4096, 0), (4 * 4096, 4 * 4096, HOLE_ZERO)]


def test_req_one_returns_only_the_first_extent(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    disk = images.overlay(tmp_path, size=4 * 65536, backing_size=0)
    with addcow_ref.open_image(str(disk.path), mode="r+") as img:
        img.write(65536, b"y")
        monkeypatch.setattr(nbdplugin, "_export", nbdplugin._Export(img))
        h = nbdplugin._Handle(readonly=False)
        assert len(nbdplugin.extents(h, 4 * 65536, 0, 0)) == 3
        assert nbdplugin.extents(h, 4 * 65536, 0, nbdplugin._FLAG_REQ_ONE) == [
            (0, 65536, HOLE_ZERO)]


def test_callbacks_read_write_flush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = images.overlay(tmp_path, size=4 * 65536)
    with addcow_ref.open_image(str(disk.path), mode="r+") as img:
        monkeypatch.setattr(nbdplugin, "_export", nbdplugin._Export(img))
        h = nbdplugin.open(False)
        assert nbdplugin.get_size(h) == 4 * 65536
        assert nbdplugin.can_write(h)
        nbdplugin.pwrite(h, b"abc", 70000, nbdplugin._FLAG_FUA)
        assert h.wrote
        buf = bytearray(5)
        nbdplugin.pread(h, buf, 69999, 0)
        disk.oracle.write(70000, b"abc")
        assert bytes(buf) == bytes(disk.oracle.data[69999:70004])
        nbdplugin.close(h)
        ro = nbdplugin.open(True)
        assert not nbdplugin.can_write(ro)
        with pytest.raises(ReadOnlyError):
            nbdplugin.pwrite(ro, b"z", 0, 0)


def test_config_parameters() -> None:
    cfg = nbdplugin._config
    saved = (cfg.image, cfg.readonly)
    try:
        nbdplugin.config("image", "/x/disk.add-cow")
        nbdplugin.config("readonly", "TRUE")
        assert cfg.image == Path("/x/disk.add-cow")
        assert cfg.readonly is True
        nbdplugin.config("readonly", "0")
        assert cfg.readonly is False
        with pytest.raises(ValueError, match="readonly"):
            nbdplugin.config("readonly", "maybe")
        with pytest.raises(ValueError, match="unknown parameter"):
            nbdplugin.config("file", "x")
        cfg.image = None
        with pytest.raises(ValueError, match="image=PATH"):
            nbdplugin.config_complete()
    finally:
        cfg.image, cfg.readonly = saved


def test_errno_mapping() -> None:
    assert nbdplugin._errno_for(ReadOnlyError("ro")) == errno.EROFS
    assert nbdplugin._errno_for(ValueError("range")) == errno.EINVAL
    assert nbdplugin._errno_for(OSError(errno.ENOSPC, "full")) == errno.ENOSPC
    wrapped = addcow_ref.AddCowError("write failed")
    wrapped.__cause__ = OSError(errno.EDQUOT, "quota")
    assert nbdplugin._errno_for(wrapped) == errno.EDQUOT
    assert nbdplugin._errno_for(addcow_ref.AddCowError("other")) == errno.EIO


def test_server_command_line(tmp_path: Path) -> None:
    image = tmp_path / "d.add-cow"
    cmd = serve.server_command(image, pidfile=tmp_path / "p", socket_path=tmp_path / "s",
                               readonly=True)
    assert cmd.uri == f"nbd+unix:///?socket={tmp_path / 's'}"
    assert cmd.argv[:2] == ["nbdkit", "--foreground"]
    assert "--exit-with-parent" in cmd.argv
    assert "--readonly" in cmd.argv
    assert cmd.argv[-3:] == [str(serve.plugin_path()), f"image={image.resolve()}",
                             "readonly=true"]
    tcp = serve.server_command(image, pidfile=tmp_path / "p", port=10811)
    assert tcp.uri == "nbd://localhost:10811"
    i = tcp.argv.index("--ipaddr")
    assert tcp.argv[i + 1] == "localhost"
    assert "--readonly" not in tcp.argv
    with pytest.raises(ValueError, match="exactly one"):
        serve.server_command(image, pidfile=tmp_path / "p")
