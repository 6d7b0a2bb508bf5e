"""The manifest's JSON Schema (2020-12), built from the rule registry and the manifest maps.

Rule IDs, flags and feature tags are enums taken from the same sources the manifest is written
from, so a manifest that cites an unknown rule fails validation in any language; every object is
closed (``additionalProperties: false``) with explicit ``required`` lists.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from addcow_conformance.records import INFO_KEYS
from addcow_ref.format.rules import all_rules
from addcow_ref.ops.info import ImageInfo

__all__ = ["build_schema"]

Schema = dict[str, Any]

_SEMVER = {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"}
_SHA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_UINT = {"type": "integer", "minimum": 0}
_ROLES = {"enum": ["add-cow", "image", "backing", "backing-image", "other"]}


def _obj(props: Schema, required: list[str] | None = None, desc: str | None = None) -> Schema:
    out: Schema = {"type": "object", "additionalProperties": False,
                   "required": list(props) if required is None else required,
                   "properties": props}
    if desc:
        out["description"] = desc
    return out


_RANGE = _obj({"offset": _UINT, "length": {"type": "integer", "minimum": 1}})

#: JSON Schema of each type the info record's fields have (every integer of it is unsigned).
_INFO_TYPES: dict[str, Schema] = {
    "int": _UINT,
    "str": {"type": "string"},
    "str | None": {"type": ["string", "null"]},
}


def _info() -> Schema:
    """The info object: the manifest's keys, typed as the reference's info record types them
    (``addcow_ref.ops.info.ImageInfo``), except that a version can only be 1 or 2."""
    types = {f.name: str(f.type) for f in dataclasses.fields(ImageInfo)}
    props = {k: _INFO_TYPES[types[k]] for k in INFO_KEYS}
    props["version"] = {"enum": [1, 2]}
    return _obj(props, desc="The decoded header as an implementation's `info` reports it: spec "
                            "field names, names as text, null for no backing file.")


def _extents() -> Schema:
    return {"type": "array", "items": _obj({"start": _UINT,
                                            "length": {"type": "integer", "minimum": 1},
                                            "allocated": {"type": "boolean"}}),
            "description": "Merged runs covering the whole disk."}


def _ops() -> Schema:
    return {"type": "array", "minItems": 1, "items": {"oneOf": [
        _obj({"op": {"const": "write"}, "offset": _UINT,
              "data_hex": {"type": "string", "pattern": "^([0-9a-f]{2})+$"}}),
        _obj({"op": {"const": "write"}, "offset": _UINT,
              "length": {"type": "integer", "minimum": 1},
              "pattern": {"type": "integer", "minimum": 0, "maximum": 255}}),
        _obj({"op": {"const": "write-zeroes"}, "offset": _UINT,
              "length": {"type": "integer", "minimum": 1}}),
        _obj({"op": {"const": "discard"}, "offset": _UINT,
              "length": {"type": "integer", "minimum": 1}}),
        _obj({"op": {"const": "resize"}, "size": _UINT}),
        _obj({"op": {"const": "flush"}}),
        _obj({"op": {"const": "hydrate"}}),
        _obj({"op": {"const": "upgrade"}}),
        _obj({"op": {"const": "commit"}, "keep": {"type": "boolean"}}, required=["op"],
             desc="Commit every allocated cluster into the backing file, then empty the image "
                  "(keep true: leave it as it is)."),
        _obj({"op": {"const": "rebase"}, "backing": {"type": "string", "minLength": 1},
              "backing_format": {"type": "string", "minLength": 1},
              "unsafe": {"type": "boolean"}}, required=["op", "backing", "backing_format"],
             desc="Make backing (a name as the image stores it, of format backing_format) the "
                  "backing file; unsafe true changes only the names."),
        _obj({"op": {"const": "rebase"}, "backing": {"type": "null"},
              "unsafe": {"type": "boolean"}}, required=["op", "backing"],
             desc="Drop the backing file (the safe form first copies every cluster that would "
                  "read differently)."),
    ]}}


def _after_info() -> Schema:
    """``after.info``: the info object, where ``compatible_features`` may be left out when the
    spec lets a writer set ``all_allocated`` (every bit became 1) or leave it clear, and
    ``header_length`` and ``bitmap_offset`` when the operation writes a new file whose layout is
    the writer's (an upgrade from version 1; a rebase, which may move the bitmap to make room
    for the new names)."""
    info = _info()
    optional = ("compatible_features", "header_length", "bitmap_offset")
    info["required"] = [k for k in info["required"] if k not in optional]
    return info


def build_schema(flags: list[str], features: list[str]) -> Schema:
    rule_ids = sorted(all_rules())
    rule_ref = {"enum": rule_ids}
    rule_list = {"type": "array", "items": rule_ref, "uniqueItems": True}
    expect = _obj({
        "info": _info(),
        "extents": _extents(),
        "guest_sha256": _SHA,
        "probes": {"type": "array", "items": _obj({
            "offset": _UINT, "length": {"type": "integer", "minimum": 1}, "sha256": _SHA})},
        "refused_reads": {"type": "array", "items": _RANGE,
                          "description": "Reads that reach past virtual_size: each must be "
                                         "refused (READ-RANGE), never clipped."},
        "reader_duty": {"enum": ["ignore", "either"],
                        "description": "acceptable vectors: 'ignore' means every reader MUST "
                                       "open the image and read it as if the broken rules "
                                       "held, whatever its declared policy; 'either' means "
                                       "opening and refusing both conform."},
        "refusal": _obj({"rule": rule_ref}, desc="The image (for op vectors: the operations) "
                        "must be refused, citing this rule if the implementation cites one."),
        "ops": _ops(),
        "after": _obj({
            "files": {"type": "array", "items": _obj({
                "role": _ROLES, "path": {"type": "string", "minLength": 1}, "size": _UINT,
                "sha256": _SHA, "compare_length": _UINT,
                "ignore": {"type": "array", "items": _RANGE}},
                required=["role", "path", "sha256"],
                desc="sha256 is of the file's first compare_length bytes (all of it when "
                     "absent; size is then compared too), with every ignore range zeroed "
                     "first: bytes the spec leaves to the writer are never compared.")},
            "guest_sha256": _SHA, "extents": _extents(), "info": _after_info(),
            "probes": {"type": "array", "items": _obj({
                "offset": _UINT, "length": {"type": "integer", "minimum": 1}, "sha256": _SHA})},
            "open": {"type": "array", "items": {"type": "string", "minLength": 1},
                     "description": "What the spec leaves open after the ops (a SHOULD or a "
                                    "MAY), and so is not compared."}},
            required=["files", "extents", "info"],
            desc="State after the ops: every listed file has exactly this content (within "
                 "compare_length, outside ignore); files not listed hold contents the spec "
                 "leaves open, and so does everything 'open' names."),
    }, required=[], desc="Read vectors: info, extents, guest_sha256, probes. Invalid vectors: "
                         "refusal. Op vectors: info (before), ops, after, and refusal when the "
                         "operations must be refused with every file left unchanged.")
    vector = _obj({
        "id": {"type": "string", "maxLength": 100,
               "pattern": "^[a-z0-9]+(-[a-z0-9]+)*/[a-z0-9]+(-[a-z0-9]+)*$",
               "description": "area/slug; the directory is v2/<id> (spec 2.0) or v1/<id> "
                              "(spec 1)."},
        "description": {"type": "string", "minLength": 1},
        "spec": {"enum": ["1", "2.0"]},
        "kind": {"enum": ["parse", "read", "op"]},
        "result": {"enum": ["valid", "invalid", "acceptable"]},
        "exercises": rule_list,
        "violates": rule_list,
        "flags": {"type": "array", "items": {"enum": flags}, "uniqueItems": True},
        "requires": {"type": "array", "items": {"enum": features}, "uniqueItems": True},
        "entry": {"type": "string", "minLength": 1},
        "files": {"type": "array", "minItems": 1, "items": _obj(
            {"role": _ROLES, "path": {"type": "string", "minLength": 1}, "size": _UINT,
             "sha256": _SHA, "synth": {"enum": ["zeros"]}},
            required=["role", "path", "size", "sha256"],
            desc="Path relative to the vector directory. synth zeros: not committed; create "
                 "it sparse, size zero bytes.")},
        "expect": expect,
        "checker": _obj({
            "exit_code": {"enum": [0, 1, 2, 3]},
            "findings": {"type": "array", "items": _obj({
                "rule": rule_ref, "severity": {"enum": ["error", "warning", "info"]},
                "file_role": _ROLES, "offset": {"type": ["integer", "null"], "minimum": 0},
                "field": {"type": ["string", "null"]}})}},
            desc="What addcow-check reports on the vector's entry file."),
        "since": {**_SEMVER, "description": "Suite version that introduced the vector."},
        "changed": {**_SEMVER, "description": "Suite version that last changed its "
                    "expectation; equal to since if it never changed."},
        "generator": {"type": "string", "minLength": 1},
    })
    vector["allOf"] = [
        {"if": {"properties": {"result": {"const": "valid"}}},
         "then": {"properties": {"violates": {"maxItems": 0}}}},
        {"if": {"properties": {"result": {"enum": ["invalid", "acceptable"]}}},
         "then": {"properties": {"violates": {"minItems": 1}}}},
        {"if": {"properties": {"result": {"const": "acceptable"}}},
         "then": {"properties": {"flags": {"minItems": 1}}}},
    ]
    rule_entry = _obj({
        "title": {"type": "string"}, "level": {"enum": ["MUST", "SHOULD", "MAY"]},
        "severity": {"enum": ["error", "warning", "info"]},
        "applies_to": {"enum": ["file", "reader", "writer"]}, "anchor": {"type": "string"},
        "spec_since": {"type": "string"},
        "testability": {"enum": ["file", "reader", "writer", "untestable"]},
        "reader": {"enum": ["refuse", "ignore", "either", None],
                   "description": "What a reader does with a file that breaks the rule (file "
                                  "rules only; null otherwise)."},
        "unbreakable": {"type": "boolean"}})
    counts = _obj({
        "total": _UINT,
        "kind": _obj(dict.fromkeys(("parse", "read", "op"), _UINT)),
        "result": _obj(dict.fromkeys(("valid", "invalid", "acceptable"), _UINT))})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "manifest.schema.json",
        "title": "add-cow golden test vectors manifest",
        "description": "Every expectation of the add-cow conformance vectors. Integers are JSON "
                       "numbers; vectors that require big-int hold values above 2^53 - 1.",
        **_obj({
            "schema": {"const": "manifest.schema.json"},
            "manifest_version": _SEMVER,
            "suite_version": _SEMVER,
            "spec_versions": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "generator": _obj({"name": {"type": "string"}, "version": {"type": "string"}}),
            "rules": {"type": "object", "propertyNames": rule_ref,
                      "additionalProperties": rule_entry},
            "flags": {"type": "object", "propertyNames": {"enum": flags},
                      "additionalProperties": _obj({
                          "description": {"type": "string"},
                          "policy_choices": {"type": "array", "minItems": 1,
                                             "items": {"enum": ["accept", "refuse"]}}})},
            "features": {"type": "object", "propertyNames": {"enum": features},
                         "additionalProperties": {"type": "string"}},
            "retired": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "counts": counts,
            "vectors": {"type": "array", "items": {"$ref": "#/$defs/vector"}},
        }),
        "$defs": {"vector": vector},
    }
