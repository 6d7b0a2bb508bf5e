"""The ``addcow`` command-line tool: qemu-img's verbs and conventions over the reference library.

Users of add-cow already know ``qemu-img``; the subcommands, their options (``-b``/``-F``/``-o``
of ``create``, ``--output=json`` of ``info`` and ``map``, size suffixes) and the JSON shape of
``map`` follow it, so scripts written for one read the other.

Exit status: 0 success, 1 an error (a broken image, a missing file, a refused request; one line
on stderr naming the file, the byte offset or field and the spec rule ID when one applies),
64 a usage error (sysexits' EX_USAGE, used by every tool of the project; click's default 2 would
collide with the checker's "errors found"). User errors never print a traceback.

``cli`` is the click group (sphinx-click renders the reference from it); ``main(argv)`` is the
console script and returns the exit status instead of exiting, so tests and the demo can call it.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, BinaryIO

import click

from addcow_ref import __version__
from addcow_ref.cli.humanize import format_size, parse_size
from addcow_ref.cli.serve import serve
from addcow_ref.format.constants import (
    BACKING_FORMATS,
    FORMAT_ADD_COW,
    MAX_CLUSTER_BITS,
    MIN_CLUSTER_BITS,
    AutoclearFeature,
    CompatibleFeature,
    IncompatibleFeature,
)
from addcow_ref.format.errors import AddCowError
from addcow_ref.format.header import read_version

__all__ = ["EX_FAILURE", "EX_INTERRUPTED", "EX_OK", "EX_USAGE", "UserError", "cli", "main"]

EX_OK = 0
EX_FAILURE = 1
#: sysexits.h EX_USAGE: the command was used incorrectly.
EX_USAGE = 64
#: 128 + SIGINT, what shells report for a command stopped by Ctrl-C.
EX_INTERRUPTED = 130

#: Request size for streaming reads and writes: large enough to be fast, small enough that a
#: multi-GiB ``read`` or ``write`` never holds more than this in memory.
CHUNK_SIZE = 1 << 20

PROG = "addcow"


# --------------------------------------------------------------------------- errors


class UserError(click.ClickException):
    """A refused request, reported as one line and exit status 1 (not a usage error)."""

    exit_code = EX_FAILURE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"{PROG}: {self.format_message()}", err=True)


def _fail(file: str, message: str, *, offset: int | None = None) -> UserError:
    where = file if offset is None else f"{file}: byte 0x{offset:x}"
    return UserError(f"{where}: {message}")


def _os_error_line(e: OSError) -> str:
    text = e.strerror or str(e)
    if e.filename is not None:
        text = f"{os.fsdecode(e.filename)}: {text}"
    if e.filename2 is not None:
        text += f" (-> {os.fsdecode(e.filename2)})"
    return text


def _report(exc: BaseException) -> int:
    """Print ``exc`` as the one line a user sees and return the exit status it maps to."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        exc.show()  # a bare ``addcow`` or ``addcow GROUP``: the help is the most useful answer
        return EX_USAGE
    if isinstance(exc, click.UsageError):
        path = exc.ctx.command_path if exc.ctx is not None else PROG
        click.echo(f"{path}: {exc.format_message()} (see '{path} --help')", err=True)
        return EX_USAGE
    if isinstance(exc, click.ClickException):
        exc.show()
        return exc.exit_code
    if isinstance(exc, click.exceptions.Abort):
        click.echo(f"{PROG}: interrupted", err=True)
        return EX_INTERRUPTED
    if isinstance(exc, AddCowError):
        click.echo(f"{PROG}: {exc}", err=True)
        return EX_FAILURE
    if isinstance(exc, OSError):
        click.echo(f"{PROG}: {_os_error_line(exc)}", err=True)
        return EX_FAILURE
    raise exc


@contextlib.contextmanager
def _about(path: str) -> Iterator[None]:
    """Name ``path`` in errors raised without a file, so every message says which file."""
    try:
        yield
    except AddCowError as e:
        if e.file is None or e.file.startswith("<"):  # None or a placeholder like "<image>"
            e.file = path
        raise
    except OSError as e:
        if e.filename is None and e.errno != errno.EPIPE:
            e.filename = path
        raise


