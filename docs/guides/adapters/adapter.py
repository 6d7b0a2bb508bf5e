#!/usr/bin/env python3
"""adapter.py: a Python library behind the conformance interface (info, read and map).

Here the library is the reference implementation, addcow_ref; put your own in its place.
"""
from __future__ import annotations

import json
import sys

import addcow_ref as mylib  # your implementation
from addcow_ref.ops.info import image_info

CAPABILITIES = {"name": "my-python-lib", "version": "0.1", "supports": ["info", "read", "map"],
                "features": ["v1", "backing-chain", "big-int"], "policies": {}}
ARITY = {"info": 1, "read": 3, "map": 1}
CHUNK = 1 << 20


def merged(extents):
    """The interface merges adjacent runs of equal allocation (the library splits by depth)."""
    out = []
    for e in extents:
        start, length, allocated = int(e.start), int(e.length), bool(e.allocated)
        if out and out[-1]["allocated"] == allocated and \
                out[-1]["start"] + out[-1]["length"] == start:
            out[-1]["length"] += length
        else:
            out.append({"start": start, "length": length, "allocated": allocated})
    return out


def main(argv):
    if argv == ["capabilities"]:  # the one call without an IMAGE
        print(json.dumps(CAPABILITIES))
        return 0
    if not argv or argv[0] not in ARITY:
        return 69  # apply, or a call added later: not supported, so skipped
    cmd, args = argv[0], argv[1:]
    if len(args) != ARITY[cmd]:
        print(f"usage: adapter.py {cmd} IMAGE{' OFFSET LENGTH' if cmd == 'read' else ''}",
              file=sys.stderr)
        return 64
    try:
        with mylib.open_image(args[0], "r") as img:
            if cmd == "info":
                info = image_info(img)
                print(json.dumps({k: getattr(info, k) for k in info.__dataclass_fields__}))
            elif cmd == "read":
                offset, length = int(args[1]), int(args[2])
                if offset + length > img.virtual_size:  # refused, never clipped (READ-RANGE)
                    print(json.dumps({"refused": True, "rule": "READ-RANGE",
                                      "message": "read past the end of the disk"}))
                    return 65
                for at in range(offset, offset + length, CHUNK):
                    sys.stdout.buffer.write(img.read(at, min(CHUNK, offset + length - at)))
            else:
                print(json.dumps(merged(img.map())))
    except mylib.AddCowError as e:  # a clean refusal, with the rule it breaks
        print(json.dumps({"refused": True, "rule": e.rule_id, "message": str(e)}))
        return 65
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
