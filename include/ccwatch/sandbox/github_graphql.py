"""GitHub GraphQL double: ``POST /graphql`` (and ``/api/graphql``, the Enterprise form).

Executes any query over GitHub's published schema, cut to what ccwatch's documents reach
(``github_schema/github.graphql``; engine ``github_graphql_exec``, resolvers
``github_graphql_nodes``), from the same scenario data as the REST routes, so a REST fetch and a
GraphQL fetch of one scenario describe the same objects: node ``id`` = the REST ``node_id``,
``fullDatabaseId``/``databaseId`` = the REST ``id`` (an ``Int`` past 2**31 fails as on GitHub),
Bot logins without ``[bot]``, enums UPPERCASE, DateTimes ``...Z``, opaque base64 cursors.

GraphQL is its own rate-limit resource: 5,000 points an hour (scenario
``github.graphql_rate_limit``), ``X-RateLimit-Resource: graphql``, the point cost of
:func:`~ccwatch.sandbox.github_graphql_exec.point_cost`; it never touches the REST ``core``
counter.  Indexes are built per repository on first use and cached (the scenario does not
change while served): a page costs O(page), not O(pulls).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from ccwatch.sandbox.github_graphql_exec import Prepared, execute, load_schema, prepare
from ccwatch.sandbox.github_graphql_index import RepoIndex, fingerprint
from ccwatch.sandbox.github_graphql_nodes import Nodes
from ccwatch.sandbox.github_http import rate_limit_headers
from ccwatch.sandbox.http import SandboxRequest, SandboxResponse, json_response
from ccwatch.sandbox.render import Ctx, node_id

GRAPHQL_PATHS = ("/graphql", "/api/graphql")
DOC = "https://docs.github.com/graphql"
AUTH_DOC = DOC + "/guides/forming-calls-with-graphql#authenticating-with-graphql"


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
        variables = body.get("variables")
        return self._run(req, query, body.get("operationName") or None, variables if isinstance(variables, dict) else {})

    def _errors(self, errors: list, data: object = ..., used: int | None = None) -> SandboxResponse:
        payload = {"errors": errors} if data is ... else {"data": data, "errors": errors}
        return json_response(payload, headers=self.headers(self.snapshot()["used"] if used is None else used))

    def _run(self, req: SandboxRequest, query: str, op_name: str | None, variables: dict) -> SandboxResponse:
        schema = load_schema()
        prepared = prepare(schema, query, op_name, variables)
        if not isinstance(prepared, Prepared):  # parse, validation, variable, pagination, node-limit errors
            return self._errors(prepared)         # answered without data, nothing charged
        cost = prepared.cost
        with self._lock:
            before = self.used
            refused = before + cost > self.limit
            if not refused:
                self.used += cost
            used = self.used
        if refused:
            uid, _ = Ctx(api="", html="", users=self.gh.users).user_info(self.gh.viewer)
            word = "already exceeded" if before >= self.limit else "exceeded"
            return self._errors([{"type": "RATE_LIMITED", "message": f"API rate limit {word} for user ID {uid}."}],
                                data=None, used=used)
        ctx = Ctx(api=req.origin + ("/api/v3" if req.path.startswith("/api/") else ""), html=req.origin,
                  users=self.gh.users, last_push=lambda r: self.gh.index(r).last_push)
        rate = {"cost": cost, "limit": self.limit, "remaining": max(self.limit - used, 0), "used": used,
                "nodeCount": prepared.nodes,
                "resetAt": datetime.fromtimestamp(self.reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        return json_response(execute(schema, prepared, Nodes(self, ctx).query_root(rate)), headers=self.headers(used))
