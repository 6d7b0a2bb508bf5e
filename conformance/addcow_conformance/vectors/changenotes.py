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

_CUT = ("after.files pins the image file's length to virtual_size (it was open): hydration "
        "truncates a longer regular image file (HYDRATE-ORDER step 3 is a MUST, and "
        "HYDRATE-COMPLETE reads the image file as a raw file)")

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
    "2.1.0": {
        # -- added vectors (issue 16: what the mutation run showed the suite could not see)
        "header/upgrade-bad-magic-refused": "an upgrade of a file with a bad magic is refused "
                                            "(HDR-MAGIC; needs apply:upgrade)",
        "header/upgrade-version-7-refused": "an upgrade of a version 7 file is refused "
                                            "(HDR-VERSION; needs apply:upgrade)",
        "big/bitmap-over-cache-chunk": "524,421 clusters (a 65,553-byte bitmap): runs across byte "
                                       "boundaries, bit 4096 and the 64 KiB chunk and map-window "
                                       "boundary at cluster 524,288; the image file is a 256 MiB "
                                       "synth file",
        "big/write-across-bitmap-bytes-and-chunks": "writes over the same long bitmap: allocated "
                                                    "into unallocated, 8 bitmap bytes at once, "
                                                    "across the chunk boundary, both ends of a "
                                                    "long run",
        "chains/one-byte-reads-through-add-cow-backing": "1-byte reads at every cluster boundary "
                                                         "of an add-cow backing file and past its "
                                                         "end",
        "legacy/resize-refused": "a resize of a v1 image is refused, nothing changes "
                                 "(V1-NO-WRITE-OPEN; needs apply:resize)",
        "legacy/upgrade-no-backing": "upgrade of a v1 image to version 2 (needs apply:upgrade): "
                                     "guest, map and decoded header pinned, the new file's layout "
                                     "and the image file's tail open",
        "legacy/upgrade-with-backing": "upgrade of a v1 image over a raw backing file: "
                                       "backing_format raw, the same 2-byte bitmap and guest "
                                       "(needs apply:upgrade)",
        "limits/cluster-bits-255": "cluster_bits 255 is refused (HDR-CLUSTER-BITS); the bitmap "
                                   "still fits",
        "limits/cluster-bits-63": "cluster_bits 63 is refused (HDR-CLUSTER-BITS)",
        "limits/cluster-bits-64": "cluster_bits 64, a cluster wider than any 64-bit size, is "
                                  "refused (HDR-CLUSTER-BITS)",
        "names/backing-format-add-cow-upper-case": "backing_format ADD-COW naming a valid add-cow "
                                                   "file is an unknown format (FMT-CASE, "
                                                   "READ-NO-PROBE)",

        "names/backing-format-printable-edges": "backing_format !raw~ (0x21 and 0x7e) is well "
                                                "formed and unknown: a refusal cites "
                                                "FMT-BACKING-KNOWN, not FMT-PADDING",
        "names/backing-name-touches-image-name": "the image name starts right after the backing "
                                                 "name: touching is not overlapping "
                                                 "(NAME-OVERLAP)",
        "names/image-format-del-byte": "0x7f (DEL) in image_format, one past the printable "
                                       "range (FMT-PADDING)",
        "names/image-format-space": "a space (0x20) in image_format (FMT-PADDING)",
        "names/names-overlap-one-byte": "the backing name starts on the image name's last byte "
                                        "(NAME-OVERLAP)",
        "names/names-overlap-one-byte-reversed": "the image name starts on the backing name's "
                                                 "last byte (NAME-OVERLAP)",
        "ops/discard-past-end-refused": "a discard across the end is refused whole (WRITE-RANGE; "
                                        "needs apply:discard)",
        "ops/hydrate-all-bits-already-set": "hydration with every bit already 1 sets "
                                            "all_allocated and copies nothing",
        "ops/hydrate-backing-ends-mid-cluster": "hydration over a backing file that ends inside a "
                                                "cluster: zeros past its end over stale image "
                                                "bytes",
        "ops/hydrate-clears-unknown-autoclear": "hydration clears an unknown autoclear bit "
                                                "(FEAT-AUTOCLEAR-UNKNOWN)",
        "ops/hydrate-long-bitmap": "hydration of 10,000 clusters (a 1250-byte bitmap, more than "
                                   "one 4 MiB copy step)",
        "ops/hydrate-no-backing-stale-image": "hydration without a backing file zeroes the stale "
                                              "bytes of unallocated clusters",
        "ops/hydrate-over-add-cow-backing": "hydration over an add-cow backing chain (needs "
                                            "backing-chain); the backing files stay unchanged",
        "ops/resize-2-63-refused": "a resize to 2^63 is refused citing HDR-VIRTUAL-SIZE-MAX; "
                                   "nothing changes",
        "ops/resize-grow-from-partial-byte": "a grow from 3 to 64 clusters: a whole bitmap "
                                             "without padding",
        "ops/resize-grow-many-bitmap-bytes": "a grow by 57 clusters: 7 new bitmap bytes set, the "
                                             "new padding bits 0",
        "ops/resize-grow-then-write": "a grow and a write across the old end in one apply",
        "ops/resize-one-sector-less-refused": "a resize to a size one byte short of a multiple of "
                                              "512 is refused (HDR-VIRTUAL-SIZE-ALIGN)",
        "ops/resize-shrink-then-write": "a shrink and a write into the new partial last cluster "
                                        "in one apply",
        "ops/resize-shrink-to-whole-bytes": "a shrink to a whole number of bitmap bytes: the "
                                            "bitmap is compared byte for byte",
        "ops/resize-unaligned-refused": "a resize to a size that is not a multiple of 512 is "
                                        "refused (HDR-VIRTUAL-SIZE-ALIGN)",
        "ops/write-allocated-into-unallocated": "a write from an allocated cluster over three "
                                                "bitmap bytes of mixed bits",
        "ops/write-whole-bitmap-bytes": "writes of whole bitmap bytes, part of one, and a 1-byte "
                                        "write",
        "ops/write-zeroes-past-end-refused": "a write-zeroes across the end is refused "
                                             "(WRITE-RANGE)",
        "ops/write-zeroes-to-end-of-disk": "write-zeroes to the end of a disk with a partial last "
                                           "cluster",
        "ops/write-zeroes-whole-clusters": "write-zeroes over whole allocated and unallocated "
                                           "clusters with partial head and tail",
        "read/many-clusters-multi-byte-runs": "reads from 1 byte to the whole disk over 32 "
                                              "clusters of 512 bytes, runs across bitmap bytes",
        "big/map-one-run-across-map-window": "524,296 unallocated clusters without a backing "
                                             "file: one extent across cluster 524,288",
        "ops/write-then-grow-2-clusters": "a write, then a grow of 2 clusters with an "
                                          "unallocated partial last cluster, in one apply",
        "ops/write-then-grow-17-clusters": "a write into cluster 8, then a grow of 17 clusters "
                                           "with an unallocated partial last cluster, in one "
                                           "apply",
        "ops/resize-grow-from-9-clusters": "a grow from 9 clusters (8n + 1): unallocated "
                                           "cluster 8 still reads the backing file",
        "ops/hydrate-run-past-backing-end": "hydration of a cluster wholly past the backing "
                                            "file's end, after an allocated cluster ending in "
                                            "0xAA",
        "legacy/upgrade-bitmap-bytes-0x01": "upgrade of a v1 image whose bitmap bytes are all "
                                            "0x01: the bits are kept",
    },
    "3.0.0": {
        # -- changed expectations
        "ops/hydrate": _CUT,
        "ops/hydrate-all-bits-already-set": _CUT,
        "ops/hydrate-backing-ends-mid-cluster": _CUT,
        "ops/hydrate-clears-unknown-autoclear": _CUT,
        "ops/hydrate-image-file-longer": _CUT,
        "ops/hydrate-long-bitmap": _CUT,
        "ops/hydrate-no-backing-stale-image": _CUT,
        "ops/hydrate-over-add-cow-backing": _CUT,
        "ops/hydrate-run-past-backing-end": _CUT,
        # -- added vectors: commit and rebase (needs apply:commit / apply:rebase)
        "ops/commit-after-writes": "writes, then a commit into a raw backing file longer than "
                                   "the disk: its bytes past the disk stay (COMMIT-COMPLETE)",
        "ops/commit-into-add-cow-backing": "commit into an add-cow backing image with larger "
                                           "clusters: its head and tail come from its own "
                                           "backing file (COMMIT-COMPLETE; needs backing-chain)",
        "ops/commit-into-raw-backing": "commit into a short raw backing file, which grows to the "
                                       "last committed byte; the image is emptied "
                                       "(COMMIT-COMPLETE)",
        "ops/commit-keep": "commit with keep: the backing file gets the clusters, the image is "
                           "unchanged (COMMIT-COMPLETE)",
        "ops/rebase-drop-middle-layer": "safe rebase from an add-cow backing image onto its own "
                                        "backing file (REBASE-COMPLETE; needs backing-chain)",
        "ops/rebase-safe": "safe rebase onto a raw file that differs in every unallocated "
                           "cluster: each is copied first (REBASE-COMPLETE)",
        "ops/rebase-safe-missing-refused": "safe rebase onto a file that does not exist is "
                                           "refused (BACK-EXISTS)",
        "ops/rebase-to-no-backing": "safe rebase to no backing file copies every unallocated "
                                    "cluster (REBASE-COMPLETE)",
        "ops/rebase-unknown-format-refused": "rebase onto a backing format add-cow does not "
                                             "define is refused (READ-NO-PROBE)",
        "ops/rebase-unsafe": "unsafe rebase changes only the names (REBASE-COMPLETE)",
        "ops/rebase-unsafe-to-no-backing": "unsafe rebase to no backing file: the unallocated "
                                           "clusters read zeros (REBASE-COMPLETE)",
        "ops/commit-clears-unknown-autoclear": "a commit that empties the image clears an "
                                               "unknown autoclear bit (FEAT-AUTOCLEAR-UNKNOWN)",
        "ops/rebase-keeps-header-extension": "a rebase keeps header_length and the header "
                                             "extension (HDR-EXTENSION-KEEP)",
        # -- added vectors (survivors of the mutation run of suite 2.1.0)
        "big/map-last-cluster-alone-in-word": "4097 clusters of 512 bytes: the last, "
                                              "unallocated after 3096 allocated ones, is alone "
                                              "in the bitmap's last 64-bit word",
        "big/map-last-run-ends-mid-word": "4100 clusters of 512 bytes whose allocated last run "
                                          "ends the disk inside the bitmap's last 64-bit word, "
                                          "each other change of bit alone in its word",
        "big/write-long-runs-from-mid-word": "two writes of over 4096 clusters: one whose first "
                                             "(unallocated) run is longer than its last, one "
                                             "from cluster 4500 (inside a 64-bit word) whose "
                                             "first cluster is allocated",
        "big/write-zeroes-long-run-ends-unallocated": "a write-zeroes of 4200 clusters whose "
                                                      "last run is unallocated, before more "
                                                      "unallocated clusters that must stay so "
                                                      "(needs apply:write-zeroes)",
        "chains/add-cow-backing-tail-merges": "an add-cow backing file without a backing file, "
                                              "shorter than the top image, whose last cluster "
                                              "is unallocated: its tail and the range past its "
                                              "end are one extent of the map",
        "read/backing-ends-one-byte-into-cluster": "a backing file that ends 1 byte into an "
                                                   "unallocated cluster: a 1-byte piece of the "
                                                   "map",
        "ops/write-from-bit-1-of-bitmap-byte": "a write from cluster 1 (bit 1 of bitmap byte "
                                               "0): bit 0 stays clear",
        "header/upgrade-version-low-bytes-1-refused": "an upgrade of a 128-byte file of version "
                                                      "0x01000001 is refused for HDR-VERSION, "
                                                      "not as a short version 1 header "
                                                      "(needs apply:upgrade)",
        "legacy/commit-refused": "a commit of a v1 image is refused (V1-READ-ONLY) with the "
                                 "backing file unchanged (needs apply:commit)",
        "legacy/rebase-refused": "an unsafe rebase of a v1 image is refused (V1-NO-WRITE-OPEN) "
                                 "(needs apply:rebase)",
        "ops/commit-into-add-cow-backing-to-its-end": "commit into an add-cow backing image "
                                                      "up to its last byte (needs "
                                                      "backing-chain)",
        "ops/commit-into-shorter-add-cow-backing-refused": "commit into a shorter add-cow "
                                                           "backing image is refused "
                                                           "(WRITE-RANGE), no file changed",
        "ops/rebase-safe-across-layers": "safe rebase of an image whose unallocated range reads "
                                         "two layers of its chain (needs backing-chain)",
        "ops/rebase-name-outgrows-name-area": "an unsafe rebase whose new name no longer "
                                              "fits before the bitmap: the bitmap moves, the "
                                              "bits and the header extension stay",
        "ops/rebase-nul-in-name-refused": "a rebase onto a name with a NUL byte is refused "
                                          "(NAME-NO-NUL)",
        "ops/rebase-from-a-full-name-area": "an unsafe rebase of an image whose names end at "
                                            "the bitmap: the padding the shorter name leaves is "
                                            "zero",
    },
    "3.1.0": {
        # -- added vectors
        "ops/commit-without-backing-refused": "a commit of an image that has no backing file is "
                                              "refused (COMMIT-NEEDS-BACKING), no file changed "
                                              "(needs apply:commit)",
        "ops/rebase-onto-a-64-deep-chain": "an unsafe rebase onto the top of 64 add-cow layers "
                                           "(64 below the image, the most BACK-DEPTH allows) "
                                           "succeeds and reads through all of them (needs "
                                           "apply:rebase, backing-chain)",
        "ops/rebase-onto-a-65-deep-chain-refused": "an unsafe rebase onto the top of 65 add-cow "
                                                   "layers is refused (BACK-DEPTH), no file "
                                                   "changed (needs apply:rebase, "
                                                   "backing-chain)",
    },
}
