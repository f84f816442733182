"""The GitHub GraphQL double's engine: graphql-core over GitHub's published schema (the committed cut).

The schema is ``sandbox/github_schema/github.graphql``: GitHub's SDL (``@octokit/graphql-schema``)
cut by ``scripts/cut_github_schema.py`` to the types and fields ccwatch's documents reach, fields
copied verbatim.  graphql-core enforces it exactly as GitHub does what matters to ccwatch: a field
the schema lacks is a validation error; an ``Int`` is 32-bit signed, so a resolver value past 2**31
there (a real review or check-run id) is a field error, "Int cannot represent non 32-bit signed
integer value: N", ``null`` at that path and an ``errors`` entry; ``BigInt`` is a string
(published: "Since the value may exceed the size of a 32-bit integer, it's encoded as a string").

:func:`prepare` does what GitHub does before it executes: parse, validate, coerce the variables,
check every connection's ``first``/``last`` and count the point cost; :func:`execute` runs a
prepared query over a root of plain dicts (:func:`field_resolver`: a dict key's value, a callable
value is a resolver called with the field's arguments; :func:`type_resolver`: an interface/union
member by the dict's ``__typename``).  Answers follow GitHub's shapes (graphql-ruby):

* execution errors ``{"type", "path", "locations", "message"}`` with ``data``; ``type`` comes from a
  :class:`GitHubError` a resolver raised (NOT_FOUND, INVALID_CURSOR_ARGUMENTS ...); graphql-core's
  own errors (the ``Int`` range) have none: what GitHub answers for an out-of-range ``Int`` is not
  documented, and ccwatch fails on any error;
* validation errors without ``data``, ``{"path", "extensions": {"code", ...}, "locations",
  "message"}``: an undefined field in graphql-ruby's words ("Field 'x' doesn't exist on type 'Y'",
  ``code: undefinedField``), others in graphql-core's (``code: validationError``); a variable in
  graphql-ruby's ("Variable $base of type String! was provided invalid value");
* pagination errors without ``data`` (GitHub needs the bounds to compute the cost):
  MISSING_PAGINATION_BOUNDARIES, EXCESSIVE_PAGINATION (over 100), and, for both ``first`` and
  ``last`` or a bound below 1, INVALID_PAGINATION_ARGUMENTS (GitHub's wording; that ``type`` is
  not seen in public samples: it is this double's choice, set in one place, :data:`INVALID_PAGINATION`).

The point cost is GitHub's published rule ("Rate limits and query limits for the GraphQL API"):
add up the requests needed to fulfil each connection, assuming each reaches its ``first``/``last``
(a nested connection once per parent node; ``nodes(ids:)`` multiplies by the ids), divide by 100,
round to the nearest whole number, at least 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_schema,
    execute_sync,
    get_operation_ast,
    parse,
    validate,
    value_from_ast_untyped,
    visit,
)
from graphql.error import GraphQLSyntaxError
from graphql.execution.values import get_variable_values

from ccwatch.sandbox.github_graphql_errors import (
    error_locations,
    execution_error,
    validation_error,
    variable_error,
)
from ccwatch.sandbox.github_graphql_paging import is_connection

SCHEMA_PATH = Path(__file__).resolve().parent / "github_schema" / "github.graphql"
MAX_PAGE = 100       # GitHub: first/last between 1 and 100
MIN_PAGE = 1         # the schema's Int allows 0; GitHub documents 1..100
NODE_LIMIT = 500_000
INVALID_PAGINATION = "INVALID_PAGINATION_ARGUMENTS"
STRING_SCALARS = ("DateTime", "GitTimestamp", "URI", "GitObjectID", "Date", "HTML", "GitRefname")


# ------------------------------------------------------------------------------ schema
def _bigint_out(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not re.fullmatch(r"-?\d+", str(value)):
        raise TypeError(f"BigInt cannot represent a non-integer value: {value!r}")
    return str(int(value))


def _bigint_in(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not re.fullmatch(r"-?\d+", str(value)):
        raise TypeError(f"BigInt cannot represent a non-integer value: {value!r}")
    return int(value)


def _string_out(name: str) -> Callable[[Any], str]:
    def serialize(value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"{name} cannot represent a non-string value: {value!r}")
        return value
    return serialize


def _set_coercion(scalar: Any, output: Callable[[Any], Any], input_: Callable[[Any], Any] | None = None) -> None:
    """A scalar's output (and input) coercion, under graphql-core 3.2's and 3.3's names alike."""
    scalar.serialize = output
    if hasattr(scalar, "coerce_output_value"):
        scalar.coerce_output_value = output
    if input_ is not None:
        scalar.parse_value = input_
        if hasattr(scalar, "coerce_input_value"):
            scalar.coerce_input_value = input_