class AddCowGroup(click.Group):
    """A click group whose errors follow the project's conventions (see the module docstring)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> int:
        try:
            rv = super().main(
                args,
                prog_name or PROG,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except (click.ClickException, click.exceptions.Abort, AddCowError, OSError) as e:
            code = _report(e)
        else:
            code = rv if isinstance(rv, int) else EX_OK
        if standalone_mode:
            sys.exit(code)
        return code


# --------------------------------------------------------------------------- parameter types


if TYPE_CHECKING:
    _IntParamType = click.ParamType[int]  # generic since click 8.2
else:
    _IntParamType = click.ParamType


class SizeType(_IntParamType):
    """A byte count as qemu-img reads it: ``65536``, ``64K``, ``1.5G``, ``0x10000``."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


class ByteType(_IntParamType):
    """One byte value: ``0xab``, ``171`` or ``0o253``."""

    name = "byte"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            n = value
        else:
            try:
                n = int(str(value), 0)
            except ValueError:
                self.fail(f"{value!r} is not a byte value (e.g. 0xab or 171)", param, ctx)
        if not 0 <= n <= 0xFF:
            self.fail(f"{value!r} is not between 0 and 255", param, ctx)
        return n


SIZE = SizeType()
BYTE = ByteType()


def _open(path: str, mode: str = "r") -> Any:
    from addcow_ref import open_image

    with _about(path):
        return open_image(path, mode)


# --------------------------------------------------------------------------- the group


@click.group(cls=AddCowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name=PROG)
def cli() -> None:
    """Create, inspect and modify add-cow disk images (a raw disk plus a copy-on-write bitmap).

    Sizes and offsets take qemu-img's suffixes (K, M, G, T, P, E; powers of 1024) or 0x hex.

    \b
    Examples:
      addcow demo                                   # a narrated tour on example data
      addcow create -b base.raw -F raw disk.add-cow # overlay of base.raw's size
      addcow write --offset 1M --pattern 0xab --length 4K disk.add-cow
      addcow map --output=json disk.add-cow
      addcow hydrate -p disk.add-cow                # disk.raw then stands alone

    \b
    Exit status: 0 success, 1 error (one line on stderr, with the spec rule ID
    when a rule is broken), 64 usage error, 130 interrupted.
    """


# --------------------------------------------------------------------------- create

_CREATE_OPTIONS = {
    "cluster_bits": f"log2 of the cluster size, {MIN_CLUSTER_BITS}..{MAX_CLUSTER_BITS} "
    "(default 16)",
    "cluster_size": "the cluster size, a power of two (alternative to cluster_bits)",
    "bitmap_offset": "where the bitmap starts, a multiple of 4096 (larger leaves room for names)",
    "image_file": "same as --image-file",
    "backing_file": "same as -b",
    "backing_fmt": "same as -F",
}


