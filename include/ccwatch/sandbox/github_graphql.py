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

import base64
import json
import threading
from datetime import UTC, datetime
from functools import cached_property

from ccwatch.ingest.github.queries import OPERATIONS
from ccwatch.sandbox.github_graphql_exec import (
    NODE_LIMIT,
    Execution,
    FieldError,
    GqlError,
    Obj,
    bind_variables,
    connection_requests,
    parse,
    point_cost,
)
from ccwatch.sandbox.github_http import rate_limit_headers
from ccwatch.sandbox.render import Ctx, node_id, stable_int
from ccwatch.sandbox.server import SandboxRequest, SandboxResponse, json_response

GRAPHQL_PATHS = ("/graphql", "/api/graphql")
DOC = "https://docs.github.com/graphql"
AUTH_DOC = DOC + "/guides/forming-calls-with-graphql#authenticating-with-graphql"
# fields whose GraphQL type is non-null: a null there nulls the enclosing object
NON_NULL = frozenset({("Repository", "pullRequests"), ("Commit", "history"), ("PullRequest", "commits"),
                      ("Commit", "parents"), ("PullRequestCommit", "commit")})


def is_graphql(req: SandboxRequest) -> bool:
    return req.method == "POST" and req.path.rstrip("/") in GRAPHQL_PATHS


def iso(t: str | None) -> str | None:
    """GitHub's DateTime: ISO-8601 UTC, seconds, ``Z``."""
    if not t or (len(t) == 20 and t.endswith("Z")):
        return t
    return datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def upper(v: str | None) -> str | None:
    return v.upper() if isinstance(v, str) else v


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(cursor: str) -> str:
    try:
        return base64.b64decode(cursor.encode(), validate=True).decode()
    except Exception:  # noqa: BLE001 - any undecodable cursor is an invalid cursor
        raise _bad_cursor(cursor) from None


def _bad_cursor(cursor: str) -> FieldError:
    return FieldError("INVALID_CURSOR_ARGUMENTS", f"`{cursor}` does not appear to be a valid cursor.")


def offset_cursor(i: int) -> str:
    return _b64(f"cursor:v2:[{i}]")


def offset_position(cursor: str) -> int:
    text = _unb64(cursor)
    try:
        assert text.startswith("cursor:v2:")
        (i,) = json.loads(text[len("cursor:v2:"):])
        return int(i)
    except Exception:  # noqa: BLE001
        raise _bad_cursor(cursor) from None


def pull_updated(p: dict) -> str:
    return p.get("updated_at") or max(x for x in (p["created_at"], p.get("closed_at"), p.get("merged_at")) if x)


def pull_state(p: dict) -> str:
    if p.get("merged_at"):
        return "MERGED"
    state = p.get("state") or ("closed" if p.get("closed_at") else "open")
    return state.upper()


def fingerprint(r: dict) -> tuple:
    """Identity and size of the lists an index is built from: a changed scenario is re-indexed."""
    return tuple((id(x), len(x)) for x in (r.get(k) or () for k in ("commits", "pulls", "deployments",
                                                                        "reviews", "check_runs", "statuses")))


