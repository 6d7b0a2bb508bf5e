"""Coverage-guided fuzzing of ``addcow-check`` with atheris: ``python -m addcow_conformance.fuzz
-max_total_time=60`` (libFuzzer flags pass through; tox env ``fuzz``).

The property is the checker's contract on any byte string: a report comes back, every check
ran or said why it did not apply, and no check raised (an internal error is a crash here).
atheris is imported lazily so the package imports without it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["check_bytes", "main", "seed_corpus", "test_one_input"]

#: Files every fuzz input sees beside it, so names in mutated headers can resolve to real files.
_NEIGHBOURS = {"image.raw": 1 << 20, "backing.raw": 1 << 20}


class _Workdir:
    """One scratch directory reused by every input (creating one per input would dominate)."""

    path: Path | None = None

    @classmethod
    def get(cls) -> Path:
        if cls.path is None:
            cls.path = Path(tempfile.mkdtemp(prefix="addcow-fuzz-"))
            for name, size in _NEIGHBOURS.items():
                with open(cls.path / name, "wb") as f:
                    f.truncate(size)
        return cls.path


def check_bytes(data: bytes, name: str = "fuzz.add-cow") -> object:
    """Check ``data`` as an add-cow file next to a raw image and backing file; return the
    report (typed ``object`` so this module needs no import of the checker at load time)."""
    from addcow_conformance.checker import check_file

    path = _Workdir.get() / name
    path.write_bytes(data)
    return check_file(path)


def test_one_input(data: bytes) -> None:
    from addcow_conformance.checker import Report

    report = check_bytes(data)
    assert isinstance(report, Report)
    if report.internal_errors or report.error is not None:
        raise AssertionError(f"checker failed on a {len(data)}-byte input: "
                             f"{report.error or report.internal_errors}")
    if report.exit_code not in (0, 2, 3):
        raise AssertionError(f"unexpected exit status {report.exit_code}")


def seed_corpus(directory: Path) -> None:
    """Write valid v2 (with and without backing file, all allocated) and v1 files as seeds."""
    from addcow_ref.format.constants import MAGIC
    from addcow_ref.format.header import HeaderV1, HeaderV2

    directory.mkdir(parents=True, exist_ok=True)
    image, backing = b"image.raw", b"backing.raw"
    base = {
        "magic": MAGIC, "version": 2, "header_length": 128, "incompatible_features": 0,
        "compatible_features": 0, "autoclear_features": 0, "virtual_size": 1 << 20,
        "bitmap_offset": 4096, "cluster_bits": 16, "reserved1": bytes(4),
        "image_name_offset": 128, "image_name_length": len(image),
        "backing_name_offset": 128 + len(image), "backing_name_length": len(backing),
        "image_format": b"raw".ljust(16, b"\0"), "backing_format": b"raw".ljust(16, b"\0"),
        "reserved2": bytes(16),
    }
    names = image + backing
    seeds: dict[str, bytes] = {}
    h = HeaderV2(base)
    seeds["v2-backing"] = (h.build() + names).ljust(4096, b"\0") + b"\x55\x05"
    h = h.replace(backing_name_offset=0, backing_name_length=0, backing_format=bytes(16),
                  compatible_features=1, cluster_bits=9)
    seeds["v2-all-allocated"] = (h.build() + image).ljust(4096, b"\0") + b"\xff" * 256
    v1 = HeaderV1({"magic": MAGIC, "version": 1,
                   "backing_file": backing.ljust(1024, b"\0"),
                   "image_file": image.ljust(1024, b"\0"), "reserved": bytes(500)})
    seeds["v1"] = v1.build() + b"\x0f\x00"
    for name, data in seeds.items():
        (directory / name).write_bytes(data)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        import atheris
    except ImportError:
        print("addcow_conformance.fuzz needs atheris: pip install 'addcow[fuzz]'", file=sys.stderr)
        return 1
    args = list(sys.argv if argv is None else [sys.argv[0], *argv])
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = Path(tempfile.mkdtemp(prefix="addcow-fuzz-corpus-"))
        seed_corpus(corpus)
        args.append(str(corpus))
    # Coverage of our own code only: instrumenting construct and click as well would make
    # every input several times slower for edges that say nothing about the checker.
    with atheris.instrument_imports(include=["addcow_ref", "conformance"]):
        from addcow_conformance.checker.engine import registry

        registry()  # imports every check module
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
