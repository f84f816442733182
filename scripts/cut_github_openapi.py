#!/usr/bin/env python3
"""Cut GitHub's REST OpenAPI description to the response schemas of the routes ccwatch calls.

    python scripts/cut_github_openapi.py SPEC.deref.json [--check]   # regenerate (or diff) the cut
    python scripts/cut_github_openapi.py --verify                     # the cut's own integrity, no source

``SPEC.deref.json`` is the dereferenced description of api.github.com:
``generated/api.github.com.deref.json`` of the npm package ``@octokit/openapi`` (every ``$ref``
inlined, so each schema stands alone; version and sha256 of the one the committed cut was made from
are in ``include/ccwatch/sandbox/github_schema/README.md``).  The output,
``include/ccwatch/sandbox/github_schema/github_rest.json`` unless ``-o`` says otherwise, is::

    {"source": {"package", "version", "file", "sha256", "openapi"}, "generated_by", "kept_statuses",
     "routes": {"GET /repos/{owner}/{repo}/rulesets/{ruleset_id}": {
        "operationId", "summary", "description", "docs", "documented_statuses": ["200", "404", "500"],
        "parameters": [{"name", "in", "required", "schema"}],
        "responses": {"200": {"description", "content_type", "schema"}, "404": {...}}}}}

Kept for each route of :data:`ROUTES` (every REST call of ``ingest/github``): the operation's
description (it carries notes such as the one on ``bypass_actors``), the names of all documented
statuses, the path and query parameters, and the 200 response plus, when documented, 403 and 404
(answers ccwatch stores as evidence).  Schemas are copied as published except their
``example``/``examples`` keywords (most of the bytes, and not part of the contract); keys keep the
published order, so the same input gives the same bytes, which ``--check`` verifies (exit 1 and a
unified diff).  ``--verify`` (run by the tests; the description itself is 73 MB and not committed)
checks that the cut names the source the README records and holds exactly :data:`ROUTES`.

The description is OpenAPI 3.0.3: ``nullable: true`` is not JSON Schema; the body checks convert it
(``tests/helpers/openapi_bodies.py``).  Standard library only; reads local files only.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CUT_DIR = ROOT / "include" / "ccwatch" / "sandbox" / "github_schema"
CUT = CUT_DIR / "github_rest.json"
README = CUT_DIR / "README.md"
PACKAGE = "@octokit/openapi"
# The REST calls of ingest/github (fetch.py, conditional.py, and the REST fallbacks of graphql.py); all GET.
ROUTES = [
    "GET /repos/{owner}/{repo}",                                        # until stop 29 (now GraphQL): stored bodies
    "GET /repos/{owner}/{repo}/pulls",                                  # conditional.pulls_changed
    "GET /repos/{owner}/{repo}/pulls/{pull_number}",                    # graphql: the pull piece
    "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews",            # graphql: the reviews piece
    "GET /repos/{owner}/{repo}/commits",                                # conditional.list_commits
    "GET /repos/{owner}/{repo}/commits/{ref}/check-runs",               # graphql: filter=all
    "GET /repos/{owner}/{repo}/commits/{ref}/statuses",                 # graphql: the statuses piece
    "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls",             # graphql: commit_pulls
    "GET /repos/{owner}/{repo}/deployments",                            # fetch
    "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",   # graphql: deployment_statuses
    "GET /repos/{owner}/{repo}/branches/{branch}",                      # fetch
    "GET /repos/{owner}/{repo}/branches/{branch}/protection",           # fetch (403/404 are evidence)
    "GET /repos/{owner}/{repo}/rules/branches/{branch}",                # fetch
    "GET /repos/{owner}/{repo}/rulesets/{ruleset_id}",                  # fetch
    "GET /repos/{owner}/{repo}/environments/{environment_name}",        # fetch (404 is evidence)
]
KEPT_STATUSES = ("200", "403", "404")
SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs")  # name -> schema
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames")


class CutError(Exception):
    """The description or the cut is not what the script expects (message says what)."""


def strip_examples(schema: Any) -> Any:
    """A schema without ``example``/``examples`` keywords (property NAMES are left alone)."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in ("example", "examples"):
            continue
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: strip_examples(sub) for name, sub in value.items()}
        elif key in SCHEMA_LISTS and isinstance(value, list):
            out[key] = [strip_examples(sub) for sub in value]
        elif key in SCHEMA_ONE:
            out[key] = strip_examples(value)
        else:
            out[key] = value
    return out


def _json_content(content: dict[str, Any]) -> tuple[str | None, Any]:
    """The JSON media type of a response (application/json first) and its schema."""
    for ctype in sorted(content, key=lambda c: (c != "application/json", "json" not in c, c)):
        if "json" in ctype:
            return ctype, content[ctype].get("schema")
    return None, None