@cache
def load_schema(path: Path = SCHEMA_PATH) -> GraphQLSchema:
    """The cut, built strictly, with GitHub's custom scalars' coercions (an SDL gives none)."""
    schema = build_schema(path.read_text(encoding="utf-8"))
    for name, scalar in schema.type_map.items():
        if name == "BigInt":
            _set_coercion(scalar, _bigint_out, _bigint_in)
        elif name in STRING_SCALARS:
            _set_coercion(scalar, _string_out(name))
    return schema


# ------------------------------------------------------------------------------ resolvers
def field_resolver(source: Any, info: Any, **args: Any) -> Any:
    """Objects are dicts: a key's value; a callable value is a resolver, called with the arguments."""
    value = source.get(info.field_name) if isinstance(source, dict) else None
    return value(args) if callable(value) else value


def type_resolver(value: Any, *_: Any) -> str | None:
    """An interface or union member: the dict's ``__typename``."""
    return value.get("__typename") if isinstance(value, dict) else None


# ------------------------------------------------------------------------------ before execution
def _args(node: FieldNode, variables: dict[str, Any]) -> dict[str, Any]:
    return {a.name.value: value_from_ast_untyped(a.value, variables) for a in node.arguments or ()}


@dataclass(frozen=True)
class _Site:
    """A connection field that takes ``first``: where it is and its bound arguments (AST values)."""

    path: tuple[str, ...]
    name: str
    location: dict[str, int] | None
    first: Any
    last: Any


class _Sites(Visitor):
    """Every connection field of an operation that takes ``first``, with its response path."""

    def __init__(self, type_info: TypeInfo):
        super().__init__()
        self.type_info, self.path, self.sites = type_info, [], []

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        self.path.append(node.alias.value if node.alias else node.name.value)
        fdef = self.type_info.get_field_def()
        if fdef is None or not is_connection(fdef.type) or "first" not in fdef.args:
            return
        where = node.loc.source.get_location(node.loc.start) if node.loc else None
        args = {a.name.value: a.value for a in node.arguments or ()}
        self.sites.append(_Site(tuple(self.path), node.name.value,
                                {"line": where.line, "column": where.column} if where else None,
                                args.get("first"), args.get("last")))

    def leave_field(self, *_: Any) -> None:
        self.path.pop()


def pagination_errors(sites: tuple[_Site, ...], variables: dict[str, Any]) -> list[dict[str, Any]]:
    """GitHub's pagination checks on every connection that takes ``first``, for these variables."""
    errors: list[dict[str, Any]] = []
    for site in sites:
        first, last = (None if node is None else value_from_ast_untyped(node, variables)
                       for node in (site.first, site.last))
        name = site.name

        def error(type_: str, message: str, site: _Site = site) -> None:
            entry: dict[str, Any] = {"type": type_, "path": list(site.path)}
            if site.location is not None:
                entry["locations"] = [site.location]
            errors.append({**entry, "message": message})

        if first is None and last is None:
            error("MISSING_PAGINATION_BOUNDARIES",
                  f"You must provide a `first` or `last` value to properly paginate the `{name}` connection.")
        elif first is not None and last is not None:
            error(INVALID_PAGINATION, f"Passing both `first` and `last` to paginate the `{name}` connection is "
                                      "not supported.")
        for key, size in (("first", first), ("last", last)):
            if isinstance(size, int) and size > MAX_PAGE:
                error("EXCESSIVE_PAGINATION", f"Requesting {size} records on the `{name}` connection exceeds the "
                                              f"`{key}` limit of {MAX_PAGE} records.")
            elif isinstance(size, int) and size < MIN_PAGE:
                error(INVALID_PAGINATION, f"`{key}` on the `{name}` connection must be between {MIN_PAGE} and "
                                          f"{MAX_PAGE}.")
    return errors


def connection_requests(selection_set: SelectionSetNode | None, variables: dict[str, Any],
                        fragments: dict[str, Any], parents: int = 1) -> tuple[int, int]:
    """(requests, nodes) of a selection set: GitHub's count of connection requests and of nodes.
    A field with ``first``/``last`` is one request per parent and multiplies the parents of what it
    selects by its page size; ``nodes(ids:)`` multiplies them by the number of ids."""
    requests = nodes = 0
    for sel in (selection_set.selections if selection_set else ()):
        if isinstance(sel, InlineFragmentNode):
            r, n = connection_requests(sel.selection_set, variables, fragments, parents)
        elif isinstance(sel, FragmentSpreadNode):
            r, n = connection_requests(fragments[sel.name.value].selection_set, variables, fragments, parents)
        else:
            args = _args(sel, variables)
            sizes = [v for k in ("first", "last") if isinstance(v := args.get(k), int) and not isinstance(v, bool)]
            inner, r, n = parents, 0, 0
            if sizes:
                r, inner = parents, parents * max(sizes)
                n = inner
            elif isinstance(args.get("ids"), list):
                inner = parents * len(args["ids"])
            sub_r, sub_n = connection_requests(sel.selection_set, variables, fragments, inner)
            r, n = r + sub_r, n + sub_n
        requests, nodes = requests + r, nodes + n
    return requests, nodes


