"""Vectors about the raw image file named by the header: missing, short, longer than the disk."""

from __future__ import annotations

from addcow_conformance.vectors.builder import AddCow, field_offset
from addcow_conformance.vectors.common import (
    pattern,
    producer,
    read_vector,
    refusal_vector,
    std_files,
)
from addcow_conformance.vectors.core import File, Vector, finding


def _base() -> tuple[AddCow, bytes, bytes]:
    a = AddCow(virtual_size=5120, cluster_bits=11, backing_name=b"backing.raw", bits={1})
    return a, pattern("files:image", 5120), pattern("files:backing", 5120)


@producer
def image_file() -> list[Vector]:
    a, image, backing = _base()
    out = [refusal_vector(
        "files/image-missing", "The image file image.raw does not exist",
        std_files(a.build(), None, backing), ["IMG-EXISTS"],
        [finding("IMG-EXISTS", offset=field_offset("image_name_offset"),
                 field="image_name_offset")])]
    out.append(refusal_vector(
        "files/image-short", "The image file is 512 bytes shorter than virtual_size",
        std_files(a.build(), image[:-512], backing), ["IMG-SIZE"],
        [finding("IMG-SIZE", offset=field_offset("virtual_size"), field="virtual_size")]))
    longer = image + pattern("files:tail", 3000)
    out.append(read_vector(
        "files/image-longer-than-disk", "The image file is 3000 bytes longer than virtual_size "
        "(a 1 MiB disk in a 3 MiB file, in small): the extra bytes are not guest data; readers "
        "open it, a checker warns that the image file does not stand alone", a, longer, backing,
        result="acceptable", violates=["IMG-LENGTH"], flags=["image-file-longer"],
        findings=[finding("IMG-LENGTH", offset=field_offset("virtual_size"),
                          field="virtual_size")], reader_duty="ignore"))
    a2, image2, backing2 = _base()
    a2.image_name = b"img/image.raw"
    a2.backing_name = b"lower/../base/backing.raw"
    v = read_vector(
        "files/relative-names", "The add-cow file is top/image.add-cow; its image name "
        "img/image.raw and backing name lower/../base/backing.raw resolve against top/, not "
        "against the current directory", a2, image2, backing2,
        exercises=["READ-NAME-RELATIVE", "IMG-EXISTS", "BACK-EXISTS", "NAME-CONFINED",
                   "READ-FILE-TYPE", "IMG-FILE-TYPE"])
    v.entry = "top/image.add-cow"
    v.files = [File("add-cow", "top/image.add-cow", a2.build()),
               File("image", "top/img/image.raw", image2),
               File("other", "top/lower/placeholder", b"lower/ exists so that .. climbs out\n"),
               File("backing", "top/base/backing.raw", backing2)]
    a3, image3, backing3 = _base()
    a3.backing_name = b"../backing.raw"
    v3 = read_vector(
        "files/backing-name-climbs-out", "The add-cow file is top/image.add-cow and its backing "
        "name is ../backing.raw, above its directory: readers resolve and open it, a checker "
        "warns (names confined to the add-cow file's directory travel with it)", a3, image3,
        backing3, result="acceptable", violates=["NAME-CONFINED"], flags=["name-not-confined"],
        findings=[finding("NAME-CONFINED", offset=field_offset("backing_name_offset"),
                          field="backing_name_offset")], reader_duty="ignore")
    v3.entry = "top/image.add-cow"
    v3.files = [File("add-cow", "top/image.add-cow", a3.build()),
                File("image", "top/image.raw", image3),
                File("backing", "backing.raw", backing3)]
    return [*out, v, v3]


def _identity(vid: str, description: str, a: AddCow, files: list[File],
              requires: tuple[str, ...] = ()) -> Vector:
    return refusal_vector(vid, description, files, ["IMG-IDENTITY"],
                          [finding("IMG-IDENTITY", offset=field_offset("image_name_offset"),
                                   field="image_name_offset")], requires=requires)


@producer
def identity_and_type() -> list[Vector]:
    """The image file is a file of its own, of the right type (IMG-IDENTITY, IMG-FILE-TYPE).

    The harness copies a vector's files, so a vector says "the same file" with the same name,
    never with a link (a link would be copied into two files)."""
    a, _, backing = _base()
    a.image_name = b"backing.raw"
    out = [_identity(
        "files/image-is-backing-file", "The image name and the backing name are both "
        "backing.raw: a write would change the golden backing file", a,
        [File("add-cow", "image.add-cow", a.build()), File("backing", "backing.raw", backing)])]
    # The add-cow file is 4097 bytes; a 4096-byte disk fits in it, so only identity breaks.
    a = AddCow(virtual_size=4096, cluster_bits=11, image_name=b"image.add-cow", bits={0, 1})
    out.append(_identity(
        "files/image-is-add-cow-file", "The image name is image.add-cow, the add-cow file "
        "itself: a write would overwrite its own header", a,
        [File("add-cow", "image.add-cow", a.build())]))
    mid = AddCow(virtual_size=5120, cluster_bits=11, image_name=b"shared.raw",
                 backing_name=b"backing.raw", bits={0})
    top = AddCow(virtual_size=5120, cluster_bits=11, image_name=b"shared.raw",
                 backing_name=b"mid.add-cow", backing_format="add-cow", bits={1})
    out.append(_identity(
        "files/image-is-backing-image-file", "image.add-cow and its add-cow backing file "
        "mid.add-cow both name shared.raw as their image file", top,
        [File("add-cow", "image.add-cow", top.build()),
         File("backing", "mid.add-cow", mid.build()),
         File("image", "shared.raw", pattern("files/shared:image", 5120)),
         File("backing", "backing.raw", pattern("files/shared:backing", 5120))],
        requires=("backing-chain",)))
    a, _, backing = _base()
    out.append(refusal_vector(
        "files/image-is-directory", "The image name image.raw names a directory: the image "
        "file must be a regular file or a block device (a reader learns the type before it "
        "opens anything)", [File("add-cow", "image.add-cow", a.build()),
                            File("other", "image.raw/placeholder", b"image.raw is a directory\n"),
                            File("backing", "backing.raw", backing)], ["IMG-FILE-TYPE"],
        [finding("IMG-FILE-TYPE", offset=field_offset("image_name_offset"),
                 field="image_name_offset")]))
    return out
