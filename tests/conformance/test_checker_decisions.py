"""The checker on the add-cow 2.0 decisions: file types, identity, padding, lengths, names.

Each test builds a pristine image set (``images.py``), changes one thing and asserts the exact
rules reported, so a check that cannot fail, or one that fires on the wrong rule, shows here.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from addcow_conformance.checker import check_file
from addcow_conformance.checker.derive import escapes_directory

from .images import VIRTUAL_SIZE, format_field, pristine_v1, pristine_v2, set_field


def _rules(path: Path) -> list[str]:
    report = check_file(path)
    assert report.error is None, report.error
    assert not report.internal_errors, report.internal_errors
    return report.rule_ids


def _check_within(path: Path, seconds: float = 20.0) -> list[str]:
    """The rules found, failing (not hanging) when the checker blocks on a FIFO."""
    out: list[list[str]] = []
    worker = threading.Thread(target=lambda: out.append(_rules(path)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert out, "the checker blocked: it opened a FIFO before learning its type"
    return out[0]


def test_a_fifo_as_image_file_is_a_file_type_error_and_never_opened(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path)
    assert s.image is not None
    s.image.unlink()
    os.mkfifo(s.image)
    assert _check_within(s.addcow) == ["IMG-FILE-TYPE"]


def test_a_fifo_as_raw_backing_file_is_a_file_type_error(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path)
    assert s.backing is not None
    s.backing.unlink()
    os.mkfifo(s.backing)
    assert _check_within(s.addcow) == ["IMG-FILE-TYPE"]


def test_a_character_device_as_image_file_is_a_file_type_error(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path)
    assert s.image is not None
    s.image.unlink()
    s.image.symlink_to("/dev/null")  # symlinks are followed: the type is the target's
    report = check_file(s.addcow)
    assert report.rule_ids == ["IMG-FILE-TYPE"]
    assert "character device" in report.findings[0].message


@pytest.mark.parametrize("how", ["same-name", "hard-link", "symlink"])
def test_the_image_file_may_not_be_the_add_cow_file(tmp_path: Path, how: str) -> None:
    name = b"image.add-cow" if how == "same-name" else b"alias"
    s = pristine_v2(tmp_path, stem="x", image_name=name, backing=False)
    addcow = tmp_path / "image.add-cow"
    os.replace(s.addcow, addcow)  # for same-name, this replaces the sparse image file
    s.addcow = addcow
    if how == "hard-link":
        (tmp_path / "alias").unlink()
        os.link(s.addcow, tmp_path / "alias")
    elif how == "symlink":
        (tmp_path / "alias").unlink()
        (tmp_path / "alias").symlink_to(s.addcow.name)
    report = check_file(s.addcow)
    assert report.rule_ids == ["IMG-IDENTITY"]
    assert "the add-cow file itself" in report.findings[0].message


def test_the_image_file_may_not_be_the_backing_file_under_another_name(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path)
    assert s.image is not None
    assert s.backing is not None
    s.image.unlink()
    os.link(s.backing, s.image)
    assert _rules(s.addcow) == ["IMG-IDENTITY"]


def test_the_image_file_may_not_be_the_image_file_of_a_backing_add_cow_file(
        tmp_path: Path) -> None:
    pristine_v2(tmp_path, stem="base", image_name=b"shared.raw", backing=False)
    top = pristine_v2(tmp_path, stem="top", image_name=b"shared.raw", backing_format="add-cow",
                      backing_name=b"base.add-cow")
    assert _rules(top.addcow) == ["IMG-IDENTITY"]
    # The lower image alone is fine: the conflict is only in the chain.
    assert _rules(tmp_path / "base.add-cow") == []


def test_a_backing_file_with_a_wrong_magic_is_not_quoted(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path, backing_format="add-cow", backing_name=b"secret")
    (tmp_path / "secret").write_bytes(b"TOPSECRETPASSWORD" * 300)
    report = check_file(s.addcow)
    assert report.rule_ids == ["BACK-FORMAT"]
    finding = report.findings[0]
    assert "does not start with the add-cow magic" in finding.message
    for text in (finding.message, finding.actual or "", finding.expected or ""):
        assert "TOPSECRET" not in text
        assert "54 4f 50" not in text.lower()


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens files whatever their mode")
def test_an_unreadable_image_file_is_an_error(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path)
    assert s.image is not None
    s.image.chmod(0)
    report = check_file(s.addcow)
    assert report.rule_ids == ["IMG-EXISTS"]
    assert "cannot be opened" in report.findings[0].message


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_set_padding_bits_are_a_warning(tmp_path: Path, version: str) -> None:
    bitmap = bytes([0x55, 0x01 | 0x80])
    s = pristine_v1(tmp_path, bitmap=bitmap) if version == "v1" else pristine_v2(
        tmp_path, bitmap=bitmap)
    report = check_file(s.addcow)
    assert report.rule_ids == ["BMP-PADDING"]
    assert report.findings[0].severity == "warning"
    assert report.exit_code == 3


def test_an_image_file_as_long_as_the_disk_gives_no_length_warning(tmp_path: Path) -> None:
    s = pristine_v2(tmp_path)
    assert s.image is not None
    assert s.image.stat().st_size == VIRTUAL_SIZE
    assert _rules(s.addcow) == []
    os.truncate(s.image, VIRTUAL_SIZE + 1)
    assert _rules(s.addcow) == ["IMG-LENGTH"]


@pytest.mark.parametrize(("field", "rule"), [("image_format", "FMT-IMAGE"),
                                             ("backing_format", "FMT-BACKING-KNOWN")])
def test_format_names_are_case_sensitive(tmp_path: Path, field: str, rule: str) -> None:
    s = pristine_v2(tmp_path)
    set_field(s.addcow, field, format_field("RAW"))
    assert _rules(s.addcow) == [rule]


@pytest.mark.parametrize("byte", [0x01, 0x20, 0x7F, 0x80])
def test_a_format_name_must_be_printable_ascii(tmp_path: Path, byte: int) -> None:
    s = pristine_v2(tmp_path)
    set_field(s.addcow, "image_format", b"ra" + bytes([byte]) + bytes(13))
    assert "FMT-PADDING" in _rules(s.addcow)


def test_an_absolute_name_is_a_confinement_warning(tmp_path: Path) -> None:
    image = tmp_path / "elsewhere.raw"
    s = pristine_v2(tmp_path, image_name=os.fsencode(image), backing=False)
    assert image.exists()
    report = check_file(s.addcow)
    assert report.rule_ids == ["NAME-CONFINED"]
    assert report.findings[0].severity == "warning"


@pytest.mark.parametrize(("name", "escapes"), [
    (b"a.raw", False), (b"sub/a.raw", False), (b"sub/../a.raw", False), (b"./a.raw", False),
    (b"sub//a.raw", False), (b"../a.raw", True), (b"sub/../../a.raw", True), (b"/a.raw", True),
    (b"./../a.raw", True), (b"a/b/../../c", False), (b"..", True),
])
def test_escapes_directory(name: bytes, escapes: bool) -> None:
    assert escapes_directory(name) is escapes
