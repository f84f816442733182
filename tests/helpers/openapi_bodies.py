"""Check REST bodies against GitHub's published OpenAPI description (the committed cut,
include/ccwatch/sandbox/github_schema/github_rest.json; scripts/cut_github_openapi.py).

Two kinds of problem in a body: ``schema`` (it does not validate: jsonschema Draft 4 after
:func:`openapi30_to_jsonschema` turned OpenAPI 3.0's ``nullable`` into JSON Schema) and
``undocumented`` (a key the published schema does not describe: GitHub's schemas are open, so a
validator alone never sees a double that invents fields).  :func:`field_schemas` finds what the
description says about one field path, for the checks on the fields the connectors read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from jsonschema import Draft4Validator

from tests.helpers.github_schema import CUT_REST

SCHEMA_MAPS = ("properties", "patternProperties")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
SCHEMA_ONE = ("items", "additionalProperties", "not")


def openapi30_to_jsonschema(schema: Any) -> Any:
    """OpenAPI 3.0 schema object -> JSON Schema: ``nullable: true`` allows ``null``."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: openapi30_to_jsonschema(sub) for name, sub in value.items()}
        elif key in SCHEMA_LISTS and isinstance(value, list):
            out[key] = [openapi30_to_jsonschema(sub) for sub in value]
        elif key in SCHEMA_ONE and isinstance(value, dict):
            out[key] = openapi30_to_jsonschema(value)
        elif key != "nullable":
            out[key] = value
    if schema.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        elif "type" not in out:
            return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def cut() -> dict[str, Any]:
    return json.loads(CUT_REST.read_text(encoding="utf-8"))


def documented_statuses(route: str) -> list[str]:
    return list(cut()["routes"][route]["documented_statuses"])


def response_schema(route: str, status: str = "200") -> dict[str, Any]:
    resp = ((cut()["routes"].get(route) or {}).get("responses") or {}).get(status)
    if not resp or not resp.get("schema"):
        raise KeyError(f"{route} HTTP {status}: no JSON schema in the cut")
    return openapi30_to_jsonschema(resp["schema"])


def _where(path: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) or "(body)"


def undocumented_keys(schema: Any, body: Any, path: tuple = ()) -> list[tuple[tuple, str]]:
    """Keys of ``body`` that ``schema`` does not describe (walked together, through the branches
    that validate)."""
    if not isinstance(schema, dict):
        return []
    found: list[tuple[tuple, str]] = []
    for key in ("anyOf", "oneOf"):
        if key in schema:
            fits = [s for s in schema[key] if Draft4Validator(s).is_valid(body)]
            if fits:  # the branch that describes the body best (open schemas let several validate)
                found += min((undocumented_keys(s, body, path) for s in fits), key=len)
    for sub in schema.get("allOf", ()):
        found += [f for f in undocumented_keys(sub, body, path)
                  if not any(isinstance(b, dict) and f[0][-1] in (b.get("properties") or {}) for b in schema["allOf"])]
    if isinstance(body, dict) and "properties" in schema:
        props = schema["properties"]
        free = schema.get("additionalProperties") not in (None, False) or "patternProperties" in schema
        for key, value in body.items():
            if key in props:
                found += undocumented_keys(props[key], value, (*path, key))
            elif not free:
                found.append(((*path, key), "not in the published schema"))
    if isinstance(body, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(body):
            found += undocumented_keys(schema["items"], item, (*path, i))
    return found


def check_body(route: str, status: str, body: Any) -> list[str]:
    """Problems of one body: a status the route does not document, schema errors, undocumented keys."""
    if status not in documented_statuses(route):
        return [f"HTTP {status} is not a documented answer of {route} (documented: {documented_statuses(route)})"]
    schema = response_schema(route, status)
    problems = [f"schema {_where(tuple(e.absolute_path))}: {e.message[:200]}"
                for e in Draft4Validator(schema).iter_errors(body)]
    problems += [f"undocumented {_where(p)}: {why}" for p, why in undocumented_keys(schema, body)]
    return problems


def field_schemas(schema: Any, path: list[str]) -> list[tuple[dict[str, Any], bool]]:
    """What a schema says about a field path (``"labels[].name"`` split on dots; ``[]``: list items):
    ``[(subschema, required)]``, one per branch that describes it; ``required`` when every object
    on the way lists the next key in ``required``.  Empty: the description does not know the field."""
    out: list[tuple[dict[str, Any], bool]] = []

    def walk(s: Any, rest: list[str], req: bool) -> None:
        if not isinstance(s, dict):
            return
        for key in SCHEMA_LISTS:
            for sub in s.get(key) or ():
                walk(sub, rest, req)
        if not rest:
            out.append((s, req))
            return
        head, items = rest[0].removesuffix("[]"), rest[0].endswith("[]")
        if head:
            props = s.get("properties") or {}
            if head in props:
                sub = props[head]
                here = req and head in (s.get("required") or [])
                if items:
                    for branch in [sub, *(sub.get("anyOf") or []), *(sub.get("oneOf") or [])]:
                        if isinstance(branch, dict) and isinstance(branch.get("items"), dict):
                            walk(branch["items"], rest[1:], here)
                else:
                    walk(sub, rest[1:], here)
        elif items and isinstance(s.get("items"), dict):
            walk(s["items"], rest[1:], req)

    walk(schema, path, True)
    return out


def values_at(body: Any, path: list[str]) -> Iterator[tuple[Any, bool]]:
    """(value, present) at a field path in a body, for each object on the way (``[]``: each item);
    nothing under a parent that is null or absent."""
    if not path:
        yield body, True
        return
    head, items = path[0].removesuffix("[]"), path[0].endswith("[]")
    node = body
    if head:
        if not isinstance(node, dict):
            return
        if head not in node:
            yield None, False
            return
        node = node[head]
    if items:
        for item in node if isinstance(node, list) else []:
            yield from values_at(item, path[1:])
    elif len(path) == 1:
        yield node, True
    elif node is not None:
        yield from values_at(node, path[1:])
