"""The parameter types and options several ``addcow`` subcommands share.

Sizes and offsets are typed the way ``qemu-img`` reads them (see
:mod:`addcow_ref.cli.humanize`), so a value that is not a size is a usage error naming the
option, before any file is touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

__all__ = ["BYTE", "CHUNK_SIZE", "CONFINE", "FORCE_SHARE", "OUTPUT", "SIZE", "ByteType",
           "SizeType"]

#: Request size for streaming reads and writes: large enough to be fast, small enough that a
#: multi-GiB ``read`` or ``write`` never holds more than this in memory.
CHUNK_SIZE = 1 << 20

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
        # Imported when a size is given: humanize's exact arithmetic loads ``fractions`` (and
        # ``decimal``), which every command that merely declares a size option would pay.
        from addcow_ref.cli.humanize import parse_size

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

#: ``--output`` of ``info`` and ``map``, as qemu-img spells it.
OUTPUT = click.option(
    "--output", type=click.Choice(["human", "json"]), default="human", show_default=True,
    help="Output format; json is stable and meant for scripts.",
)

#: ``-U/--force-share`` of the read-only commands, as in qemu-img: skip the shared locks
#: (spec rule LOCK-FORCE-SHARE), to look at an image a writer has open.
FORCE_SHARE = click.option(
    "-U", "--force-share", is_flag=True,
    help="Open without the shared locks, to read an image another program is writing "
         "(what is read may then be inconsistent).")

#: ``--confine DIR``: every file of the image must resolve, after symlinks, inside DIR; a name
#: that leaves it is refused before anything outside is opened (spec: "Checking an untrusted
#: upload").
CONFINE = click.option(
    "--confine", metavar="DIR", type=click.Path(file_okay=False),
    help="Refuse any file of the image (add-cow file, image file, backing chain) that does "
         "not resolve inside DIR, after symlinks; nothing outside DIR is opened.")