def point_cost(requests: int) -> int:
    """GitHub's rule: requests / 100 rounded to the nearest whole number (halves up), minimum 1."""
    return max(1, (requests + 50) // 100)


def _cost(doc: DocumentNode, op: OperationDefinitionNode, variables: dict[str, Any]) -> tuple[int, int, int]:
    fragments = {d.name.value: d for d in doc.definitions if d.kind == "fragment_definition"}
    requests, nodes = connection_requests(op.selection_set, variables, fragments)
    return point_cost(requests), requests, nodes


def document_cost(query: str, variables: dict[str, Any], operation_name: str | None = None) -> tuple[int, int]:
    """(points, requests) of one operation of a document with these variables."""
    doc = parse(query)
    op = get_operation_ast(doc, operation_name)
    if op is None:
        raise ValueError(f"no operation {operation_name!r} in the document")
    points, requests, _ = _cost(doc, op, variables)
    return points, requests


@dataclass
class Prepared:
    """A query GitHub would execute: its document, operation, coerced variables and cost."""

    doc: DocumentNode
    op: OperationDefinitionNode
    given: dict[str, Any]       # the variables as sent (graphql-core coerces them again)
    variables: dict[str, Any]   # coerced, defaults applied (for the cost and the pagination checks)
    cost: int
    nodes: int


@dataclass(frozen=True)
class _Static:
    """What a document gives before its variables: parsed, validated, its operation and sites."""

    doc: DocumentNode | None
    errors: tuple[dict[str, Any], ...]
    op: OperationDefinitionNode | None = None
    sites: tuple[_Site, ...] = ()


@lru_cache(maxsize=256)
def _static(schema: GraphQLSchema, query: str, operation_name: str | None) -> _Static:
    """Parse, validate and find the operation and its connections, once per document: the double
    answers the same few documents all night (graphql-core's validation is most of a prepare)."""
    try:
        doc = parse(query)
    except GraphQLSyntaxError as err:
        return _Static(None, ({"locations": error_locations(err), "message": err.message},))
    invalid = validate(schema, doc)
    if invalid:
        return _Static(doc, tuple(validation_error(e, doc) for e in invalid))
    op = get_operation_ast(doc, operation_name)
    if op is None:
        return _Static(doc, ({"message": f'No operation named "{operation_name}"' if operation_name
                              else "An operation name is required"},))
    if op.operation.value != "query":
        return _Static(doc, ({"message": f"The sandbox's GitHub double answers queries only, not a "
                                         f"{op.operation.value}"},))
    type_info = TypeInfo(schema)
    sites = _Sites(type_info)
    visit(op, TypeInfoVisitor(type_info, sites))
    return _Static(doc, (), op, tuple(sites.sites))


def prepare(schema: GraphQLSchema, query: str, operation_name: str | None,
            variables: dict[str, Any]) -> Prepared | list[dict[str, Any]]:
    """The prepared query, or the ``errors`` GitHub answers without ``data`` (nothing charged)."""
    static = _static(schema, query, operation_name)
    if static.errors or static.doc is None or static.op is None:
        return [dict(e) for e in static.errors]
    doc, op = static.doc, static.op
    coerced = get_variable_values(schema, op.variable_definitions or (), variables)
    if isinstance(coerced, list):
        return [variable_error(e, op, variables) for e in coerced]
    values = dict(coerced.coerced)
    pages = pagination_errors(static.sites, values)
    if pages:
        return pages
    points, _, nodes = _cost(doc, op, values)
    if nodes > NODE_LIMIT:
        return [{"type": "MAX_NODE_LIMIT_EXCEEDED",
                 "message": f"This query requests up to {nodes:,} possible nodes which exceeds the maximum "
                            f"limit of {NODE_LIMIT:,}."}]
    return Prepared(doc, op, variables, values, points, nodes)


def execute(schema: GraphQLSchema, prepared: Prepared, root: dict[str, Any]) -> dict[str, Any]:
    """GitHub's answer to a prepared query over ``root``: ``{"data": ...}`` plus ``errors`` if any."""
    result = execute_sync(schema, prepared.doc, root_value=root, variable_values=prepared.given,
                          operation_name=prepared.op.name.value if prepared.op.name else None,
                          field_resolver=field_resolver, type_resolver=type_resolver)
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        out["errors"] = [execution_error(e) for e in result.errors]
    return out

