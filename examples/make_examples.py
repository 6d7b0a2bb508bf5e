"""Write the bundled example data into this directory (``python examples/make_examples.py``).

The bytes come from :func:`addcow_ref.cli.example_disk.base_disk`, the same function ``addcow demo``
uses at run time, so the committed ``base.raw`` and the demo can never disagree; ``--check``
exits 1 when the committed copy is stale (a test runs it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from addcow_ref.cli.example_disk import BASE_DISK_NAME, base_disk

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    parser.add_argument("--dir", type=Path, default=HERE, help="where to write (default: here)")
    args = parser.parse_args(argv)
    target = args.dir / BASE_DISK_NAME
    data = base_disk()
    if args.check:
        if not target.is_file() or target.read_bytes() != data:
            print(f"{target}: stale; run python examples/make_examples.py", file=sys.stderr)
            return 1
        return 0
    target.write_bytes(data)
    print(f"wrote {target} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
