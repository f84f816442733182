"""GitHub GraphQL double: ``POST /graphql`` (and ``/api/graphql``, the Enterprise form).

Serves the operations of :mod:`ccwatch.ingest.github.queries` (recognised by the body's
``operationName``, else by the ``query <Name>`` of the document) from the same scenario data
as the REST routes, so a REST fetch and a GraphQL fetch of one scenario describe the same
objects: node ``id`` = the REST ``node_id``, ``databaseId`` = the REST ``id``, Bot logins
without ``[bot]``, enums UPPERCASE, DateTimes ``...Z``, opaque base64 cursors.

GraphQL is its own rate-limit resource: 5,000 points an hour (scenario
``github.graphql_rate_limit``), ``X-RateLimit-Resource: graphql``, the point cost of
:func:`~ccwatch.sandbox.github_graphql_exec.point_cost`; it never touches the REST ``core``
counter.  Indexes are built per repository on first use and cached (the scenario does not
change while served): a page costs O(page), not O(pulls).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from ccwatch.ingest.github.queries import OPERATIONS
from ccwatch.sandbox.github_graphql_exec import (
    NODE_LIMIT,
    Execution,
    GqlError,
    Obj,
    bind_variables,
    connection_requests,
    parse,
    point_cost,
)
from ccwatch.sandbox.github_graphql_index import RepoIndex, fingerprint
from ccwatch.sandbox.github_http import rate_limit_headers
from ccwatch.sandbox.http import SandboxRequest, SandboxResponse, json_response
from ccwatch.sandbox.render import Ctx, node_id

GRAPHQL_PATHS = ("/graphql", "/api/graphql")
DOC = "https://docs.github.com/graphql"
AUTH_DOC = DOC + "/guides/forming-calls-with-graphql#authenticating-with-graphql"
# fields whose GraphQL type is non-null: a null there nulls the enclosing object
NON_NULL = frozenset({("Repository", "pullRequests"), ("Commit", "history"), ("PullRequest", "commits"),
                      ("Commit", "parents"), ("PullRequestCommit", "commit")})


def is_graphql(req: SandboxRequest) -> bool:
    return req.method == "POST" and req.path.rstrip("/") in GRAPHQL_PATHS


class GraphqlApi:
    """The endpoint: auth, body, operation, variables, cost and rate limit, execution."""

    def __init__(self, scenario: dict, gh):
        g = scenario.get("github") or {}
        rl = g.get("graphql_rate_limit") or {}
        self.gh = gh
        self.limit = int(rl.get("limit", 5000))
        self.used = int(rl.get("used", 0))
        self.reset = int(rl.get("reset") or gh.reset)
        self._lock = threading.Lock()
        self._indexes: dict[str, RepoIndex] = {}
        self._deployments: tuple | None = None

    # ------------------------------------------------------------------ indexes
    def index(self, key: str) -> RepoIndex | None:
        found = self.gh.repos.get(key.lower())
        if found is None:
            return None
        ix = self._indexes.get(found[0])
        if ix is None or ix.fingerprint != fingerprint(found[1]):
            ix = self._indexes[found[0]] = RepoIndex(found[0], found[1], self.gh)
        return ix

    def deployments(self) -> dict[str, tuple[RepoIndex, dict]]:
        """Deployment node id -> (repository index, deployment), over every repository."""
        key = tuple((id(r.get("deployments")), len(r.get("deployments") or ())) for _, r in self.gh.repos.values())
        if self._deployments is None or self._deployments[0] != key:
            table = {}
            for full, _ in self.gh.repos.values():
                ix = self.index(full)
                for d in ix.r.get("deployments") or []:
                    table[node_id("Deployment", int(d["id"]))] = (ix, d)
            self._deployments = (key, table)
        return self._deployments[1]

    # ------------------------------------------------------------------ rate limit
    def snapshot(self) -> dict:
        with self._lock:
            return {"limit": self.limit, "used": self.used, "remaining": max(self.limit - self.used, 0), "reset": self.reset}

    def headers(self, used: int) -> dict[str, str]:
        out = rate_limit_headers(self.limit, used, self.reset)
        out["X-RateLimit-Resource"] = "graphql"
        return out

    def finish(self, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        """No ETag (GitHub sends none for GraphQL) and no ``core`` charge: the graphql headers only."""
        if "X-RateLimit-Resource" not in resp.headers:
            resp.headers.update(self.headers(self.snapshot()["used"]))
        return resp

    # ------------------------------------------------------------------ request
    def handle(self, req: SandboxRequest) -> SandboxResponse:
        header = (req.headers.get("Authorization") or "").strip()
        scheme, _, cred = header.partition(" ")
        cred = cred.strip() if scheme.lower() in ("token", "bearer") else ""
        if not header:
            return json_response({"message": "This endpoint requires you to be authenticated.",
                                  "documentation_url": AUTH_DOC}, status=401)
        if not cred or (self.gh.token and cred != self.gh.token):
            return json_response({"message": "Bad credentials", "documentation_url": DOC, "status": "401"}, status=401)
        try:
            body = req.json_body()
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return json_response({"message": "Problems parsing JSON", "documentation_url": DOC, "status": "400"}, status=400)
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            return self._errors([{"message": "A query attribute must be specified and must be a string."}])
        try:
            return self._run(req, query, body.get("operationName"), body.get("variables"))
        except GqlError as err:
            return self._errors([err.entry])

    def _errors(self, errors: list, data: object = ..., used: int | None = None) -> SandboxResponse:
        payload = {"errors": errors} if data is ... else {"data": data, "errors": errors}
        return json_response(payload, headers=self.headers(self.snapshot()["used"] if used is None else used))

    def _run(self, req: SandboxRequest, query: str, op_name, variables) -> SandboxResponse:
        ops = parse(query)
        if op_name:
            op = next((o for o in ops if o.name == op_name), None)
            if op is None:
                raise GqlError(f'No operation named "{op_name}"')
        elif len(ops) == 1:
            op = ops[0]
        else:
            raise GqlError("An operation name is required")
        if op.kind != "query" or op.name not in OPERATIONS:
            raise GqlError(f"The sandbox's GraphQL double serves only the queries {sorted(OPERATIONS)}; "
                           f"got {op.kind} {op.name or '(anonymous)'}", op.line, op.col,
                           extensions={"code": "unknownOperation"})
        bound = bind_variables(op, variables if isinstance(variables, dict) else {})
        requests, nodes = connection_requests(op.selections, bound)
        if nodes > NODE_LIMIT:
            raise GqlError(f"This query requests up to {nodes:,} possible nodes which exceeds the maximum limit of "
                           f"{NODE_LIMIT:,}.", op.line, op.col, type="MAX_NODE_LIMIT_EXCEEDED")
        cost = point_cost(requests)
        with self._lock:
            before = self.used
            if before + cost > self.limit:
                refused = True
            else:
                refused = False
                self.used += cost
            used = self.used
        if refused:
            uid, _ = Ctx(api="", html="", users=self.gh.users).user_info(self.gh.viewer)
            word = "already exceeded" if before >= self.limit else "exceeded"
            return self._errors([{"type": "RATE_LIMITED", "message": f"API rate limit {word} for user ID {uid}."}],
                                data=None, used=used)
        ctx = Ctx(api=req.origin + ("/api/v3" if req.path.startswith("/api/") else ""), html=req.origin,
                  users=self.gh.users)
        rate = Obj("RateLimit", {"cost": cost, "limit": self.limit, "remaining": max(self.limit - used, 0),
                                 "used": used, "nodeCount": nodes,
                                 "resetAt": datetime.fromtimestamp(self.reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
        from ccwatch.sandbox.github_graphql_nodes import Nodes  # resolvers over the indexes

        root = Nodes(self, ctx).query_root(rate)
        ex = Execution(bound, NON_NULL, op_label=f"query {op.name}")
        data = ex.run(root, op)
        if ex.undefined:  # a validation error on GitHub: nothing ran, nothing is charged
            with self._lock:
                self.used -= cost
                used = self.used
            return self._errors(ex.undefined, used=used)
        payload = {"data": data, "errors": ex.errors} if ex.errors else {"data": data}
        return json_response(payload, headers=self.headers(used))