def cut_route(spec: dict[str, Any], route: str) -> dict[str, Any]:
    method, _, path = route.partition(" ")
    op = (spec["paths"].get(path) or {}).get(method.lower())
    if op is None:
        raise CutError(f"{route}: not in the description")
    responses = {}
    for status in KEPT_STATUSES:
        resp = op.get("responses", {}).get(status)
        if resp is not None:
            ctype, schema = _json_content(resp.get("content") or {})
            responses[status] = {"description": resp.get("description"), "content_type": ctype,
                                 "schema": strip_examples(schema)}
    return {"operationId": op.get("operationId"), "summary": op.get("summary"), "description": op.get("description"),
            "docs": (op.get("externalDocs") or {}).get("url"), "documented_statuses": sorted(op.get("responses", {})),
            "parameters": [{"name": p.get("name"), "in": p.get("in"), "required": bool(p.get("required")),
                            "schema": strip_examples(p.get("schema"))}
                           for p in op.get("parameters", []) if p.get("in") in ("path", "query")],
            "responses": responses}


def generate(raw: bytes, package: str, version: str, file: str, routes: list[str]) -> str:
    spec = json.loads(raw)
    doc = {
        "source": {"package": package, "version": version, "file": file, "sha256": hashlib.sha256(raw).hexdigest(),
                   "openapi": spec.get("openapi")},
        "generated_by": "scripts/cut_github_openapi.py (do not edit: regenerate; --check proves it)",
        "kept_statuses": list(KEPT_STATUSES),
        "routes": {route: cut_route(spec, route) for route in routes},
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def recorded_source(readme: str) -> dict[str, str]:
    """The README's ``| package | version | file | sha256 |`` row of the description."""
    for line in readme.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] == PACKAGE:
            return {"package": cells[0], "version": cells[1], "file": cells[2], "sha256": cells[3]}
    raise CutError(f"{README.name} records no {PACKAGE} row")


def verify(cut_path: Path, readme_path: Path, routes: list[str] = ROUTES) -> list[str]:
    """Problems with a committed cut, checked without its source."""
    cut = json.loads(cut_path.read_text(encoding="utf-8"))
    problems = []
    rec = recorded_source(readme_path.read_text(encoding="utf-8"))
    src = cut.get("source") or {}
    if {k: src.get(k) for k in rec} != rec:
        problems.append(f"{cut_path.name} names {src}, {readme_path.name} records {rec}")
    if list(cut.get("routes") or {}) != routes:
        problems.append(f"{cut_path.name} holds routes {list(cut.get('routes') or {})}, the script's are {routes}")
    for route, rc in (cut.get("routes") or {}).items():
        if "200" not in (rc.get("responses") or {}):
            problems.append(f"{route}: no 200 response schema")
    return problems


def _package(spec_path: Path) -> tuple[str, str]:
    """(name, version) from the package.json of the package the description is in."""
    for parent in spec_path.resolve().parents:
        pkg = parent / "package.json"
        if pkg.is_file():
            meta = json.loads(pkg.read_text(encoding="utf-8"))
            return str(meta.get("name")), str(meta.get("version"))
    raise CutError(f"no package.json above {spec_path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("spec", nargs="?", help="generated/api.github.com.deref.json of @octokit/openapi")
    p.add_argument("-o", "--output", type=Path, default=CUT)
    p.add_argument("--check", action="store_true", help="regenerate and diff against --output; exit 1 if it differs")
    p.add_argument("--verify", action="store_true", help="check the committed cut without its source")
    args = p.parse_args(argv)
    try:
        if args.verify:
            problems = verify(args.output, README)
            for problem in problems:
                print(problem, file=sys.stderr)
            print(f"{args.output}: {'INVALID' if problems else 'verified'}", file=sys.stderr)
            return 1 if problems else 0
        if not args.spec:
            p.error("SPEC.deref.json is required unless --verify")
        path = Path(args.spec)
        name, version = _package(path)
        out = generate(path.read_bytes(), name, version, path.name, ROUTES)
    except CutError as exc:
        print(f"cut_github_openapi: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != out:
            diff = list(difflib.unified_diff(current.splitlines(True), out.splitlines(True), str(args.output),
                                             "regenerated"))
            sys.stderr.writelines(diff[:200])
            print(f"{args.output} is not the output of cut_github_openapi.py for this description", file=sys.stderr)
            return 1
        print(f"{args.output}: up to date", file=sys.stderr)
        return 0
    args.output.write_text(out, encoding="utf-8", newline="\n")
    print(f"wrote {args.output} ({len(out):,} bytes, {len(ROUTES)} routes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