class RepoIndex:
    """Lookups over one scenario repository, each built once on first use."""

    def __init__(self, full: str, r: dict, gh):
        self.full, self.r, self.gh = full, r, gh
        self.fingerprint = fingerprint(r)
        self._cache: dict = {}

    def _memo(self, key, build):
        found = self._cache.get(key)
        if found is None:
            found = self._cache.setdefault(key, build())
        return found

    @cached_property
    def commits(self) -> dict[str, dict]:
        return {c["sha"]: c for c in self.r.get("commits") or []}

    @cached_property
    def order(self) -> dict[str, int]:
        return {c["sha"]: i for i, c in enumerate(self.r.get("commits") or [])}

    @cached_property
    def pull_groups(self) -> dict[tuple[str, str], list[dict]]:
        groups: dict[tuple[str, str], list[dict]] = {}
        default = self.r.get("default_branch", "main")
        for p in self.r.get("pulls") or []:
            groups.setdefault((pull_state(p), p.get("base", default)), []).append(p)
        return groups

    @cached_property
    def prs_by_sha(self) -> dict[str, list[dict]]:
        """Per API-NOTES: a merge/squash commit lists its PR, each commit of a rebase merge lists its PR."""
        out: dict[str, list[dict]] = {}
        for p in self.r.get("pulls") or []:
            shas = {p.get("merge_commit_sha"), p.get("head_sha"), *(p.get("commit_shas") or [])}
            for sha in shas - {None}:
                out.setdefault(sha, []).append(p)
        for prs in out.values():
            prs.sort(key=lambda p: (p["created_at"], int(p["number"])))
        return out

    def pulls(self, states: tuple, base: str | None, order: tuple[str, str]) -> tuple[list[dict], dict[int, int]]:
        def build():
            rows = [p for (st, b), ps in self.pull_groups.items() for p in ps
                    if (not states or st in states) and (base is None or b == base)]
            key = pull_updated if order[0] == "UPDATED_AT" else (lambda p: p["created_at"])
            rows.sort(key=lambda p: (key(p), int(p["number"])), reverse=order[1] == "DESC")
            return rows, {int(p["number"]): i for i, p in enumerate(rows)}
        return self._memo(("pulls", states, base, order), build)

    def commit(self, sha: str) -> dict | None:
        c = self.commits.get(sha)
        if c is None:
            c = self._memo(("synthetic", sha), lambda: self.gh._synthetic_commit(self.r, sha) or False) or None
        return c

    def head(self, branch: str) -> str | None:
        return self._memo(("head", branch), lambda: self.gh.branch_head(self.r, branch) or False) or None

    def history(self, start: str) -> tuple[list[str], list[str]]:
        """All commits reachable from ``start`` in the REST ``/commits`` order (newest first), and
        their committed dates ascending (for ``since``/``until`` by bisection)."""
        def build():
            seen, stack = set(), [start]
            while stack:
                sha = stack.pop()
                if sha in seen or sha not in self.commits:
                    continue
                seen.add(sha)
                stack.extend(self.commits[sha].get("parents", []))
            rows = sorted(seen, key=lambda s: (self.committed(self.commits[s]), self.order[s]), reverse=True)
            return rows, [self.committed(self.commits[s]) for s in reversed(rows)]
        return self._memo(("history", start), build)

    @staticmethod
    def committed(c: dict) -> str:
        return iso(c.get("committer_date") or c["date"])

    def suites(self, sha: str) -> list[tuple[int, object, list[dict]]]:
        def build():
            suites: dict[int, tuple[int, object, list[dict]]] = {}
            for cr in (self.r.get("check_runs") or {}).get(sha, []):
                app = cr.get("app", "github-actions")
                slug = app.get("slug") if isinstance(app, dict) else app
                sid = int(cr.get("check_suite_id") or stable_int(f"suite:{self.full}:{sha}:{slug}"))
                suites.setdefault(sid, (sid, app, []))[2].append(cr)
            for _, _, runs in suites.values():
                runs.sort(key=lambda c: int(c["id"]))
            return list(suites.values())
        return self._memo(("suites", sha), build)

    def latest_statuses(self, sha: str) -> list[dict]:
        def build():
            rows = sorted((self.r.get("statuses") or {}).get(sha, []), key=lambda s: (s["created_at"], int(s["id"])),
                          reverse=True)
            latest: dict[str, dict] = {}
            for s in rows:
                latest.setdefault(s.get("context", "default"), s)
            return list(latest.values())
        return self._memo(("statuses", sha), build)

    def reviews(self, n: int) -> list[dict]:
        return self._memo(("reviews", n), lambda: sorted(
            (self.r.get("reviews") or {}).get(str(n), []), key=lambda rv: (rv.get("submitted_at") or "9999", int(rv["id"]))))


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

