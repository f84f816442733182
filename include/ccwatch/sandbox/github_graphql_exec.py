"""A small GraphQL executor for the GitHub double: parse, variables, point cost, execution.

Only what GitHub's API needs from a query language: one operation per document (``query``),
variables with their declared types, inline fragments (``... on Type``), aliases,
``__typename``, literal and variable arguments.  Objects are :class:`Obj` (a typename, the
interfaces it satisfies, and its fields as values or resolvers), so the result has exactly the
fields the selection asks for, in selection order, as GitHub answers.

Errors copy GitHub's (graphql-ruby) shapes: ``{"type", "path", "locations", "message"}`` for
execution errors (EXCESSIVE_PAGINATION, NOT_FOUND, INVALID_CURSOR_ARGUMENTS), and
``{"path", "extensions", "locations", "message"}`` for validation errors (undefinedField,
variable coercion), which answer without ``data``.

The point cost follows GitHub's published rule ("Rate limits and query limits for the GraphQL
API", docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api):
add up the number of requests needed to fulfil each unique connection, assuming each reaches
its ``first``/``last`` limit, divide by 100, round to the nearest whole number; at least 1.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any

MAX_PAGE = 100
NODE_LIMIT = 500_000

_TOKEN = re.compile(r"""
    (?P<ws>[\s,\ufeff]+|\#[^\n]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$():=@\[\]{}|&])
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
""", re.X)


class GqlError(Exception):
    """An error that ends the request: ``errors`` only, no ``data``."""

    def __init__(self, message: str, line: int | None = None, col: int | None = None, **extra: Any):
        super().__init__(message)
        self.entry: dict[str, Any] = dict(extra)
        if line is not None:
            self.entry["locations"] = [{"line": line, "column": col}]
        self.entry["message"] = message


class FieldError(Exception):
    """An execution error of one field: the field is null, the error is listed with its path."""

    def __init__(self, type_: str, message: str):
        super().__init__(message)
        self.type = type_
        self.message = message


class _Null(Exception):
    """A non-null field resolved to null: the enclosing object becomes null."""


@dataclass
class Var:
    name: str


@dataclass
class Field:
    name: str
    alias: str | None
    args: dict[str, Any]
    selections: list | None
    line: int
    col: int


@dataclass
class Fragment:
    on: str | None
    selections: list


@dataclass
class Operation:
    kind: str
    name: str | None
    variables: list[tuple[str, str, Any]]  # (name, type text e.g. "[ID!]!", default)
    selections: list
    line: int
    col: int


@dataclass
class Obj:
    """A GraphQL object: ``fields`` maps a field name to a value or to ``resolver(args, name)``."""

    typename: str
    fields: dict[str, Any]
    implements: tuple[str, ...] = ()

    def is_a(self, type_name: str) -> bool:
        return type_name == self.typename or type_name in self.implements


# ---------------------------------------------------------------------------------- parsing
class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.lines = [0] + [m.end() for m in re.finditer("\n", text)]
        self.toks: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                line, col = self.where(pos)
                raise GqlError(f'Parse error on "{text[pos]}" (error) at [{line}, {col}]', line, col)
            if m.lastgroup != "ws":
                self.toks.append((m.lastgroup, m.group(), pos))
            pos = m.end()
        self.i = 0

    def where(self, pos: int) -> tuple[int, int]:
        n = bisect.bisect_right(self.lines, pos) - 1
        return n + 1, pos - self.lines[n] + 1

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i] if self.i < len(self.toks) else ("eof", "", len(self.text))

    def fail(self):
        kind, val, pos = self.peek()
        line, col = self.where(pos)
        shown = "end of file" if kind == "eof" else val
        raise GqlError(f'Parse error on "{shown}" ({kind.upper()}) at [{line}, {col}]', line, col)

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind) or tok[0] == "eof":
            self.fail()
        self.i += 1
        return tok

    def accept(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] != "str":
            self.i += 1
            return True
        return False

    def document(self) -> list[Operation]:
        ops = []
        while self.peek()[0] != "eof":
            ops.append(self.operation())
        if not ops:
            self.fail()
        return ops

    def operation(self) -> Operation:
        kind, val, pos = self.peek()
        line, col = self.where(pos)
        if val == "{":
            return Operation("query", None, [], self.selection_set(), line, col)
        if val not in ("query", "mutation", "subscription"):
            self.fail()
        self.i += 1
        name = self.take(kind="name")[1] if self.peek()[0] == "name" else None
        variables = []
        if self.accept("("):
            while not self.accept(")"):
                self.take("$")
                vname = self.take(kind="name")[1]
                self.take(":")
                vtype = self.type_ref()
                default = self.value() if self.accept("=") else None
                variables.append((vname, vtype, default))
        return Operation(val, name, variables, self.selection_set(), line, col)

    def type_ref(self) -> str:
        if self.accept("["):
            inner = self.type_ref()
            self.take("]")
            text = f"[{inner}]"
        else:
            text = self.take(kind="name")[1]
        return text + "!" if self.accept("!") else text

    def selection_set(self) -> list:
        self.take("{")
        out: list = []
        while not self.accept("}"):
            if self.peek()[0] == "spread":
                self.i += 1
                on = None
                if self.peek()[1] == "on":
                    self.i += 1
                    on = self.take(kind="name")[1]
                elif self.peek()[0] == "name":
                    raise GqlError("Fragment spreads are not supported by the sandbox's GraphQL double",
                                   *self.where(self.peek()[2]))
                out.append(Fragment(on, self.selection_set()))
                continue
            _, name, pos = self.take(kind="name")
            line, col = self.where(pos)
            alias = None
            if self.accept(":"):
                alias, name = name, self.take(kind="name")[1]
            args = {}
            if self.accept("("):
                while not self.accept(")"):
                    key = self.take(kind="name")[1]
                    self.take(":")
                    args[key] = self.value()
            sels = self.selection_set() if self.peek()[1] == "{" and self.peek()[0] == "punct" else None
            out.append(Field(name, alias, args, sels, line, col))
        return out

    def value(self) -> Any:
        kind, val, _ = self.peek()
        if kind == "punct" and val == "$":
            self.i += 1
            return Var(self.take(kind="name")[1])
        if kind == "punct" and val == "[":
            self.i += 1
            items = []
            while not self.accept("]"):
                items.append(self.value())
            return items
        if kind == "punct" and val == "{":
            self.i += 1
            obj = {}
            while not self.accept("}"):
                key = self.take(kind="name")[1]
                self.take(":")
                obj[key] = self.value()
            return obj
        self.i += 1
        if kind == "num":
            return float(val) if any(c in val for c in ".eE") else int(val)
        if kind == "str":
            import json
            return json.loads(val)
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(val, val)  # enums stay their name
        self.i -= 1
        self.fail()


def parse(text: str) -> list[Operation]:
    return _Parser(text).document()


# ---------------------------------------------------------------------------------- variables
_SCALARS = {"Int": int, "Float": (int, float), "String": str, "ID": (str, int), "Boolean": bool,
            "GitTimestamp": str, "DateTime": str, "URI": str, "GitObjectID": str}


def _coerce_ok(value: Any, type_text: str) -> bool:
    if type_text.endswith("!"):
        return value is not None and _coerce_ok(value, type_text[:-1])
    if value is None:
        return True
    if type_text.startswith("["):
        inner = type_text[1:-1]
        return all(_coerce_ok(v, inner) for v in value) if isinstance(value, list) else _coerce_ok(value, inner)
    want = _SCALARS.get(type_text)
    if want is None:
        return True  # input objects and enums: taken as given
    if type_text != "Boolean" and isinstance(value, bool):
        return False
    return isinstance(value, want)


def bind_variables(op: Operation, given: dict | None) -> dict[str, Any]:
    given = given or {}
    out = {}
    for name, type_text, default in op.variables:
        value = given.get(name, default)
        if not _coerce_ok(value, type_text):
            explanation = ("Expected value to not be null" if value is None
                           else f"Could not coerce value {value!r} to {type_text.rstrip('!')}")
            raise GqlError(f"Variable ${name} of type {type_text} was provided invalid value", op.line, op.col,
                           extensions={"value": value, "problems": [{"path": [], "explanation": explanation}]})
        out[name] = value
    return out


def resolve_args(args: dict, variables: dict) -> dict:
    def sub(v):
        if isinstance(v, Var):
            return variables.get(v.name)
        if isinstance(v, list):
            return [sub(x) for x in v]
        if isinstance(v, dict):
            return {k: sub(x) for k, x in v.items()}
        return v
    return {k: sub(v) for k, v in args.items()}


# ---------------------------------------------------------------------------------- cost
def _page(args: dict) -> int | None:
    sizes = [v for k in ("first", "last") if isinstance(v := args.get(k), int)]
    return max(sizes) if sizes else None


def connection_requests(selections: list, variables: dict, parents: int = 1) -> tuple[int, int]:
    """(requests, nodes) of a selection set: GitHub's count of connection requests and of nodes."""
    requests = nodes = 0
    for sel in selections:
        if isinstance(sel, Fragment):
            r, n = connection_requests(sel.selections, variables, parents)
            requests, nodes = requests + r, nodes + n
            continue
        args = resolve_args(sel.args, variables)
        size = _page(args)
        inner = parents
        if size is not None:
            requests += parents
            inner = parents * size
            nodes += inner
        elif isinstance(args.get("ids"), list):
            inner = parents * len(args["ids"])
        if sel.selections:
            r, n = connection_requests(sel.selections, variables, inner)
            requests, nodes = requests + r, nodes + n
    return requests, nodes


def point_cost(requests: int) -> int:
    """GitHub's rule: requests / 100 rounded to the nearest whole number (halves up), minimum 1."""
    return max(1, (requests + 50) // 100)


# ---------------------------------------------------------------------------------- execution
@dataclass
class Execution:
    variables: dict
    non_null: frozenset = frozenset()
    errors: list = field(default_factory=list)
    undefined: list = field(default_factory=list)
    op_label: str = "query"

    def select(self, obj: Obj, selections: list, path: list) -> dict:
        out: dict[str, Any] = {}
        for sel in selections:
            if isinstance(sel, Fragment):
                if sel.on is None or obj.is_a(sel.on):
                    out.update(self.select(obj, sel.selections, path))
                continue
            key = sel.alias or sel.name
            if sel.name == "__typename":
                out[key] = obj.typename
                continue
            if sel.name not in obj.fields:
                self.undefined.append({
                    "path": [self.op_label, *[p for p in path if isinstance(p, str)], key],
                    "extensions": {"code": "undefinedField", "typeName": obj.typename, "fieldName": sel.name},
                    "locations": [{"line": sel.line, "column": sel.col}],
                    "message": f"Field '{sel.name}' doesn't exist on type '{obj.typename}'"})
                continue
            here = [*path, key]
            value = obj.fields[sel.name]
            try:
                if callable(value):
                    value = value(resolve_args(sel.args, self.variables), sel.name)
                value = self.complete(value, sel, here)
            except FieldError as err:
                self.errors.append({"type": err.type, "path": here,
                                    "locations": [{"line": sel.line, "column": sel.col}], "message": err.message})
                value = None
            except _Null:
                value = None
            if value is None and (obj.typename, sel.name) in self.non_null:
                raise _Null()
            out[key] = value
        return out

    def complete(self, value: Any, sel: Field, path: list) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            items = []
            for i, v in enumerate(value):
                if isinstance(v, FieldError):  # one element failed (e.g. nodes(ids:) with an unknown id)
                    self.errors.append({"type": v.type, "path": [*path, i],
                                        "locations": [{"line": sel.line, "column": sel.col}], "message": v.message})
                    items.append(None)
                    continue
                try:
                    items.append(self.complete(v, sel, [*path, i]))
                except _Null:
                    items.append(None)
            return items
        if isinstance(value, Obj):
            if sel.selections is None:
                raise FieldError("SELECTION_MISSING", f"Field must have selections (field '{sel.name}' returns "
                                                      f"{value.typename} but has no selections.)")
            return self.select(value, sel.selections, path)
        return value

    def run(self, root: Obj, op: Operation) -> dict | None:
        try:
            return self.select(root, op.selections, [])
        except _Null:
            return None
