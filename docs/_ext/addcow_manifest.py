"""Directives for the manifest format page: the manifest's JSON Schema and flags as tables.

An implementer in another language reads ``manifest.json`` with nothing but its schema; the raw
schema is 35 KB of nested JSON, and the flag names a vector's result depends on appear only in
prose. Both tables are generated when the site is built, from the committed
``vectors/manifest.schema.json`` and ``vectors/manifest.json``, so the page cannot drift from
the suite:

* ``.. addcow-manifest-schema::`` lists every property, one row per JSON path
  (``vectors[].files[].sha256``; ``{name}`` stands for a key of a map), with its type,
  whether it is required, its allowed values and the schema's own description. An enum that is
  exactly the set of rule IDs is shown as a link to the rule index rather than 84 names.
* ``.. addcow-manifest-flags::`` lists the manifest's ``flags``: each name, the outcomes
  (``policy_choices``) it allows, its meaning and the vectors that carry it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from typing import Any

from addcow_spec import manifest_path
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from addcow_ref.format.rules import all_rules

__all__ = ["SchemaRow", "schema_rows"]

#: Enums longer than this are listed in a sentence that says how many values they have.
_ENUM_INLINE = 16


@dataclasses.dataclass(frozen=True)
class SchemaRow:
    """One property of the schema as the table shows it."""

    path: str
    type: str
    required: bool
    values: str
    description: str


def _literal(value: object) -> str:
    return f"``{json.dumps(value)}``" if not isinstance(value, str) else f"``{value}``"


def _type(node: Mapping[str, Any]) -> str:
    if "const" in node:
        return "constant"
    if "enum" in node:
        kinds = {type(v).__name__ for v in node["enum"] if v is not None}
        return "enum" if kinds == {"str"} else "enum of " + "/".join(
            sorted({"str": "string", "int": "integer"}.get(k, k) for k in kinds))
    if "oneOf" in node:
        return "one of the forms below"
    t = node.get("type", "any")
    return " or ".join(t) if isinstance(t, list) else str(t)


def _enum_text(values: list[Any]) -> str:
    if {v for v in values if isinstance(v, str)} == set(all_rules()):
        return f"a rule ID (any of the {len(values)} in the :doc:`/rules`)"
    if len(values) > _ENUM_INLINE:
        return (f"one of {len(values)} values: " + ", ".join(_literal(v) for v in values[:4])
                + ", …")
    return ", ".join("``null``" if v is None else _literal(v) for v in values)


def _values(node: Mapping[str, Any]) -> str:
    parts: list[str] = []
    if "const" in node:
        parts.append(_literal(node["const"]))
    if "enum" in node:
        parts.append(_enum_text(node["enum"]))
    if "pattern" in node:
        parts.append(f"matches ``{node['pattern']}``")
    for key, word in (("minimum", ">="), ("maximum", "<="), ("minLength", "length >="),
                      ("maxLength", "length <="), ("minItems", "items >=")):
        if key in node:
            parts.append(f"{word} {node[key]}")
    if node.get("uniqueItems"):
        parts.append("no repeats")
    items = node.get("items")
    if isinstance(items, Mapping) and "enum" in items:
        parts.append("items: " + _enum_text(items["enum"]))
    names = node.get("propertyNames")
    if isinstance(names, Mapping) and "enum" in names:
        parts.append("keys: " + _enum_text(names["enum"]))
    return "; ".join(parts)


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return _resolve(target, root)


def _form_label(form: Mapping[str, Any], n: int) -> str:
    consts = [f'{k} "{v["const"]}"' for k, v in form.get("properties", {}).items()
              if isinstance(v, Mapping) and "const" in v]
    return f"form {n}" + (f" ({', '.join(consts)})" if consts else "")


def _walk(path: str, node: Mapping[str, Any], root: Mapping[str, Any], required: bool
          ) -> Iterator[SchemaRow]:
    node = _resolve(node, root)
    if path:
        yield SchemaRow(path, _type(node), required, _values(node),
                        str(node.get("description", "")))
    for n, form in enumerate(node.get("oneOf", ()), 1):
        yield from _walk(f"{path} {_form_label(_resolve(form, root), n)}", form, root, True)
    needed = set(node.get("required", ()))
    for name, sub in node.get("properties", {}).items():
        yield from _walk(f"{path}.{name}" if path else name, sub, root, name in needed)
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield from _walk(f"{path}.{{name}}", extra, root, False)
    items = node.get("items")
    if isinstance(items, Mapping):
        items = _resolve(items, root)
        if "properties" in items or "oneOf" in items or "additionalProperties" in items:
            yield from _walk(f"{path}[]", items, root, True)


def schema_rows(schema: Mapping[str, Any]) -> list[SchemaRow]:
    """Every property of ``schema``, depth first, in the schema's own order."""
    return list(_walk("", schema, schema, True))


def _cell(text: str) -> str:
    """A list-table cell: continuation lines indented under the bullet."""
    return text.replace("\n", " ") if text else "—"


class _ManifestDirective(SphinxDirective):
    def _load(self, name: str) -> Any:
        path = manifest_path(self.config.addcow_vectors_manifest).parent / name
        self.env.note_dependency(str(path))
        try:
            return json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise self.error(f"{self.name}: cannot read {path}: {e}") from e

    def _table(self, title: str, widths: str, header: list[str],
               rows: list[list[str]]) -> list[nodes.Node]:
        lines = [f".. list-table:: {title}", f"   :widths: {widths}", "   :header-rows: 1",
                 "   :class: addcow-manifest-table", ""]
        for row in [header, *rows]:
            lines.append(f"   * - {_cell(row[0])}")
            lines += [f"     - {_cell(c)}" for c in row[1:]]
        return self.parse_text_to_nodes("\n".join(lines))


class SchemaTable(_ManifestDirective):
    """Every property of ``manifest.schema.json``."""

    def run(self) -> list[nodes.Node]:
        rows = [[f"``{r.path}``" if " " not in r.path else
                 f"``{r.path.split(' ', 1)[0]}`` {r.path.split(' ', 1)[1]}",
                 f"{r.type}, {'required' if r.required else 'optional'}", r.values,
                 r.description]
                for r in schema_rows(self._load("manifest.schema.json"))]
        return self._table("manifest.json, property by property", "30 14 28 28",
                           ["Property", "Type", "Values", "Meaning"], rows)


class FlagsTable(_ManifestDirective):
    """The manifest's ``flags``: name, allowed outcomes, meaning and the vectors that carry it."""

    def run(self) -> list[nodes.Node]:
        manifest = self._load("manifest.json")
        rows = []
        for name, flag in manifest["flags"].items():
            carriers = [v["id"] for v in manifest["vectors"] if name in v["flags"]]
            rows.append([f"``{name}``", ", ".join(f"``{c}``" for c in flag["policy_choices"]),
                         flag["description"],
                         ", ".join(f":vector:`{v}`" for v in carriers) or "—"])
        return self._table("Flags and the outcomes (``policy_choices``) they allow", "22 12 40 26",
                           ["Flag", "Outcomes allowed", "Meaning", "Vectors"], rows)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("addcow-manifest-schema", SchemaTable)
    app.add_directive("addcow-manifest-flags", FlagsTable)
    app.add_css_file("addcow-manifest.css")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
