"""``addcow read`` and ``addcow write``: guest bytes in and out, streamed.

Both move at most :data:`~addcow_ref.cli.params.CHUNK_SIZE` bytes per library call, so copying
a multi-GiB range never holds it in memory; a range past the end of the disk is refused before
anything is written, naming the byte offset.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import BinaryIO

import click

from addcow_ref.cli.errors import about, fail, open_named
from addcow_ref.cli.inspect_cmds import FORMAT_OPTION
from addcow_ref.cli.params import BYTE, CHUNK_SIZE, CONFINE, FORCE_SHARE, SIZE

__all__ = ["check_range", "first_mismatch", "hexdump_lines", "read", "write"]


def check_range(file: str, offset: int, length: int, size: int, verb: str) -> None:
    """Refuse to ``verb`` ``length`` bytes at ``offset`` of a disk of ``size`` bytes when the
    range does not fit."""
    if offset > size or length > size - offset:
        raise fail(
            file,
            f"cannot {verb} {length} bytes: the disk ends at byte {size} (0x{size:x})",
            offset=offset,
        )


def hexdump_lines(offset: int, data: bytes) -> Iterator[str]:
    """``data`` (read at guest ``offset``) as ``qemu-io read -v`` prints it: 16 bytes a line,
    the offset in hex, the bytes, then their printable characters."""
    for i in range(0, len(data), 16):
        row = data[i:i + 16]
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        yield f"{offset + i:08x}:  " + "".join(f"{b:02x} " for b in row) + " " + text


def first_mismatch(data: bytes, pattern: int) -> int | None:
    """Index of the first byte of ``data`` that is not ``pattern``, or None."""
    rest = data.lstrip(bytes([pattern]))
    return None if not rest else len(data) - len(rest)


@click.command()
@FORMAT_OPTION
@click.option("--offset", type=SIZE, default=0, show_default=True, help="First guest byte.")
@click.option("--length", type=SIZE, default=None,
              help="Bytes to read (default: up to the end of the disk).")
@click.option("-o", "--output", "outfile", type=click.Path(dir_okay=False, allow_dash=True),
              default="-", help="Write the bytes to this file instead of stdout.")
@click.option("-v", "--hexdump", is_flag=True,
              help="Print the bytes as a hexdump (qemu-io read -v) instead of raw.")
@click.option("-P", "--pattern", type=BYTE, default=None,
              help="Verify that every byte equals PATTERN instead of printing the bytes "
                   "(exit 1 naming the first byte that does not).")
@click.option("-q", "--quiet", is_flag=True, help="With -P, print nothing on success.")
@FORCE_SHARE
@CONFINE
@click.argument("file", type=click.Path(dir_okay=False))
def read(fmt: str, offset: int, length: int | None, outfile: str, hexdump: bool,
         pattern: int | None, quiet: bool, force_share: bool, confine: str | None,
         file: str) -> None:
    """Copy guest bytes of FILE to stdout or a file (or dump or verify them).

    \b
    Examples:
      addcow read --offset 1M --length 4K disk.add-cow > block.bin
      addcow read -v --offset 0 --length 512 disk.add-cow     # hexdump
      addcow read -P 0xab --offset 1M --length 4K disk.add-cow  # verify
    """
    if hexdump and pattern is not None:
        raise click.UsageError("give -v or -P, not both")
    with open_named(file, force_share=force_share, confine=confine) as img, about(file):
        size = int(img.virtual_size)
        if length is None:
            length = max(size - offset, 0)
        check_range(file, offset, length, size, "read")
        out: BinaryIO
        with contextlib.ExitStack() as stack:
            if outfile == "-":
                out = sys.stdout.buffer
            else:
                with about(outfile):
                    out = open(outfile, "wb")  # noqa: SIM115 - closed by the stack, named
                stack.callback(_close_named, out, outfile)
            where = "<stdout>" if outfile == "-" else outfile
            pos, end = offset, offset + length
            while pos < end:
                n = min(CHUNK_SIZE, end - pos)
                data = img.read(pos, n)
                if pattern is not None:
                    bad = first_mismatch(data, pattern)
                    if bad is not None:
                        raise fail(file, f"pattern verification failed: 0x{pattern:02x} "
                                   f"expected, 0x{data[bad]:02x} found", offset=pos + bad)
                else:
                    chunk = data if not hexdump else "".join(
                        line + "\n" for line in hexdump_lines(pos, data)).encode()
                    with about(where):
                        out.write(chunk)
                pos += n
            with about(where):
                out.flush()
    if pattern is not None and not quiet:
        click.echo(f"read {length} bytes at offset {offset}: every byte is 0x{pattern:02x}")


def _close_named(stream: BinaryIO, name: str) -> None:
    """Close an output file, naming it (not the image) if the last buffered bytes cannot be
    written: a full disk often shows only here."""
    with about(name):
        stream.close()


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


@click.command()
@FORMAT_OPTION
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@click.option("--offset", type=SIZE, default=0, show_default=True, help="First guest byte.")
@click.option("--pattern", type=BYTE, default=None,
              help="Fill with this byte value (needs --length).")
@click.option("--length", type=SIZE, default=None,
              help="Bytes to write (with --pattern; with --from or -, at most this many).")
@click.option("--from", "source", type=click.Path(dir_okay=False, allow_dash=True),
              default=None, help="Write this file's bytes ('-' for stdin).")
@click.argument("operands", nargs=-1, required=True, metavar="[-] FILE")
def write(
    fmt: str,
    quiet: bool,
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

    with open_named(file, "r+") as img, about(file), contextlib.ExitStack() as stack:
        size = int(img.virtual_size)
        chunks: Iterator[bytes]
        if pattern is not None:
            assert length is not None
            check_range(file, offset, length, size, "write")
            chunks = _chunks_of_pattern(pattern, length)
        elif source == "-":
            chunks = _chunks_of_stream(sys.stdin.buffer, length)
        else:
            assert source is not None
            with about(source):
                stream = stack.enter_context(open(source, "rb"))
                known = os.fstat(stream.fileno()).st_size
            if length is None and os.path.isfile(source):
                check_range(file, offset, known, size, "write")
            chunks = _chunks_of_stream(stream, length)
        pos = offset
        for chunk in chunks:
            check_range(file, pos, len(chunk), size, "write")
            img.write(pos, chunk)
            pos += len(chunk)
        img.flush()
    if not quiet:
        click.echo(f"wrote {pos - offset} bytes at offset {offset} (0x{offset:x})")
