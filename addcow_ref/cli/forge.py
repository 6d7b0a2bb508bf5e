"""``addcow inspect`` and ``addcow set-field``: look at and hand-edit header fields by name.

For making test images by hand and for looking at broken ones: ``inspect`` lists every field of
a v1 or v2 header with its offset, size and value, ``set-field`` overwrites one field in place.
Both stand on ``addcow_ref.format.forge``, so offsets, widths and the field list come from the
schema's field table and nothing here knows a field by name. Neither checks a spec rule: a
header that breaks every rule is still shown whole, and can be broken further on purpose.

The commands are module-level click commands; the ``addcow`` group registers them.
"""

from __future__ import annotations

import dataclasses
import json
import re

import click

from addcow_ref.cli.errors import UserError
from addcow_ref.format import forge
from addcow_ref.format.errors import AddCowError
from addcow_ref.format.forge import FieldView
from addcow_ref.format.schema import HEADER_V1, HEADER_V2, FieldValue
from addcow_ref.format.text import printable as terminal_text

__all__ = ["FieldRecord", "field_record", "inspect", "parse_value", "printable", "set_field"]

_INT_TEXT = re.compile(r"^(?:0[xX][0-9a-fA-F]+|[0-9]+)$")


def printable(data: bytes) -> str:
    """``data`` without its NUL padding, as text: printable ASCII kept, a backslash and every
    other byte (control bytes, NULs inside the text, non-ASCII) escaped as ``\\xNN``."""
    return "".join(chr(c) if 0x20 <= c < 0x7F and c != 0x5C else f"\\x{c:02x}"
                   for c in data.rstrip(b"\0"))


@dataclasses.dataclass(frozen=True)
class FieldRecord:
    """One field as ``inspect --output=json`` shows it: integers as numbers, byte fields as
    hex with their printable text alongside."""

    name: str
    offset: int
    size: int
    type: str
    value: int | str
    text: str | None = None


def field_record(view: FieldView) -> FieldRecord:
    if isinstance(view.value, int):
        return FieldRecord(view.name, view.offset, view.size, view.ctype, view.value)
    return FieldRecord(view.name, view.offset, view.size, view.ctype, view.value.hex(),
                       printable(view.value))


def _hex_bytes(data: bytes) -> str:
    """Hex bytes up to the last non-zero one, then how many zero bytes follow."""
    body = data.rstrip(b"\0")
    zeros = len(data) - len(body)
    if not body:
        return f"({zeros} zero bytes)"
    return body.hex(" ") + (f" (+{zeros} zero bytes)" if zeros else "")


def _human_value(view: FieldView) -> str:
    if isinstance(view.value, int):
        return f"{view.value} (0x{view.value:x})"
    text = printable(view.value)
    return _hex_bytes(view.value) + (f'  "{text}"' if text else "")


def _fail(file: str, e: AddCowError | OSError) -> UserError:
    if isinstance(e, OSError):
        return UserError(f"{file}: {e.strerror or e}")
    if e.file is None or e.file.startswith("<"):
        e.file = file
    return UserError(str(e))


@click.command("inspect")
@click.option("--output", type=click.Choice(["human", "json"]), default="human",
              show_default=True, help="human: an aligned table; json: one object.")
@click.argument("image", type=click.Path(dir_okay=False))
def inspect(output: str, image: str) -> None:
    """Show every header field of IMAGE (v1 or v2) with its offset, size and value.

    No rule is checked: a broken header is shown whole (see ``addcow-check`` for what is
    wrong with it).
    """
    try:
        header = forge.read_header(image)
    except (AddCowError, OSError) as e:
        raise _fail(image, e) from None
    views = forge.fields_of(header)
    version = header.version
    if output == "json":
        doc = {"file": image, "version": version, "header_size": sum(v.size for v in views),
               "fields": [dataclasses.asdict(field_record(v)) for v in views]}
        click.echo(json.dumps(doc, indent=2))
        return
    size = sum(v.size for v in views)
    click.echo(f"{terminal_text(image)}: add-cow version {version} header, {size} bytes")
    width = max(len(v.name) for v in views)
    click.echo(f"{'offset':<16} {'size':>4}  {'field':<{width}}  value")
    for v in views:
        where = f"0x{v.offset:04x} ({v.offset:>4})"
        click.echo(f"{where:<16} {v.size:>4}  {v.name:<{width}}  {_human_value(v)}")


def parse_value(text: str, *, is_integer: bool) -> FieldValue:
    """``text`` as a field value: decimal or ``0x`` hex for an integer field, hex digits for a
    byte field (spaces and a ``0x`` prefix allowed; shorter than the field is NUL-padded).
    ``ValueError`` says which form was expected."""
    text = text.strip()
    if is_integer:
        if not _INT_TEXT.match(text):
            raise ValueError(f"{text!r} is not a decimal or 0x-hex integer")
        return int(text, 16) if text[:2].lower() == "0x" else int(text, 10)
    digits = re.sub(r"\s", "", text.removeprefix("0x").removeprefix("0X"))
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise ValueError(f"{text!r} is not hex bytes (like 72 61 77 or 0x726177)") from None


@click.command("set-field")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("field")
@click.argument("value")
def set_field(image: str, field: str, value: str) -> None:
    """Overwrite header FIELD of IMAGE with VALUE, in place, for making test images by hand.

    Integer fields take decimal or 0x hex; byte fields take hex (NUL-padded to the field's
    size). The version field decides whether IMAGE is read as v1 or v2. Nothing is written
    unless the whole value fits; then exactly the field's bytes are.
    """
    try:
        with open(image, "rb") as f:
            head = f.read(max(HEADER_V1.sizeof(), HEADER_V2.sizeof()))
        struct = forge.detect_struct(head, file=image)
        info = forge.lookup(struct, field, file=image)
        try:
            parsed = parse_value(value, is_integer=info.is_integer)
        except ValueError as e:
            raise UserError(f"{image}: {field}: {e}") from None
        written = forge.set_field(image, field, parsed, struct=struct)
    except (AddCowError, OSError) as e:
        raise _fail(image, e) from None
    click.echo(f"{terminal_text(image)}: {written.name} at 0x{written.offset:x} "
               f"({written.size} bytes) = "
               f"{_human_value(written)}")
