"""``addcow-impl``: the reference implementation behind the harness's adapter interface.

This is the adapter CI runs over ``vectors/`` (it must pass everything), and the base class every
mutant in ``addcow_conformance.mutants`` bends. Each step an implementation could get wrong is a
method,
so a mutant overrides one method and nothing else. The adapter only reports raw behaviour
(bytes, JSON, exit status); the harness does the comparing.

Interface (docs/guides/test-your-implementation.rst)::

    addcow-impl capabilities
    addcow-impl info IMAGE
    addcow-impl read IMAGE OFFSET LENGTH
    addcow-impl map IMAGE
    addcow-impl apply IMAGE OPS.json

Exit status: 0 done; 65 the image is refused (``{"refused": true, "rule", "message"}`` on
stdout); 69 call or operation not supported; 64 usage error (``addcow_conformance.protocol``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import addcow_ref
from addcow_conformance.protocol import (
    ARITY,
    CMD_CAPABILITIES,
    CMD_INFO,
    CMD_MAP,
    CMD_READ,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNSUPPORTED,
    EXIT_USAGE,
    FEATURE_BACKING_CHAIN,
    FEATURE_BIG_INT,
    FEATURE_V1,
    FILE_OPERATIONS,
    SYNOPSIS,
    CapabilitiesRecord,
    RefusalRecord,
    apply_flag,
)
from addcow_conformance.records import Extent, Operation
from addcow_ref.format.errors import AddCowError
from addcow_ref.format.header import read_version
from addcow_ref.ops.commit import commit as commit_image
from addcow_ref.ops.info import image_info
from addcow_ref.ops.rebase import rebase as rebase_image
from addcow_ref.ops.upgrade import upgrade_v1

__all__ = [
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNSUPPORTED",
    "EXIT_USAGE",
    "ReferenceAdapter",
    "Unsupported",
    "UsageError",
    "main",
]

_CHUNK = 1 << 20

#: The ``apply`` operations the reference library implements (of ``APPLY_OPERATIONS``).
REFERENCE_OPERATIONS = ("write", "write-zeroes", "discard", "resize", "flush", "hydrate",
                        "upgrade", "commit", "rebase")

#: The operations that work on the files, not on an open image (``FILE_OPERATIONS``): the
#: upgrade writes a new file and renames it over the old one, and a version 1 image may not be
#: opened for writing (V1-NO-WRITE-OPEN); a commit writes the backing file, which an open
#: image holds locked for reading (LOCK-WRITER), and renames a new add-cow file over the old;
#: a rebase renames a new add-cow file over the old. So each runs with the image closed.
UPGRADE, COMMIT, REBASE = "upgrade", "commit", "rebase"

USAGE = "usage: " + "\n       ".join(f"addcow-impl {line}" for line in SYNOPSIS)


class UsageError(Exception):
    """The adapter was called with arguments the interface does not allow."""


class RangeRefused(Exception):
    """A read that reaches past the end of the disk: refused (exit 65, rule READ-RANGE)."""


class Unsupported(Exception):
    """A call or an operation this adapter does not implement (exit 69)."""


def _open_image(path: str, mode: str) -> Any:
    opener: Callable[..., Any] | None = getattr(addcow_ref, "open_image", None)
    if opener is None:  # pragma: no cover - until the public API re-exports it
        from addcow_ref.engine import image

        opener = image.open_image
    return opener(path, mode)


def _int(text: str, what: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise UsageError(f"{what} must be a decimal integer, not {text!r}") from None
    if value < 0:
        raise UsageError(f"{what} must not be negative")
    return value


def _merge(extents: list[Extent]) -> list[Extent]:
    """The interface merges adjacent runs of equal allocation; the library also splits by depth."""
    out: list[Extent] = []
    for e in extents:
        if out and out[-1]["allocated"] == e["allocated"] and (
            out[-1]["start"] + out[-1]["length"] == e["start"]
        ):
            out[-1]["length"] += e["length"]
        else:
            out.append(e.copy())
    return out


def _check_file_op(op: Operation) -> None:
    """Refuse, as a usage error, a file operation with keys or values its form does not have
    (``protocol.FILE_OPERATIONS``; the manifest schema's ``ops`` forms)."""
    kind = op.get("op")
    if kind == UPGRADE and set(op) != {"op"}:
        raise UsageError(f"malformed operation {op!r} (an upgrade takes no arguments)")
    if kind == COMMIT and (set(op) - {"op", "keep"}
                           or not isinstance(op.get("keep", False), bool)):
        raise UsageError(f"malformed operation {op!r} (a commit takes only keep: a boolean)")
    if kind == REBASE:
        backing, fmt = op.get("backing", ""), op.get("backing_format")
        if (set(op) - {"op", "backing", "backing_format", "unsafe"}
                or not isinstance(op.get("unsafe", False), bool)):
            raise UsageError(f"malformed operation {op!r} (a rebase takes backing, "
                             "backing_format and unsafe: a boolean)")
        if backing is None:
            if fmt is not None:
                raise UsageError(f"malformed operation {op!r} (backing_format with backing "
                                 "null: there is no backing file)")
        elif not isinstance(backing, str) or not backing or not isinstance(fmt, str):
            raise UsageError(f"malformed operation {op!r} (backing must be a non-empty name "
                             "with its backing_format, or null)")


class ReferenceAdapter:
    """addcow_ref behind the adapter interface; every behaviour a mutant may bend is a method."""

    name = "addcow-ref"
    #: The rule a mutant's mistake breaks (None: the reference breaks none, we hope).
    breaks: str | None = None

    def __init__(self, stdout: BinaryIO | None = None) -> None:
        self.out: BinaryIO = stdout if stdout is not None else sys.stdout.buffer

    # -- hooks ------------------------------------------------------------------------------

    def capabilities(self) -> CapabilitiesRecord:
        return {
            "name": self.name,
            "version": addcow_ref.__version__,
            # Only the finer apply:* flags: a bare "apply" would claim every operation.
            "supports": [CMD_INFO, CMD_READ, CMD_MAP, *map(apply_flag, REFERENCE_OPERATIONS)],
            "features": [FEATURE_V1, FEATURE_BACKING_CHAIN, FEATURE_BIG_INT],
            # What the reference does with each `acceptable` flag of the manifest.
            "policies": {
                "trailing-data": "accept",
                "unknown-compatible-bit": "accept",
                "unknown-autoclear-bit": "accept",
                "unknown-backing-format": "refuse",
            },
        }

    def open(self, path: str, mode: str = "r") -> Any:
        return _open_image(path, mode)

    def info(self, image: Any) -> dict[str, Any]:
        return dataclasses.asdict(image_info(image))

    def read(self, image: Any, offset: int, length: int) -> bytes:
        data: bytes = image.read(offset, length)
        return data

    def extents(self, image: Any) -> list[Extent]:
        return [
            {"start": int(e.start), "length": int(e.length), "allocated": bool(e.allocated)}
            for e in image.map()
        ]

    def write(self, image: Any, offset: int, data: bytes) -> None:
        image.write(offset, data)

    def resize(self, image: Any, size: int) -> None:
        image.resize(size)

    def flush(self, image: Any) -> None:
        image.flush()

    def hydrate(self, image: Any) -> None:
        image.hydrate()

    def write_zeroes(self, image: Any, offset: int, length: int) -> None:
        image.write_zeroes(offset, length)

    def discard(self, image: Any, offset: int, length: int) -> None:
        image.discard(offset, length)

    def upgrade(self, path: str) -> None:
        """Upgrade a version 1 image to version 2 in place; a version 2 image is left as it is.

        The spec defines the upgrade of version 1 only (spec/legacy.rst, "Upgrading to version
        2"); for a version 2 image the reference's own ``addcow upgrade`` does nothing and says
        so, and the adapter follows it, so an upgrade is idempotent. ``ops.upgrade.upgrade_v1``
        itself refuses a version 2 file, hence the version check here. The version 2 image is
        still opened (read-only), so an invalid one is refused for the rule it breaks.
        """
        try:
            with open(path, "rb") as f:
                version = read_version(f.read(12))
        except OSError:
            version = None  # upgrade_v1 reports the file it cannot open
        if version != 2:
            upgrade_v1(path)
            return
        with self.open(path):  # an invalid version 2 image is still refused, for its rule
            pass

    def commit(self, path: str, keep: bool) -> None:
        """Commit the image into its backing file and, unless ``keep``, empty it
        (``addcow commit [-d]``; spec: "Committing and rebasing")."""
        commit_image(path, keep=keep)

    def rebase(self, path: str, backing: str | None, backing_format: str | None,
               unsafe: bool) -> None:
        """Make ``backing`` (None: none) the backing file (``addcow rebase [-u] -b``)."""
        rebase_image(path, backing or "", backing_format, unsafe=unsafe)

    def apply_file_op(self, path: str, op: Operation) -> None:
        """Run one operation of ``FILE_OPERATIONS`` on the closed image."""
        kind = op["op"]
        if kind == UPGRADE:
            self.upgrade(path)
        elif kind == COMMIT:
            self.commit(path, bool(op.get("keep", False)))
        else:
            self.rebase(path, op["backing"], op.get("backing_format"),
                        bool(op.get("unsafe", False)))

    # -- commands -------------------------------------------------------------------------

    def emit_json(self, value: Any) -> None:
        self.out.write(json.dumps(value, sort_keys=True).encode() + b"\n")

    def cmd_capabilities(self) -> int:
        self.emit_json(self.capabilities())
        return EXIT_OK

    def cmd_info(self, path: str) -> int:
        with self.open(path) as image:
            self.emit_json(self.info(image))
        return EXIT_OK

    def cmd_read(self, path: str, offset: int, length: int) -> int:
        with self.open(path) as image:
            if offset + length > image.virtual_size:
                # READ-RANGE: refused, never clipped (a refusal of this call, not a usage error).
                raise RangeRefused(
                    f"read [{offset}, {offset + length}) is past the disk end {image.virtual_size}"
                )
            done = 0
            while done < length:
                n = min(_CHUNK, length - done)
                self.out.write(self.read(image, offset + done, n))
                done += n
        return EXIT_OK

    def cmd_map(self, path: str) -> int:
        with self.open(path) as image:
            self.emit_json(_merge(self.extents(image)))
        return EXIT_OK

    def load_ops(self, ops_path: str) -> list[Operation]:
        try:
            with open(ops_path, encoding="utf-8") as f:
                ops = json.load(f)
        except (OSError, ValueError) as e:
            raise UsageError(f"{ops_path}: cannot read the operation list ({e})") from None
        if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
            raise UsageError(f"{ops_path}: not a JSON list of operation objects")
        return ops

    def apply_op(self, image: Any, op: Operation) -> None:
        kind = op.get("op")
        if kind not in REFERENCE_OPERATIONS:
            raise Unsupported(f"operation {kind!r} is not supported")
        try:
            if kind == "write":
                offset = int(op["offset"])
                if "data_hex" in op:
                    data = bytes.fromhex(op["data_hex"])
                else:
                    data = bytes([int(op["pattern"])]) * int(op["length"])
            elif kind in ("write-zeroes", "discard"):
                offset, length = int(op["offset"]), int(op["length"])
            elif kind == "resize":
                size = int(op["size"])
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"malformed operation {op!r} ({e!r})") from None
        if kind == "write":
            self.write(image, offset, data)
        elif kind == "write-zeroes":
            self.write_zeroes(image, offset, length)
        elif kind == "discard":
            self.discard(image, offset, length)
        elif kind == "resize":
            self.resize(image, size)
        elif kind == "hydrate":
            self.hydrate(image)
        else:
            self.flush(image)

    def cmd_apply(self, path: str, ops_path: str) -> int:
        ops = self.load_ops(ops_path)
        for op in ops:
            _check_file_op(op)
        # Runs of ordinary operations between file operations, each on the image opened
        # read-write; a list without a file operation is one run (an empty list too: opening for
        # writing is itself refused on a version 1 image, V1-NO-WRITE-OPEN).
        runs: list[list[Operation]] = [[]]
        between: list[Operation] = []
        for op in ops:
            if op.get("op") in FILE_OPERATIONS:
                between.append(op)
                runs.append([])
            else:
                runs[-1].append(op)
        for i, run in enumerate(runs):
            if i:
                self.apply_file_op(path, between[i - 1])
            if run or len(runs) == 1:
                with self.open(path, "r+") as image:
                    for op in run:
                        self.apply_op(image, op)
                    self.flush(image)
        return EXIT_OK

    def dispatch(self, argv: Sequence[str]) -> int:
        if not argv:
            raise UsageError("no command")
        cmd, args = argv[0], list(argv[1:])
        if cmd not in ARITY:
            raise Unsupported(f"command {cmd!r} is not supported")
        if len(args) != ARITY[cmd]:
            raise UsageError(f"{cmd}: expected {ARITY[cmd]} arguments, got {len(args)}")
        if cmd == CMD_CAPABILITIES:
            return self.cmd_capabilities()
        if cmd == CMD_INFO:
            return self.cmd_info(args[0])
        if cmd == CMD_READ:
            return self.cmd_read(args[0], _int(args[1], "OFFSET"), _int(args[2], "LENGTH"))
        if cmd == CMD_MAP:
            return self.cmd_map(args[0])
        return self.cmd_apply(args[0], args[1])

    def run(self, argv: Sequence[str]) -> int:
        """Run one call; every outcome is an exit status, never a traceback."""
        try:
            return self.dispatch(argv)
        except AddCowError as e:
            refusal: RefusalRecord = {"refused": True, "rule": e.rule_id, "message": str(e)}
            self.emit_json(refusal)
            print(f"{self.name}: refused: {e}", file=sys.stderr)
            return EXIT_REFUSED
        except RangeRefused as e:
            self.emit_json({"refused": True, "rule": "READ-RANGE", "message": str(e)})
            print(f"{self.name}: refused: {e}", file=sys.stderr)
            return EXIT_REFUSED
        except Unsupported as e:
            print(f"{self.name}: {e}", file=sys.stderr)
            return EXIT_UNSUPPORTED
        except UsageError as e:
            print(f"{self.name}: {e}\n{USAGE}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            self.out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    return ReferenceAdapter().run(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
