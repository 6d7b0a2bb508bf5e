#!/bin/sh
# adapter.sh: the addcow command-line tool behind the conformance interface (info and read).
# Run it with --lenient-refusal: addcow exits 1, not 65, when it refuses an image.
case "$1" in
  capabilities)
    echo '{"name": "addcow-cli", "version": "0.1", "supports": ["info", "read"],
           "features": ["v1", "backing-chain", "big-int"], "policies": {}}' ;;
  info)
    # `addcow info` parses the header only, as `qemu-img info` does; a reader must also open
    # the backing chain and refuse a missing backing file (BACK-EXISTS). `addcow map` opens
    # the image as a reader does, so let it refuse first.
    # Its JSON has qemu-img's shape; the harness's info record is the add-cow record nested
    # under "format-specific", passed on as it is.
    addcow map "$2" >/dev/null || exit
    doc=$(addcow info --output=json "$2") || exit
    printf '%s' "$doc" | exec python3 -c \
      'import json, sys; print(json.dumps(json.load(sys.stdin)["format-specific"]["data"]))' ;;
  read)
    exec addcow read --offset "$3" --length "$4" "$2" ;;
  *)
    exit 69 ;;  # map, apply: not supported, so skipped
esac
