"""Version 1 images (the 2012 v9 patch): read-only opening (spec: "Legacy version 1";
rules V1-*). The upgrade to version 2 is an operation, in :mod:`addcow_ref.ops.upgrade`.

Version 1 has no format field for its backing file; the v9 patch let QEMU probe it. The
reference never probes (READ-NO-PROBE), so a v1 backing file is read as ``raw`` unless the
upgrade is told otherwise.
"""

from __future__ import annotations

from addcow_ref.engine.backing import resolve_name
from addcow_ref.engine.fileio import BlockFile, FileSystem
from addcow_ref.format.constants import FORMAT_RAW, HEADER_LENGTH_V1
from addcow_ref.format.errors import ImageFileError
from addcow_ref.format.header import HeaderV1, parse_header_v1
from addcow_ref.format.validate import check_file_length, check_v1, raise_violations

__all__ = ["V1_BACKING_FORMAT", "read_v1_header"]

#: The format a v1 image's backing file is read in (v1 cannot say; the reference never probes).
V1_BACKING_FORMAT = FORMAT_RAW

def read_v1_header(meta: BlockFile, path: str, fs: FileSystem) -> HeaderV1:
    """Parse and validate a v1 header; its virtual size comes from the image file's length."""
    header = parse_header_v1(meta.pread(0, HEADER_LENGTH_V1), file=path)
    raise_violations(check_v1(header), path)
    image_path = resolve_name(path, header.image_name)
    if fs.kind(image_path) not in ("file", "block"):
        raise ImageFileError("image file does not exist or is not a regular file",
                             file=image_path, field="image_file", rule_id="IMG-EXISTS")
    try:
        f = fs.open(image_path, writable=False)
        try:
            size = f.size()
        finally:
            f.close()
    except OSError as e:
        raise ImageFileError(f"cannot open image file: {e.strerror}", file=image_path,
                             field="image_file", rule_id="IMG-EXISTS") from None
    header = header.with_image_length(size)
    raise_violations(check_file_length(header, meta.size()), path)
    return header
