"""Rule predicates over a parsed header and the file around it (spec: "Header" to "v1").

Each function returns every :class:`Violation` it finds instead of raising: the reference opens an
image only if no error-severity violation is returned (and raises the first), the checker reports
them all. Single-field rules come from the ``checks`` declared in ``schema.py``; cross-field and
file-level rules are written here once. The offsets and checks come from the field table
generated from the schema (``fieldtable.py``), so validating a header does not import construct.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from addcow_ref.format.constants import (
    BACKING_FORMATS,
    IMAGE_FORMATS,
    KNOWN_AUTOCLEAR_FEATURES,
    KNOWN_COMPATIBLE_FEATURES,
    KNOWN_INCOMPATIBLE_FEATURES,
)
from addcow_ref.format.errors import FormatError, TruncatedError, UnsupportedFeatureError
from addcow_ref.format.fieldtable import HEADER_V1, HEADER_V2
from addcow_ref.format.header import HeaderV1, HeaderV2, decode_format
from addcow_ref.format.layout import field_info, field_table, span_of
from addcow_ref.format.rules import get_rule

__all__ = [
    "NextData",
    "ReadAt",
    "Violation",
    "check_features",
    "check_fields",
    "check_file_length",
    "check_formats",
    "check_names",
    "check_v1",
    "header_violations",
    "raise_violations",
]

#: ``read_at(offset, length)`` returns up to ``length`` bytes at ``offset`` (fewer at EOF).
ReadAt = Callable[[int, int], bytes]

#: ``next_data(offset)`` returns where data resumes at or after ``offset`` (e.g. ``lseek`` with
#: ``SEEK_DATA``); the bytes skipped are a hole that reads as zeros. ``offset`` itself when
#: unknown.
NextData = Callable[[int], int]

#: The name area is scanned in chunks of this size, so a huge ``bitmap_offset`` costs no memory.
SCAN_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Violation:
    """One broken rule: where (byte offset/length, header field) and what was found."""

    rule_id: str
    message: str
    offset: int | None = None
    length: int | None = None
    field: str | None = None
    expected: str | None = None
    actual: str | None = None

    @property
    def severity(self) -> str:
        return get_rule(self.rule_id).severity


def _hex(b: bytes) -> str:
    return b.hex(" ")


def check_fields(header: HeaderV2 | HeaderV1) -> list[Violation]:
    """Evaluate every single-field ``checks`` entry of the header's schema."""
    values = header.as_dict()
    out: list[Violation] = []
    for info in field_table(header._table):
        for rule_id, expr in info.checks.items():
            if expr(values):
                continue
            actual = values[info.name]
            shown = _hex(actual) if isinstance(actual, bytes) else str(actual)
            out.append(Violation(
                rule_id, f"{info.name} is {shown}; expected {info.constraint.replace('``', '')}",
                offset=info.offset, length=info.size, field=info.name,
                expected=info.constraint, actual=shown))
    return out


def check_features(header: HeaderV2) -> list[Violation]:
    out: list[Violation] = []
    words: list[tuple[str, int, int, str]] = [
        ("incompatible_features", header.incompatible_features, KNOWN_INCOMPATIBLE_FEATURES,
         "FEAT-INCOMPAT-UNKNOWN"),
        ("compatible_features", header.compatible_features, KNOWN_COMPATIBLE_FEATURES,
         "FEAT-COMPAT-UNKNOWN"),
        ("autoclear_features", header.autoclear_features, KNOWN_AUTOCLEAR_FEATURES,
         "FEAT-AUTOCLEAR-UNKNOWN"),
    ]
    for name, value, known, rule_id in words:
        unknown = value & ~known
        if unknown:
            info = field_info(HEADER_V2, name)
            bits = [i for i in range(8 * info.size) if unknown >> i & 1]
            out.append(Violation(
                rule_id, f"{name} has unknown bit(s) {', '.join(map(str, bits))}",
                offset=info.offset, length=info.size, field=name,
                expected=f"only known bits (mask 0x{known:x})", actual=f"0x{unknown:x}"))
    return out


def _format_field_violations(header: HeaderV2, name: str) -> list[Violation]:
    raw: bytes = getattr(header, name)
    text, _, pad = raw.partition(b"\0")
    info = field_info(HEADER_V2, name)
    if pad.strip(b"\0") or not all(0x20 < c < 0x7F for c in text):
        return [Violation("FMT-PADDING", f"{name} is not printable ASCII followed by NUL bytes: "
                          f"{_hex(raw)}", offset=info.offset, length=info.size, field=name,
                          actual=_hex(raw))]
    return []


