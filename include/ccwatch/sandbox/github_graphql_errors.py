"""GitHub-shaped GraphQL errors for the API double (graphql-ruby's shapes, as GitHub answers):
execution errors with ``type``/``path``/``locations``, validation errors without ``data`` with
graphql-ruby's wording for an undefined field and a bad variable.  See ``github_graphql_exec``.
"""

from __future__ import annotations

import re
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    Visitor,
    visit,
)


class GitHubError(GraphQLError):
    """An execution error GitHub names with a ``type`` (NOT_FOUND, INVALID_CURSOR_ARGUMENTS ...)."""

    def __init__(self, type_: str, message: str):
        super().__init__(message, extensions={"type": type_})


def error_locations(err: GraphQLError) -> list[dict[str, int]]:
    return [{"line": loc.line, "column": loc.column} for loc in err.locations or ()]


def execution_error(err: GraphQLError) -> dict[str, Any]:
    """An error of execution in GitHub's shape: type (when GitHub names one), path, locations, message."""
    out: dict[str, Any] = {}
    type_ = (err.extensions or {}).get("type")
    if type_:
        out["type"] = type_
    if err.path is not None:
        out["path"] = list(err.path)
    if err.locations:
        out["locations"] = error_locations(err)
    out["message"] = err.message
    return out


_UNDEFINED = re.compile(r"Cannot query field '(?P<field>\w+)' on type '(?P<type>\w+)'")


class _PathTo(Visitor):
    """graphql-ruby's path of a validation error: ``["query Name", field, field ...]``."""

    def __init__(self, target: Any):
        super().__init__()
        self.target, self.stack, self.found = target, [], None

    def enter(self, node: Any, *_: Any) -> None:
        if isinstance(node, OperationDefinitionNode):
            self.stack.append(f"{node.operation.value} {node.name.value}" if node.name else node.operation.value)
        elif isinstance(node, FieldNode):
            self.stack.append(node.alias.value if node.alias else node.name.value)
        if node is self.target and self.found is None:
            self.found = list(self.stack)

    def leave(self, node: Any, *_: Any) -> None:
        if isinstance(node, (OperationDefinitionNode, FieldNode)):
            self.stack.pop()


def validation_error(err: GraphQLError, doc: DocumentNode) -> dict[str, Any]:
    """A static validation error in graphql-ruby's shape, once per place in the document."""
    out: dict[str, Any] = {}
    if err.nodes:
        finder = _PathTo(err.nodes[0])
        visit(doc, finder)
        if finder.found:
            out["path"] = finder.found
    m = _UNDEFINED.search(err.message)
    if m:
        out["extensions"] = {"code": "undefinedField", "typeName": m["type"], "fieldName": m["field"]}
        message = f"Field '{m['field']}' doesn't exist on type '{m['type']}'"
    else:
        out["extensions"] = {"code": "validationError"}
        message = err.message
    if err.locations:
        out["locations"] = error_locations(err)
    out["message"] = message
    return out


_VARIABLE = re.compile(r"""^Variable ['"]\$(?P<name>\w+)['"] (?:has invalid value|of required type)[: ]*(?P<why>.*)$""", re.S)


def variable_error(err: GraphQLError, op: OperationDefinitionNode, given: dict[str, Any]) -> dict[str, Any]:
    """A variable that does not coerce, in graphql-ruby's words."""
    m = _VARIABLE.match(err.message)
    name = m["name"] if m else "?"
    vdef = next((v for v in op.variable_definitions or () if v.variable.name.value == name), None)
    type_text = _type_text(vdef.type) if vdef is not None else "?"
    value = given.get(name)
    why = (m["why"] if m else err.message).strip() or err.message
    return {"extensions": {"value": value, "problems": [{"path": [], "explanation": why}]},
            "locations": error_locations(err), "message": f"Variable ${name} of type {type_text} was provided invalid value"}


def _type_text(node: Any) -> str:
    kind = node.kind
    if kind == "non_null_type":
        return _type_text(node.type) + "!"
    if kind == "list_type":
        return f"[{_type_text(node.type)}]"
    return node.name.value
