"""Which files an image may use (spec: "Image file and backing file"; rules IMG-IDENTITY,
IMG-FILE-TYPE, BACK-EXISTS).

An image file that is also the add-cow file, a file of the backing chain or the image file of
another add-cow file in the chain would let a write change what another layer, or the image's
own header and bitmap, holds: ``--image-file g.raw -b g.raw`` turns every guest write into a
change of the "golden" backing file. Files are compared by ``(st_dev, st_ino)`` after symbolic
links, never by name, because two names (a symlink, a hard link, ``a/../b``) may reach one
file. Files are stat'ed before they are opened (and locked), so the error is this one, not a
lock conflict of a file with itself.
"""

from __future__ import annotations

from addcow_ref.engine.backing import Backing, ChainState, MissingBacking
from addcow_ref.engine.fileio import FileSystem
from addcow_ref.format.errors import BackingFileError, ImageFileError

__all__ = ["check_image_identity", "refuse_missing"]


def check_image_identity(fs: FileSystem, add_cow: str, image: str,
                         chain: ChainState) -> tuple[int, int] | None:
    """The identity of the image file ``image`` of the add-cow file ``add_cow``, after checking
    that it is neither the add-cow file, nor an add-cow file above it in the chain
    (``chain.seen``), nor the image file of one (``chain.images``). None when it cannot be
    stat'ed: opening it then fails with the error it deserves (IMG-EXISTS, IMG-FILE-TYPE)."""
    if fs.kind(image) not in ("file", "block"):
        return None
    try:
        ident = fs.identity(image)
        own = fs.identity(add_cow)
    except OSError:
        return None
    if ident == own:
        what = "the add-cow file itself"
    elif ident in chain.seen:
        what = "an add-cow file of the backing chain"
    elif ident in chain.images:
        what = "the image file of another add-cow file of the chain"
    else:
        return ident
    raise ImageFileError(f"image file is {what}", file=image, field="image_name_offset",
                         rule_id="IMG-IDENTITY")


def refuse_missing(backing: Backing, container: str) -> Backing:
    """``backing``, unless it is a :class:`MissingBacking`: a reader opens the whole chain when
    it opens an image and refuses one whose backing file is missing (BACK-EXISTS), whatever the
    bitmap says."""
    if isinstance(backing, MissingBacking):
        raise BackingFileError(f"cannot open the backing file named by {container}: "
                               f"{backing.reason}",
                               file=backing.path, field="backing_name_offset",
                               rule_id="BACK-EXISTS")
    return backing
