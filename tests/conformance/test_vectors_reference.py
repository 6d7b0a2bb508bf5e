"""The reference implementation against the vectors: same header, extents, guest bytes, files.

The vectors' expectations come from the generator's own oracle, never from the reference, so
this test checks the reference against an independent model (and the model against it).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pytest
from addcow_conformance.adapters.reference import REFERENCE_OPERATIONS as REFERENCE_OPERATION_NAMES
from addcow_conformance.harness.compare import after_file_mismatch
from addcow_conformance.protocol import FILE_OPERATIONS

import addcow_ref
from addcow_ref import AddCowError
from addcow_ref.ops.info import image_info

from .vectors_support import materialize, merge_extents, vectors

open_image = getattr(addcow_ref, "open_image", None)
pytestmark = pytest.mark.skipif(open_image is None,
                                reason="addcow_ref.open_image does not exist yet")

#: Invalid vectors a reader may open: they break only bitmap contents, which readers need not
#: scan (feature ``bitmap-validation``, which the reference does not claim).
MAY_OPEN = "bitmap-validation"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _state(img: Any) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    ext = merge_extents([{"start": e.start, "length": e.length, "allocated": e.allocated}
                         for e in img.map()])
    guest = img.read(0, img.virtual_size) if img.virtual_size else b""
    return dataclasses.asdict(image_info(img)), ext, _sha(guest)


def _check_state(img: Any, want: dict[str, Any]) -> None:
    info, ext, guest = _state(img)
    assert {k: info.get(k) for k in want["info"]} == want["info"]
    assert ext == want["extents"]
    if "guest_sha256" in want:
        assert guest == want["guest_sha256"]
    for p in want.get("probes", []):  # where a discard leaves the whole guest open
        assert _sha(img.read(p["offset"], p["length"])) == p["sha256"], p


def _params(kinds: tuple[str, ...]) -> list[Any]:
    return [pytest.param(v, id=v["id"]) for v in vectors() if v["kind"] in kinds]


@pytest.mark.parametrize("v", _params(("parse", "read")))
def test_reference_reads_vector(v: dict[str, Any], tmp_path: Path) -> None:
    assert open_image is not None
    root = materialize(v, tmp_path / "vec")
    expect = v["expect"]
    if v["result"] == "invalid":
        if MAY_OPEN in v["requires"]:
            at_open: AddCowError | None = None
            try:
                open_image(root / v["entry"]).close()
            except AddCowError as err:
                at_open = err
            if at_open is None:
                pytest.skip("the reference does not scan bitmap contents when it opens an image "
                            "(feature bitmap-validation, which readers need not have)")
            assert at_open.rule_id in v["violates"]
            return
        # A reader may refuse when it opens the image or, for a missing backing file
        # (BACK-EXISTS), when it is asked for an unallocated cluster.
        with pytest.raises(AddCowError) as e, open_image(root / v["entry"]) as img:
            img.read(0, img.virtual_size)
        assert e.value.rule_id in v["violates"]
        return
    refusal = expect.get("refusal")
    policies = {c for f in v["flags"] for c in _flags()[f]["policy_choices"]}
    if refusal is not None and "accept" not in policies:
        with pytest.raises(AddCowError) as e:
            open_image(root / v["entry"]).close()
        assert e.value.rule_id == refusal["rule"]
        return
    refused: AddCowError | None = None
    try:
        img = open_image(root / v["entry"])
    except AddCowError as e:
        refused = e
    if refused is not None:
        assert expect.get("reader_duty") != "ignore", f"refused an image it must open: {refused}"
        assert refusal is not None, f"refused a {v['result']} vector: {refused}"
        assert "refuse" in policies, f"refused a {v['result']} vector: {refused}"
        assert refused.rule_id == refusal["rule"]
        return
    with img:
        _check_state(img, expect)
        for r in expect.get("refused_reads", []):  # READ-RANGE: refused, never clipped
            with pytest.raises(AddCowError):
                img.read(r["offset"], r["length"])


def _flags() -> dict[str, Any]:
    from .vectors_support import manifest

    flags: dict[str, Any] = manifest()["flags"]
    return flags


#: The apply operations the reference adapter declares (the others are skipped, as the harness
#: skips them for it).
REFERENCE_OPERATIONS = frozenset(REFERENCE_OPERATION_NAMES)


def _apply(img: Any, ops: list[dict[str, Any]]) -> None:
    for op in ops:
        if op["op"] == "write":
            data = (bytes.fromhex(op["data_hex"]) if "data_hex" in op
                    else bytes([op["pattern"]]) * op["length"])
            img.write(op["offset"], data)
        elif op["op"] == "write-zeroes":
            img.write_zeroes(op["offset"], op["length"])
        elif op["op"] == "discard":
            img.discard(op["offset"], op["length"])
        elif op["op"] == "resize":
            img.resize(op["size"])
        elif op["op"] == "hydrate":
            img.hydrate()
        else:
            img.flush()


def _file_op(entry: Path, op: dict[str, Any]) -> None:
    from addcow_ref.ops.commit import commit
    from addcow_ref.ops.rebase import rebase
    from addcow_ref.ops.upgrade import upgrade_v1

    if op["op"] == "upgrade":
        upgrade_v1(entry)
    elif op["op"] == "commit":
        commit(str(entry), keep=op.get("keep", False))
    else:
        rebase(str(entry), op["backing"] or "", op.get("backing_format"),
               unsafe=op.get("unsafe", False))


def _apply_with_file_ops(entry: Path, ops: list[dict[str, Any]]) -> None:
    """The library's own calls for an op list with file operations, the others run on the image
    opened between them."""
    assert open_image is not None
    run: list[dict[str, Any]] = []
    for op in [*ops, None]:
        if op is not None and op["op"] not in FILE_OPERATIONS:
            run.append(op)
            continue
        if run:
            with open_image(entry, "r+") as img:
                _apply(img, run)
                img.flush()
            run = []
        if op is not None:
            _file_op(entry, op)


@pytest.mark.parametrize("v", _params(("op",)))
def test_reference_applies_ops(v: dict[str, Any], tmp_path: Path) -> None:
    assert open_image is not None
    root = materialize(v, tmp_path / "vec")
    expect = v["expect"]
    entry = root / v["entry"]
    missing = {op["op"] for op in expect["ops"]} - REFERENCE_OPERATIONS
    if missing:
        pytest.skip(f"the reference does not implement {', '.join(sorted(missing))}")
    if any(op["op"] in FILE_OPERATIONS for op in expect["ops"]):
        # Upgrade, commit and rebase write new files in place of the old: no image is open
        # meanwhile, and the other operations run on the image between them.
        if "refusal" in expect:
            with pytest.raises(AddCowError) as e:
                _apply_with_file_ops(entry, expect["ops"])
            assert e.value.rule_id == expect["refusal"]["rule"]
            if "after" not in expect:  # an invalid image: refused, nothing after to compare
                return
        else:
            _apply_with_file_ops(entry, expect["ops"])
    elif "refusal" in expect:
        with pytest.raises(AddCowError) as e, open_image(entry, "r+") as img:
            _apply(img, expect["ops"])
        assert e.value.rule_id == expect["refusal"]["rule"]
    else:
        with open_image(entry, "r+") as img:
            _apply(img, expect["ops"])
            img.flush()
    after = expect["after"]
    for f in after["files"]:
        # Within compare_length and outside the ignore ranges: what the spec pins.
        assert after_file_mismatch(root / f["path"], f) is None, f["path"]
    with open_image(entry) as img:
        _check_state(img, after)
