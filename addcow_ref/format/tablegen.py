"""Generate ``fieldtable.py``, the construct-free copy of the schema's field tables.

``schema.py`` stays the one place the layout is written; this module derives from it, as
``rulesource.py`` derives ``rules.json`` from the spec. Every field's offset, size, C type,
documentation, rules, constraint and default is written out as a literal, and every ``checks``
entry (a construct ``this`` expression) is compiled to the equivalent Python function over the
raw values, so the tools' start-up path reads headers and evaluates single-field rules without
importing construct. ``tests/addcow_ref/test_fieldtable.py`` fails when the committed module is
not what this renders from the current schema (regenerate with
``python -m addcow_ref.format.tablegen``), and compares decoding and every check with
construct's own on random headers.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from construct import Struct
from construct.expr import BinExpr, UniExpr
from construct.expr import Path as ThisPath

from addcow_ref.format import schema
from addcow_ref.format.layout import FieldInfo, field_table

__all__ = ["MODULE_PATH", "STRUCTS", "check_source", "main", "render_module"]

#: The schema structs the table module carries, by their name in ``schema.py``.
STRUCTS = ("HEADER_V2", "HEADER_V1")

MODULE_PATH = Path(__file__).with_name("fieldtable.py")

_HEADER = '''\
# ruff: noqa: E501  (generated: one literal per line, as long as the schema's text)
"""The header field tables, generated from ``schema.py`` by ``tablegen.py``: do not edit.

The same :class:`~addcow_ref.format.layout.FieldInfo` records as ``layout.field_table`` derives
from the schema's structs (with each ``checks`` expression compiled to a Python function), so
reading a header needs no construct. Regenerate with ``python -m addcow_ref.format.tablegen``;
``tests/addcow_ref/test_fieldtable.py`` fails while this file is stale.
"""

from __future__ import annotations

from addcow_ref.format.layout import FieldInfo, HeaderTable

__all__ = [{names}]
'''


def _literal(value: Any) -> str:
    """Python source of a constant; all-zero byte strings as ``bytes(n)`` (a 2468-byte reserved
    field would otherwise be a 10 KB line)."""
    if isinstance(value, bytes) and value and not value.strip(b"\0"):
        return f"bytes({len(value)})"
    if isinstance(value, (int, bytes, str, bool)) or value is None:
        return repr(value)
    raise TypeError(f"no literal for {value!r} in a schema check")


#: Python's spelling of each operator a construct expression applies. Our own table, not
#: construct's ``opnames``: that one is only its ``repr`` text and differs between releases
#: (2.10.68 writes ``and`` for ``operator.and_``, 2.10.70 ``&``), which would make the
#: generated module depend on the construct installed. construct evaluates ``op(lhs, rhs)``,
#: so ``&`` is what ``operator.and_`` computes.
_OPERATORS: dict[Callable[..., Any], str] = {
    operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
    operator.floordiv: "//", operator.mod: "%", operator.pow: "**", operator.xor: "^",
    operator.lshift: "<<", operator.rshift: ">>", operator.and_: "&", operator.or_: "|",
    operator.gt: ">", operator.ge: ">=", operator.lt: "<", operator.le: "<=",
    operator.eq: "==", operator.ne: "!=",
}
_UNARY: dict[Callable[..., Any], str] = {operator.not_: "not", operator.neg: "-",
                                         operator.pos: "+"}


def check_source(expr: Any) -> str:
    """The Python expression, over a mapping ``v`` of field values, that evaluates to what the
    construct expression ``expr`` does on the same values (operator for operator)."""
    if isinstance(expr, BinExpr):
        lhs, rhs = check_source(expr.lhs), check_source(expr.rhs)
        if expr.op is operator.contains:  # contains(a, b) is "b in a"
            return f"({rhs} in {lhs})"
        if expr.op not in _OPERATORS:
            raise TypeError(f"unsupported operator in a schema check: {expr.op!r}")
        return f"({lhs} {_OPERATORS[expr.op]} {rhs})"
    if isinstance(expr, UniExpr):
        if expr.op not in _UNARY:
            raise TypeError(f"unsupported operator in a schema check: {expr.op!r}")
        return f"({_UNARY[expr.op]} {check_source(expr.operand)})"
    if isinstance(expr, ThisPath):
        shown = repr(expr)  # this['name']: a field of the struct being parsed, nothing deeper
        if not (shown.startswith("this[") and shown.count("[") == 1):
            raise TypeError(f"unsupported path in a schema check: {shown}")
        return "v" + shown[len("this"):]
    return _literal(expr)


def _field_source(info: FieldInfo) -> str:
    checks = "".join(f"\n            {rule!r}: lambda v: {check_source(expr)},"
                     for rule, expr in info.checks.items())
    closing = "\n        " if checks else ""
    return (f"    FieldInfo(\n"
            f"        name={info.name!r}, offset={info.offset}, size={info.size}, "
            f"ctype={info.ctype!r},\n"
            f"        doc={info.doc!r},\n"
            f"        rules={info.rules!r},\n"
            f"        constraint={info.constraint!r},\n"
            f"        default={_literal(info.default)}, subcon=None,\n"
            f"        checks={{{checks}{closing}}}),\n")


def render_module(structs: dict[str, Struct] | None = None) -> str:
    """The text of ``fieldtable.py`` for ``structs`` (default: the schema's :data:`STRUCTS`)."""
    chosen = structs if structs is not None else {n: getattr(schema, n) for n in STRUCTS}
    out = [_HEADER.format(names=", ".join(repr(n) for n in sorted(chosen)))]
    for name, struct in chosen.items():
        out.append(f"\n{name} = HeaderTable({name!r}, (\n")
        out.extend(_field_source(info) for info in field_table(struct))
        out.append("))\n")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    """Write ``fieldtable.py`` (``--check``: exit 1 if it is stale instead)."""
    args = sys.argv[1:] if argv is None else argv
    text = render_module()
    if args == ["--check"]:
        stale = MODULE_PATH.read_text("utf-8") != text
        if stale:
            print(f"{MODULE_PATH} is stale: run python -m addcow_ref.format.tablegen",
                  file=sys.stderr)
        return int(stale)
    MODULE_PATH.write_text(text, "utf-8")
    print(f"wrote {MODULE_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
