"""What changed in each vector of a suite version, in words, for ``vectors/CHANGELOG.md``.

``history.json`` records only digests, so it can say *that* an expectation changed but not
*how*; an implementer updating to a new suite needs the how. A test holds every added or
changed id of a version to a note here, and every note to such an id.
"""

from __future__ import annotations

__all__ = ["NOTES"]

_READABLE = ("now acceptable with reader duty ignore: every reader must open it and read the "
             "clusters as the bits say")
_COMPARE = ("after.files compares the image file's first virtual_size bytes only "
            "(compare_length); its length after a resize is a SHOULD (IMG-LENGTH)")
_SHRINK = ("after.files compares the add-cow file up to the last whole bitmap byte; padding "
           "bits and trailing bytes after a shrink are open (RESIZE-SHRINK-ORDER is a SHOULD)")

#: version -> vector id -> what changed (or, for an added vector, what it pins).
NOTES: dict[str, dict[str, str]] = {
    "2.0.0": {
        # -- changed expectations
        "bitmap/padding-bit-set": f"was invalid (BMP-PADDING error); {_READABLE}; a checker "
                                  "warns",
        "bitmap/padding-first-bit-set": f"was invalid (BMP-PADDING error); {_READABLE}; a "
                                        "checker warns",
        "bitmap/trailing-bytes": "expect.reader_duty ignore: a refusal no longer conforms, "
                                 "whatever the declared policy",
        "chains/backing-missing-all-allocated": "was valid; now invalid (BACK-EXISTS): a reader "
                                                "opens the whole chain with the image and never "
                                                "decides by scanning the bitmap",
        "features/all-allocated": "also exercises READ-BACKING-SKIP",
        "features/compatible-unknown-bit-1": "expect.reader_duty ignore (FEAT-COMPAT-UNKNOWN)",
        "features/compatible-unknown-high-bits": "expect.reader_duty ignore "
                                                 "(FEAT-COMPAT-UNKNOWN)",
        "files/image-longer-than-disk": "was valid; now acceptable with an IMG-LENGTH warning "
                                        "and reader duty ignore",
        "files/relative-names": "the backing name is lower/../base/backing.raw (it no longer "
                                "climbs above the add-cow file's directory, NAME-CONFINED)",
        "header/base": "also exercises READ-DUTY",
        "header/header-length-127": "also breaks HDR-LENGTH-MULTIPLE (multi-violation)",
        "header/header-length-fills-area": "header_length 4088 (was 4087, which now breaks "
                                           "HDR-LENGTH-MULTIPLE), an 8-byte image name disk.raw",
        "header/header-length-past-bitmap-offset": "header_length 4104 (was 4100), so it breaks "
                                                   "only HDR-LENGTH-BOUND and NAME-BOUNDS",
        "header/virtual-size-unaligned": "the image file is 3071 bytes, as long as the disk "
                                         "(else it would also break IMG-LENGTH); no longer a "
                                         "twin of header/base",
        "legacy/with-backing": "also exercises V1-BACKING-RAW",
        "legacy/write-refused": "the refusal cites V1-NO-WRITE-OPEN (was V1-READ-ONLY)",
        "names/backing-name-has-nul": "adds a file 'back' (the name up to the NUL), so a reader "
                                      "that stops at the NUL opens the image instead of failing "
                                      "for a missing backing file",
        "names/long-names-8k-area": "also exercises NAME-LENGTH-LIMIT (names below 4096 bytes)",
        "ops/resize-grow-aligned": _COMPARE,
        "ops/resize-grow-all-allocated": f"{_COMPARE}; also exercises FEAT-COMPAT-KEEP",
        "ops/resize-grow-over-stale-image-tail": "now acceptable (IMG-LENGTH warning, reader "
                                                 f"duty ignore); {_COMPARE}",
        "ops/resize-grow-partial-last": _COMPARE,
        "ops/resize-shrink": f"{_SHRINK}; also exercises RESIZE-SHRINK-ORDER",
        "ops/resize-shrink-mid-cluster-then-grow": _COMPARE,
        "ops/resize-shrink-then-grow": _COMPARE,
        "ops/resize-shrink-to-zero": f"{_SHRINK}; also exercises RESIZE-SHRINK-ORDER",
        "ops/write-all-allocated": "also exercises FEAT-COMPAT-KEEP",
        "ops/write-in-2mib-cluster": "every bit is 1 after the write: compatible bit 0 "
                                     "(all_allocated) is not compared (FEAT-ALL-ALLOCATED-SET)",
        "ops/write-sequence-overlapping": "every bit is 1 after the writes: compatible bit 0 "
                                          "(all_allocated) is not compared "
                                          "(FEAT-ALL-ALLOCATED-SET)",
        "read/raw-backing-looks-like-add-cow": "also exercises FMT-CASE",
        # -- added vectors
        "chains/backing-missing-all-allocated-flag": "missing backing file with all_allocated "
                                                     "set: opening and refusing both conform "
                                                     "(READ-BACKING-SKIP)",
        "files/backing-name-climbs-out": "a backing name ../backing.raw: readers open it, a "
                                         "checker warns (NAME-CONFINED)",
        "files/image-is-add-cow-file": "the image name is the add-cow file's own name "
                                       "(IMG-IDENTITY)",
        "files/image-is-backing-file": "the image name is the raw backing file's name "
                                       "(IMG-IDENTITY)",
        "files/image-is-backing-image-file": "the image file is also the image file of the "
                                             "add-cow backing file (IMG-IDENTITY)",
        "files/image-is-directory": "the image name names a directory (IMG-FILE-TYPE)",
        "header/header-length-not-multiple-of-8": "header_length 132 (HDR-LENGTH-MULTIPLE)",
        "legacy/flush-only-refused": "a flush-only apply on v1 is refused (V1-NO-WRITE-OPEN)",
        "legacy/padding-bit-set": "v1 with a set padding bit: readable, a checker warns "
                                  "(BMP-PADDING)",
        "names/backing-format-upper-case-raw": "backing_format RAW is an unknown format "
                                               "(FMT-CASE, FMT-BACKING-KNOWN)",
        "names/image-format-non-printable-byte": "a 0x01 byte in image_format (FMT-PADDING: "
                                                 "printable ASCII is 0x21..0x7e)",
        "names/image-format-upper-case-raw": "image_format RAW is refused (FMT-CASE, "
                                             "FMT-IMAGE)",
        "ops/discard-keeps-bits": "discard keeps every bit; the discarded allocated bytes are "
                                  "open (DISCARD-KEEP-BITS, DISCARD-PUNCH; needs apply:discard)",
        "ops/hydrate": "hydration allocates every cluster and sets all_allocated "
                       "(HYDRATE-COMPLETE; needs apply:hydrate)",
        "ops/hydrate-image-file-longer": "hydration over a longer image file: its length after "
                                         "is open (IMG-LENGTH is a SHOULD)",
        "ops/resize-clears-unknown-autoclear": "a resize clears an unknown autoclear bit "
                                               "(FEAT-AUTOCLEAR-UNKNOWN)",
        "ops/resize-grow-over-longer-image-file": "a grow over an image file longer than the "
                                                  "new size zeroes the new part (RESIZE-GROW)",
        "ops/resize-keeps-unknown-compatible-bit": "a grow keeps an unknown compatible bit "
                                                   "(FEAT-COMPAT-KEEP)",
        "ops/write-keeps-header-extension": "a write and a grow keep header_length and bytes "
                                            "128..255 (HDR-EXTENSION-KEEP)",
        "ops/write-keeps-unknown-compatible-bit": "a write keeps an unknown compatible bit "
                                                  "(FEAT-COMPAT-KEEP)",
        "ops/write-past-end-refused": "a write at virtual_size is refused, nothing changes "
                                      "(WRITE-RANGE)",
        "ops/write-straddling-end-refused": "a write across the end is refused whole, not "
                                            "clipped (WRITE-RANGE)",
        "ops/write-zeroes-allocates": "write-zeroes allocates like a write of zeros "
                                      "(WRITE-ZEROES-ALLOCATE; needs apply:write-zeroes)",
        "read/past-the-end-refused": "reads past virtual_size are refused, never clipped "
                                     "(READ-RANGE; expect.refused_reads)",
    },
}
