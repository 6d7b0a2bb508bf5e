"""Running ``qemu-img`` and ``qemu-io`` for the verbs that read or write other image formats.

add-cow never parses qcow2, vmdk or any other format itself: the real tools do, exactly as a
user would run them, and their answers are read back in their JSON forms (``qemu-img info`` and
``qemu-img map --output=json``). A tool that is missing or fails becomes one
:class:`~addcow_ref.format.errors.AddCowError` line naming the file and the tool's own first
line of complaint, never a traceback.

Why subprocesses and not libnbd: Debian's libnbd bindings (``python3-libnbd``) are importable
by the system interpreter only, not by a virtual environment, so a library call would work in
one installation and fail in another; ``qemu-img`` and ``qemu-io`` behave the same wherever
``qemu-utils`` is installed, and they read NBD URIs (``nbd://``, ``nbd+unix://``) as well.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from addcow_ref.format.errors import AddCowError

__all__ = [
    "QemuExtent",
    "QemuInfo",
    "file_name",
    "format_args",
    "is_uri",
    "qemu_info",
    "qemu_map",
    "run_tool",
]

#: The Debian package each tool comes from, for the error when it is missing.
PACKAGES = {"qemu-img": "qemu-utils", "qemu-io": "qemu-utils"}


def is_uri(name: str) -> bool:
    """Whether ``name`` is a URI qemu opens (``nbd://host/export``, ``nbd+unix:///?socket=``)
    rather than a local file name."""
    scheme, sep, _rest = name.partition("://")
    return bool(sep) and scheme.replace("+", "").isalnum()


def format_args(flag: str, fmt: str | None) -> list[str]:
    """``[flag, fmt]`` when a format is given, else nothing (qemu-img then probes, as it
    does for its own users)."""
    return [flag, fmt] if fmt else []


def file_name(path: str) -> str:
    """``path`` as a qemu tool must be given it to open it as a plain file.

    qemu reads ``PROTO:REST`` as a protocol when the colon comes before any slash (``nbd:``,
    ``ssh:``, ``json:`` …), so a file named ``a:b`` — a backing name read from an image, which
    is hostile input, or an output file of ours — would reach a protocol driver. A leading
    ``./`` puts a slash first and keeps it a file; any other name is returned unchanged."""
    head = path.split("/", 1)[0]
    return f"./{path}" if ":" in head else path


def run_tool(argv: Sequence[str], *, file: str, stdin: bytes | None = None) -> str:
    """Run ``argv`` (a qemu tool) and return its stdout; a failure is one error about
    ``file`` with the tool's first line of stderr."""
    tool = argv[0]
    if shutil.which(tool) is None:
        raise AddCowError(f"{tool} is needed for this and was not found "
                          f"(Debian: apt-get install {PACKAGES.get(tool, tool)})", file=file)
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, check=False)
    err = proc.stderr.decode(errors="replace").strip()
    if proc.returncode != 0:
        first = err.splitlines()[0] if err else f"exit status {proc.returncode}"
        raise AddCowError(f"{tool} {argv[1]} failed: {first}", file=file)
    return proc.stdout.decode(errors="replace")


@dataclasses.dataclass(frozen=True)
class QemuInfo:
    """What ``qemu-img info`` says about an image: its format, size and backing file."""

    filename: str
    format: str
    virtual_size: int
    backing_filename: str | None


@dataclasses.dataclass(frozen=True)
class QemuExtent:
    """One entry of ``qemu-img map --output=json`` (``depth`` 0: this image holds it)."""

    start: int
    length: int
    depth: int
    present: bool
    zero: bool
    data: bool


def _json(text: str, file: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise AddCowError(f"cannot read the JSON of {what}: {e}", file=file) from None


def qemu_info(path: str, fmt: str | None) -> QemuInfo:
    """``qemu-img info --output=json`` of ``path`` (format ``fmt``, or qemu-img's probe)."""
    doc = _json(run_tool(["qemu-img", "info", "--output=json", *format_args("-f", fmt), path],
                         file=path), path, "qemu-img info")
    return QemuInfo(filename=str(doc.get("filename", path)), format=str(doc["format"]),
                    virtual_size=int(doc["virtual-size"]),
                    backing_filename=doc.get("backing-filename"))


def qemu_map(path: str, fmt: str | None) -> list[QemuExtent]:
    """``qemu-img map --output=json`` of ``path``: every extent and the layer holding it."""
    doc = _json(run_tool(["qemu-img", "map", "--output=json", *format_args("-f", fmt), path],
                         file=path), path, "qemu-img map")
    return [QemuExtent(start=int(e["start"]), length=int(e["length"]), depth=int(e["depth"]),
                       present=bool(e.get("present", True)), zero=bool(e["zero"]),
                       data=bool(e["data"])) for e in doc]