def check_formats(header: HeaderV2) -> list[Violation]:
    out: list[Violation] = []
    img = field_info(HEADER_V2, "image_format")
    bak = field_info(HEADER_V2, "backing_format")
    for name in ("image_format", "backing_format"):
        out += _format_field_violations(header, name)
    image_format = decode_format(header.image_format)
    if image_format not in IMAGE_FORMATS:
        out.append(Violation("FMT-IMAGE", f"image_format is {image_format!r}; expected 'raw'",
                             offset=img.offset, length=img.size, field=img.name,
                             expected="raw", actual=image_format))
    backing_format = decode_format(header.backing_format)
    if bool(backing_format) != header.has_backing:
        what = ("names a format but the image has no backing file" if backing_format
                else "is empty but the image has a backing file")
        out.append(Violation("FMT-BACKING-PRESENCE", f"backing_format {what}",
                             offset=bak.offset, length=bak.size, field=bak.name,
                             actual=backing_format))
    elif backing_format and backing_format not in BACKING_FORMATS:
        out.append(Violation("FMT-BACKING-KNOWN",
                             f"backing_format {backing_format!r} is not raw or add-cow",
                             offset=bak.offset, length=bak.size, field=bak.name,
                             expected="raw or add-cow", actual=backing_format))
    return out


@dataclasses.dataclass(frozen=True)
class _NameRef:
    which: str  # "image" or "backing"
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length

    @property
    def field(self) -> str:
        return f"{self.which}_name_offset"

    @property
    def span(self) -> tuple[int, int]:
        """Offset and length of this name's offset and length fields together."""
        return span_of(HEADER_V2, self.field, f"{self.which}_name_length")


def _iter_chunks(read_at: ReadAt, start: int, end: int,
                 next_data: NextData | None = None) -> Iterator[tuple[int, bytes]]:
    pos = start
    while pos < end:
        if next_data is not None:
            pos = max(pos, min(next_data(pos), end))
            if pos >= end:
                return
        data = read_at(pos, min(SCAN_CHUNK, end - pos))
        if not data:
            return
        yield pos, data
        pos += len(data)


def check_names(header: HeaderV2, read_at: ReadAt, file_size: int,
                next_data: NextData | None = None) -> list[Violation]:
    """Name-area rules. Reads only the bytes that exist, in bounded chunks; with ``next_data``
    the holes of a sparse file are skipped unread, so a terabyte-sized name area that is mostly
    hole costs a few ``lseek`` calls instead of terabytes of reads."""
    out: list[Violation] = []
    area_start = header.header_length
    area_end = header.bitmap_offset
    refs: list[_NameRef] = []
    if header.image_name_length:
        refs.append(_NameRef("image", header.image_name_offset, header.image_name_length))
    bo, bl = header.backing_name_offset, header.backing_name_length
    backing_span = span_of(HEADER_V2, "backing_name_offset", "backing_name_length")
    if (bo == 0) != (bl == 0):
        out.append(Violation("NAME-BACKING-PAIR",
                             f"backing_name_offset is {bo} but backing_name_length is {bl}",
                             offset=backing_span[0], length=backing_span[1],
                             field="backing_name_offset"))
    elif bo:
        refs.append(_NameRef("backing", bo, bl))
    inside: list[_NameRef] = []
    for ref in refs:
        if ref.offset < area_start or ref.end > area_end:
            out.append(Violation(
                "NAME-BOUNDS",
                f"{ref.which} name [{ref.offset}, {ref.end}) is outside the name area "
                f"[{area_start}, {area_end})",
                offset=ref.span[0], length=ref.span[1], field=ref.field,
                expected=f"within [{area_start}, {area_end})", actual=f"[{ref.offset}, {ref.end})"))
        else:
            inside.append(ref)
    if len(refs) == 2 and refs[0].offset < refs[1].end and refs[1].offset < refs[0].end:
        out.append(Violation(
            "NAME-OVERLAP",
            f"image name [{refs[0].offset}, {refs[0].end}) and backing name "
            f"[{refs[1].offset}, {refs[1].end}) overlap",
            offset=backing_span[0], length=backing_span[1], field="backing_name_offset"))
    for ref in inside:
        for pos, data in _iter_chunks(read_at, ref.offset, ref.end):
            nul = data.find(b"\0")
            if nul >= 0:
                out.append(Violation("NAME-NO-NUL",
                                     f"{ref.which} name has a NUL byte at 0x{pos + nul:x}",
                                     offset=pos + nul, length=1, field=ref.field))
                break
    # Stray bytes: any non-zero byte of the area outside every name.
    scan_end = min(area_end, file_size)
    covered = sorted((r.offset, r.end) for r in inside)
    for pos, data in _iter_chunks(read_at, area_start, scan_end, next_data):
        view = bytearray(data)
        for a, b in covered:
            lo, hi = max(a, pos), min(b, pos + len(data))
            if lo < hi:
                view[lo - pos:hi - pos] = bytes(hi - lo)
        stripped = view.lstrip(b"\0")
        if stripped:
            at = pos + len(view) - len(stripped)
            found = f"{view[at - pos]:02x}"
            out.append(Violation("NAME-AREA-ZERO",
                                 f"name area byte 0x{at:x} is 0x{found}, outside every name; "
                                 "expected 0", offset=at, length=1, expected="00", actual=found))
            break
    return out