def _parse_create_options(specs: Sequence[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    for spec in specs:
        for item in spec.split(","):
            if not item:
                continue
            key, sep, value = item.partition("=")
            key = key.strip()
            if key == "help" and not sep:
                opts["help"] = ""
                continue
            if key not in _CREATE_OPTIONS:
                raise click.BadParameter(
                    f"unknown option {key!r} (known: {', '.join(_CREATE_OPTIONS)}; -o help)",
                    param_hint="'-o'",
                )
            if not sep:
                raise click.BadParameter(f"option {key!r} needs a value", param_hint="'-o'")
            opts[key] = value
    return opts


def _cluster_bits_from(opts: dict[str, str]) -> int | None:
    bits: int | None = None
    if "cluster_bits" in opts:
        try:
            bits = int(opts["cluster_bits"], 0)
        except ValueError:
            raise click.BadParameter(
                f"cluster_bits={opts['cluster_bits']!r} is not an integer", param_hint="'-o'"
            ) from None
    if "cluster_size" in opts:
        size = SIZE.convert(opts["cluster_size"], None, None)
        if size <= 0 or size & (size - 1):
            raise click.BadParameter(
                f"cluster_size={opts['cluster_size']!r} is not a power of two", param_hint="'-o'"
            )
        if bits is not None and bits != size.bit_length() - 1:
            raise click.BadParameter(
                "cluster_bits and cluster_size disagree", param_hint="'-o'"
            )
        bits = size.bit_length() - 1
    return bits


def default_image_name(file: str) -> str:
    """The raw image file's name when ``--image-file`` is not given: ``disk.add-cow`` ->
    ``disk.raw`` next to it (a name relative to the add-cow file's directory, as stored)."""
    base = os.path.basename(file)
    for ext in (".add-cow", ".addcow"):
        if base.endswith(ext) and len(base) > len(ext):
            return base[: -len(ext)] + ".raw"
    return base + ".raw"


@cli.command()
@click.option("-f", "fmt", type=click.Choice([FORMAT_ADD_COW]), default=FORMAT_ADD_COW,
              help="Image format; accepted for qemu-img habits, add-cow is the only one.")
@click.option("-b", "--backing", "backing_file", metavar="BACKING",
              help="Backing file name, stored as given (relative names resolve against "
                   "FILE's directory).")
@click.option("-F", "--backing-format", "backing_format",
              type=click.Choice(sorted(BACKING_FORMATS)),
              help="Format of the backing file; required with -b (add-cow never probes).")
@click.option("-o", "options", multiple=True, metavar="OPT=VAL[,...]",
              help="Format options, comma-separated: cluster_bits=N, cluster_size=SIZE, "
                   "bitmap_offset=SIZE, image_file=NAME, backing_file=NAME, backing_fmt=FMT "
                   "('-o help' explains them).")
@click.option("--image-file", "image_file", metavar="NAME",
              help="Name of the raw image file, stored as given (default: FILE with .raw "
                   "instead of .add-cow); created if missing.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("size", type=SIZE, required=False)
def create(
    fmt: str,
    backing_file: str | None,
    backing_format: str | None,
    options: tuple[str, ...],
    image_file: str | None,
    file: str,
    size: int | None,
) -> None:
    """Create the add-cow image FILE of SIZE bytes (default: the backing file's size)."""
    opts = _parse_create_options(options)
    if "help" in opts:
        for key, text in _CREATE_OPTIONS.items():
            click.echo(f"{key:<14} {text}")
        return
    backing_file = backing_file or opts.get("backing_file")
    backing_format = backing_format or opts.get("backing_fmt")
    image_file = image_file or opts.get("image_file") or default_image_name(file)
    if backing_format is not None and backing_format not in BACKING_FORMATS:
        raise click.BadParameter(
            f"backing format {backing_format!r} is not one of {', '.join(sorted(BACKING_FORMATS))}",
            param_hint="'-F'",
        )
    if backing_file and not backing_format:
        raise click.UsageError(
            "a backing file needs its format: add -F raw or -F add-cow "
            "(add-cow never guesses a backing file's format)"
        )
    if backing_format and not backing_file:
        raise click.UsageError("-F given without a backing file (-b)")
    if size is None and not backing_file:
        raise click.UsageError("SIZE is required when there is no backing file")
    cluster_bits = _cluster_bits_from(opts)
    bitmap_offset = SIZE.convert(opts["bitmap_offset"], None, None) if "bitmap_offset" in opts \
        else None

    from addcow_ref.ops.create import create as create_image

    kwargs: dict[str, Any] = {
        "size": size,
        "image_file": image_file,
        "backing_file": backing_file,
        "backing_format": backing_format,
        "bitmap_offset": bitmap_offset,
    }
    if cluster_bits is not None:
        kwargs["cluster_bits"] = cluster_bits
    with _about(file):
        create_image(file, **kwargs)
    with _open(file) as img, _about(file):
        info = img.info()
    parts = [f"Formatting '{file}', fmt={FORMAT_ADD_COW}", f"size={info['virtual_size']}"]
    if info.get("backing_file"):
        parts += [f"backing_file={info['backing_file']}", f"backing_fmt={info['backing_format']}"]
    parts += [f"image_file={info['image_file']}", f"cluster_bits={info['cluster_bits']}"]
    click.echo(" ".join(parts))


# --------------------------------------------------------------------------- info

_FEATURE_CLASSES: dict[str, type[Any]] = {
    "incompatible_features": IncompatibleFeature,
    "compatible_features": CompatibleFeature,
    "autoclear_features": AutoclearFeature,
}


def feature_names(value: Any, flags: type[Any]) -> list[str]:
    """Names of the bits set in a feature word (``bit N`` for bits this version does not know)."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    word = int(value or 0)
    names = []
    for bit in range(64):
        if word >> bit & 1:
            try:
                names.append(str(flags(1 << bit).name).lower())
            except ValueError:
                names.append(f"bit {bit}")
    return names


def render_info(path: str, info: dict[str, Any]) -> str:
    """The human form of ``info``: one ``key: value`` line each, like ``qemu-img info``."""
    lines = [
        f"image: {path}",
        f"file format: {FORMAT_ADD_COW}",
        f"version: {info['version']}",
        f"virtual size: {format_size(int(info['virtual_size']))} ({info['virtual_size']} bytes)",
        f"cluster_size: {info['cluster_size']} (cluster_bits {info['cluster_bits']})",
    ]
    allocated, count = info.get("allocated_clusters"), info.get("cluster_count")
    if allocated is not None and count is not None:
        share = f" ({100 * allocated / count:.1f}%)" if count else ""
        lines.append(f"allocated clusters: {allocated} of {count}{share}")
    image_format = info.get("image_format") or "raw"
    lines.append(f"image file: {info['image_file']} ({image_format})")
    if info.get("backing_file"):
        lines.append(f"backing file: {info['backing_file']}")
        lines.append(f"backing file format: {info.get('backing_format')}")
    else:
        lines.append("backing file: none")
    if info.get("header_length") is not None:
        lines.append(f"header length: {info['header_length']}")
    if info.get("bitmap_offset") is not None:
        lines.append(f"bitmap offset: {info['bitmap_offset']} (0x{int(info['bitmap_offset']):x})")
    for key, flags in _FEATURE_CLASSES.items():
        if key in info and info["version"] != 1:  # v1 has no feature words
            names = feature_names(info[key], flags)
            lines.append(f"{key.replace('_', ' ')}: {', '.join(names) if names else 'none'}")
    return "\n".join(lines)


_OUTPUT = click.option(
    "--output", type=click.Choice(["human", "json"]), default="human", show_default=True,
    help="Output format; json is stable and meant for scripts.",
)


@cli.command()
@_OUTPUT
@click.argument("file", type=click.Path(dir_okay=False))
def info(output: str, file: str) -> None:
    """Show the header and allocation summary of FILE."""
    with _open(file) as img, _about(file):
        data = dict(img.info())
    if output == "json":
        click.echo(json.dumps({"filename": file, "format": FORMAT_ADD_COW, **data}, indent=4))
    else:
        click.echo(render_info(file, data))


# --------------------------------------------------------------------------- map


def map_entries(extents: Iterable[Any]) -> list[dict[str, Any]]:
    """``qemu-img map --output=json`` entries for the image's extents.

    ``depth`` is 0 for this image, 1 for the backing file and so on; ``present``/``data`` say
    some layer holds the bytes, ``zero`` that they read as zeros because none does (no backing
    file, or past the end of the chain); ``offset`` is where the bytes lie in that layer's raw
    file (add-cow and raw map guest offsets to the same file offsets). ``allocated`` is
    add-cow's own: the cluster's bit is set in this image's bitmap.
    """
    return list(iter_map_entries(extents))


def iter_map_entries(extents: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """:func:`map_entries`, one entry at a time."""
    for ext in extents:
        start, length = int(ext.start), int(ext.length)
        present = bool(ext.allocated) or bool(getattr(ext, "data", True))
        entry: dict[str, Any] = {
            "start": start,
            "length": length,
            "depth": int(ext.depth),
            "present": present,
            "zero": not present,
            "data": present,
        }
        if present:
            entry["offset"] = start
        entry["allocated"] = bool(ext.allocated)
        yield entry


def render_map(entries: Iterable[dict[str, Any]], names: Sequence[str]) -> str:
    """The human map: every extent with the file its bytes come from."""
    return "\n".join(iter_render_map(entries, names))


def iter_render_map(entries: Iterable[dict[str, Any]], names: Sequence[str]) -> Iterator[str]:
    """:func:`render_map`, one line at a time."""
    yield f"{'Offset':<18}{'Length':<18}{'Depth':<7}Where"
    for e in entries:
        depth = int(e["depth"])
        if not e["present"]:
            where = "zeros (no layer holds data)"
        elif depth < len(names):
            where = ("image file " if depth == 0 else "backing file ") + names[depth]
        else:
            where = f"backing file at depth {depth}"
        yield f"{e['start']:<#18x}{e['length']:<#18x}{depth:<7}{where}"


def _chain_names(info: dict[str, Any]) -> list[str]:
    names = [str(info["image_file"])]
    if info.get("backing_file"):
        names.append(str(info["backing_file"]))
    return names


@cli.command(name="map")
@_OUTPUT
@click.argument("file", type=click.Path(dir_okay=False))
def map_(output: str, file: str) -> None:
    """Show where each byte range of FILE's guest disk comes from."""
    with _open(file) as img, _about(file):
        names = _chain_names(dict(img.info()))
        entries = iter_map_entries(img.iter_map())
        if output == "json":
            # One entry per line, streamed in batches: the same text as json.dumps of the whole
            # list with "},\n{" between entries, without holding the list (a batch goes through
            # the C encoder in one call; one call per entry was the slowest part of the map).
            out = sys.stdout
            out.write("[")
            sep = ""
            while batch := list(itertools.islice(entries, 4096)):
                out.write(sep + json.dumps(batch)[1:-1].replace("}, {", "},\n{"))
                sep = ",\n"
            out.write("]\n")
        else:
            for line in iter_render_map(entries, names):
                click.echo(line)


# --------------------------------------------------------------------------- read / write


def _check_range(file: str, offset: int, length: int, size: int, verb: str) -> None:
    if offset > size or length > size - offset:
        raise _fail(
            file,
            f"cannot {verb} {length} bytes: the disk ends at byte {size} (0x{size:x})",
            offset=offset,
        )


@cli.command()
@click.option("--offset", type=SIZE, default=0, show_default=True, help="First guest byte.")
@click.option("--length", type=SIZE, default=None,
              help="Bytes to read (default: up to the end of the disk).")
@click.option("-o", "--output", "outfile", type=click.Path(dir_okay=False, allow_dash=True),
              default="-", help="Write the bytes to this file instead of stdout.")
@click.argument("file", type=click.Path(dir_okay=False))
def read(offset: int, length: int | None, outfile: str, file: str) -> None:
    """Copy guest bytes of FILE to stdout or a file."""
    with _open(file) as img, _about(file):
        size = int(img.virtual_size)
        if length is None:
            length = max(size - offset, 0)
        _check_range(file, offset, length, size, "read")
        out: BinaryIO
        with contextlib.ExitStack() as stack:
            if outfile == "-":
                out = sys.stdout.buffer
            else:
                with _about(outfile):
                    out = stack.enter_context(open(outfile, "wb"))
            pos, end = offset, offset + length
            while pos < end:
                n = min(CHUNK_SIZE, end - pos)
                data = img.read(pos, n)
                with _about("<stdout>" if outfile == "-" else outfile):
                    out.write(data)
                pos += n
            with _about("<stdout>" if outfile == "-" else outfile):
                out.flush()


def _chunks_of_pattern(byte: int, length: int) -> Iterator[bytes]:
    block = bytes([byte]) * min(CHUNK_SIZE, length)
    left = length
    while left > 0:
        n = min(len(block), left)
        yield block if n == len(block) else block[:n]
        left -= n


def _chunks_of_stream(stream: BinaryIO, limit: int | None) -> Iterator[bytes]:
    left = limit
    while left is None or left > 0:
        n = CHUNK_SIZE if left is None else min(CHUNK_SIZE, left)
        data = stream.read(n)
        if not data:
            return
        if left is not None:
            left -= len(data)
        yield data


@cli.command()
@click.option("--offset", type=SIZE, default=0, show_default=True, help="First guest byte.")
@click.option("--pattern", type=BYTE, default=None,
              help="Fill with this byte value (needs --length).")
@click.option("--length", type=SIZE, default=None,
              help="Bytes to write (with --pattern; with --from or -, at most this many).")
@click.option("--from", "source", type=click.Path(dir_okay=False, allow_dash=True),
              default=None, help="Write this file's bytes ('-' for stdin).")
@click.argument("operands", nargs=-1, required=True, metavar="[-] FILE")
def write(
    offset: int,
    pattern: int | None,
    length: int | None,
    source: str | None,
    operands: tuple[str, ...],
) -> None:
    """Write a fill pattern, a file's bytes or stdin ('-') to FILE's guest disk at --offset."""
    if len(operands) == 2 and operands[0] == "-":
        if source is not None:
            raise click.UsageError("give either --from or '-', not both")
        source = "-"
    elif len(operands) != 1:
        raise click.UsageError("expected FILE, or '-' FILE to write stdin")
    file = operands[-1]
    if (pattern is None) == (source is None):
        raise click.UsageError("give exactly one source: --pattern with --length, --from, or '-'")
    if pattern is not None and length is None:
        raise click.UsageError("--pattern needs --length")

    with _open(file, "r+") as img, _about(file), contextlib.ExitStack() as stack:
        size = int(img.virtual_size)
        chunks: Iterator[bytes]
        if pattern is not None:
            assert length is not None
            _check_range(file, offset, length, size, "write")
            chunks = _chunks_of_pattern(pattern, length)
        elif source == "-":
            chunks = _chunks_of_stream(sys.stdin.buffer, length)
        else:
            assert source is not None
            with _about(source):
                stream = stack.enter_context(open(source, "rb"))
                known = os.fstat(stream.fileno()).st_size
            if length is None and os.path.isfile(source):
                _check_range(file, offset, known, size, "write")
            chunks = _chunks_of_stream(stream, length)
        pos = offset
        for chunk in chunks:
            _check_range(file, pos, len(chunk), size, "write")
            img.write(pos, chunk)
            pos += len(chunk)
        img.flush()
    click.echo(f"wrote {pos - offset} bytes at offset {offset} (0x{offset:x})")


# --------------------------------------------------------------------------- resize


def parse_resize(text: str, current: int) -> int:
    """The new size for ``resize``: absolute, ``+SIZE`` (grow by) or ``-SIZE`` (shrink by)."""
    sign = text[:1]
    if sign in "+-" and sign:
        delta = parse_size(text[1:])
        return current + delta if sign == "+" else current - delta
    return parse_size(text)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--shrink", is_flag=True,
              help="Allow shrinking: the clusters past the new end are dropped.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("size", metavar="[+|-]SIZE")
def resize(shrink: bool, file: str, size: str) -> None:
    """Change FILE's virtual size to SIZE, or by +SIZE / -SIZE.

    Growing makes the new clusters allocated zeros (old backing data never shows through);
    shrinking needs --shrink, as with qemu-img, because it drops data.
    """
    with _open(file, "r+") as img, _about(file):
        current = int(img.virtual_size)
        try:
            new_size = parse_resize(size, current)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="'SIZE'") from None
        if new_size < 0:
            raise _fail(file, f"cannot shrink below 0 bytes (the disk is {current} bytes)")
        if new_size < current and not shrink:
            raise click.UsageError(
                f"shrinking {file} from {current} to {new_size} bytes drops data; "
                "add --shrink to confirm"
            )
        img.resize(new_size)
        img.flush()
    click.echo(f"Image resized: {current} -> {new_size} bytes ({format_size(new_size)})")


# --------------------------------------------------------------------------- hydrate


def _tqdm_progress(total: int, desc: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
               file=sys.stderr, dynamic_ncols=True, leave=True)

    def update(done: int, total_now: int) -> None:
        if total_now != bar.total:
            bar.total = total_now
        if done > bar.n:
            bar.update(done - bar.n)

    return update, bar.close


@cli.command()
@click.option("-p", "--progress", is_flag=True, help="Show a progress bar on stderr.")
@click.argument("file", type=click.Path(dir_okay=False))
def hydrate(progress: bool, file: str) -> None:
    """Copy every cluster still read from the backing file into FILE's raw image file.

    Afterwards the raw image file is a standalone disk (the all_allocated feature is set).
    """
    with _open(file, "r+") as img, _about(file):
        callback: Callable[[int, int], None] | None = None
        close: Callable[[], None] = lambda: None  # noqa: E731
        if progress:
            callback, close = _tqdm_progress(int(img.virtual_size), "hydrating")
        try:
            img.hydrate(progress=callback)
        finally:
            close()
        img.flush()
        info = img.info()
    click.echo(f"hydrated {file}: the raw file {info['image_file']} now holds the whole disk")


# --------------------------------------------------------------------------- upgrade


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
def upgrade(file: str) -> None:
    """Convert a version 1 (2012 patch) image to version 2, in place and atomically."""
    from addcow_ref import upgrade_v1

    with _about(file), open(file, "rb") as f:
        version = read_version(f.read(12))
    if version == 2:
        click.echo(f"{file} is already version 2; nothing to do")
        return
    with _about(file):
        upgrade_v1(file)
    click.echo(f"upgraded {file} from version 1 to version 2")


# --------------------------------------------------------------------------- demo


@cli.command()
@click.option("--force", is_flag=True, help="Use DIR even if it is not empty.")
@click.argument("directory", metavar="[DIR]", default="demo-out",
                type=click.Path(file_okay=False))
def demo(force: bool, directory: str) -> None:
    """Walk through add-cow on the bundled example disk, in DIR (default ./demo-out).

    Creates an overlay on a copy of the example base disk, writes to it, shows info and map,
    checks it with the conformance checker and hydrates it, printing the command for each step.
    """
    from addcow_ref.cli.demo import run_demo

    code = run_demo(directory, force=force, run=main)
    if code:
        raise click.exceptions.Exit(code)


# --------------------------------------------------------------------------- serve

cli.add_command(serve)


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``addcow`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit status."""
    return cli.main(args=argv, prog_name=PROG, standalone_mode=False)
