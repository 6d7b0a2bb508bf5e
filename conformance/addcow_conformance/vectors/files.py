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
        "files/image-longer-than-disk", "The image file is 3000 bytes longer than virtual_size; "
        "the extra bytes are not guest data", a, longer, backing,
        exercises=["IMG-SIZE", "IMG-EXISTS", "READ-ALLOCATED"]))
    a2, image2, backing2 = _base()
    a2.image_name = b"img/image.raw"
    a2.backing_name = b"../backing.raw"
    v = read_vector(
        "files/relative-names", "The add-cow file is top/image.add-cow; its image name "
        "img/image.raw and backing name ../backing.raw resolve against top/, not against the "
        "current directory", a2, image2, backing2,
        exercises=["READ-NAME-RELATIVE", "IMG-EXISTS", "BACK-EXISTS"])
    v.entry = "top/image.add-cow"
    v.files = [File("add-cow", "top/image.add-cow", a2.build()),
               File("image", "top/img/image.raw", image2),
               File("backing", "backing.raw", backing2)]
    return [*out, v]