def check_file_length(header: HeaderV2 | HeaderV1, file_size: int) -> list[Violation]:
    """BMP-LENGTH (file too short for its bitmap) and BMP-TRAILING (bytes after it)."""
    end = header.bitmap_offset + header.bitmap_length
    rule = "V1-BITMAP-LENGTH" if isinstance(header, HeaderV1) else "BMP-LENGTH"
    if file_size < end:
        return [Violation(rule, f"file is {file_size} bytes long; the bitmap needs it to be at "
                          f"least {end} (bitmap_offset {header.bitmap_offset} + bitmap "
                          f"{header.bitmap_length} bytes)", offset=file_size,
                          expected=f">= {end} bytes", actual=f"{file_size} bytes")]
    if file_size > end:
        return [Violation("BMP-TRAILING", f"{file_size - end} byte(s) after the bitmap end at "
                          f"0x{end:x}", offset=end, length=file_size - end)]
    return []


def check_v1(header: HeaderV1) -> list[Violation]:
    """v1 header rules other than the bitmap length (which needs the image file's size)."""
    out = list(check_fields(header))
    for name in ("backing_file", "image_file"):
        raw: bytes = getattr(header, name)
        _text, nul, pad = raw.partition(b"\0")
        if not nul or pad.strip(b"\0"):
            info = field_info(HEADER_V1, name)
            out.append(Violation("V1-NAME-PADDING",
                                 f"{name} is not at most {info.size - 1} bytes followed by NUL "
                                 "padding", offset=info.offset, length=len(raw), field=name))
    if not header.image_name:
        image = field_info(HEADER_V1, "image_file")
        out.append(Violation("V1-IMAGE-NAME", "image_file is empty",
                             offset=image.offset, length=image.size, field=image.name))
    return out


def header_violations(header: HeaderV2, read_at: ReadAt, file_size: int,
                      next_data: NextData | None = None) -> list[Violation]:
    """Every rule that the add-cow file alone decides, except bitmap contents (streamed
    separately: see ``bitmap.py``)."""
    out = check_fields(header)
    if header.header_length > header.bitmap_offset:
        info = field_info(HEADER_V2, "header_length")
        out.append(Violation("HDR-LENGTH-BOUND",
                             f"header_length {header.header_length} exceeds bitmap_offset "
                             f"{header.bitmap_offset}",
                             offset=info.offset, length=info.size, field=info.name))
    out += check_features(header)
    out += check_names(header, read_at, file_size, next_data)
    out += check_formats(header)
    out += check_file_length(header, file_size)
    return out


_ERROR_CLASSES: dict[str, type[FormatError]] = {
    "HDR-COMPLETE": TruncatedError,
    "BMP-LENGTH": TruncatedError,
    "V1-BITMAP-LENGTH": TruncatedError,
    "HDR-VERSION": UnsupportedFeatureError,
    "FEAT-INCOMPAT-UNKNOWN": UnsupportedFeatureError,
    "FMT-IMAGE": UnsupportedFeatureError,
    "FMT-BACKING-KNOWN": UnsupportedFeatureError,
}


def raise_violations(violations: list[Violation], file: str) -> None:
    """Raise the first error-severity violation as the matching typed error."""
    for v in violations:
        if v.severity == "error":
            cls = _ERROR_CLASSES.get(v.rule_id, FormatError)
            raise cls(v.message, file=file, offset=v.offset, field=v.field, rule_id=v.rule_id)
