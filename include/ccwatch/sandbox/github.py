"""GitHub REST v3 double: routes, auth, Link pagination, ETag/304 and rate-limit headers.

Routes are served at ``/`` (api.github.com style) and under ``/api/v3`` (GitHub Enterprise
style); every URL in a payload uses the root the client called.  The HTTP mechanics (error
bodies, pagination, ETag, rate-limit headers) are in ``github_http.py``; the branch,
protection, rules and environment routes in ``github_protection.py``; the activity log and
commit comparison in ``github_activity.py``.
"""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import unquote

from ccwatch.sandbox.github_activity import ActivityRoutes
from ccwatch.sandbox.github_graphql import GraphqlApi, is_graphql
from ccwatch.sandbox.github_http import (
    DOCS,
    add_etag,
    gh_error,
    not_found,
    not_modified_response,
    paginate,
    rate_limit_headers,
)
from ccwatch.sandbox.github_index import IndexRegistry, Rendered, RepoIndex
from ccwatch.sandbox.github_protection import ProtectionRoutes
from ccwatch.sandbox.http import SandboxRequest, SandboxResponse, json_response
from ccwatch.sandbox.render import Ctx

__all__ = ["DOCS", "HEX", "GithubApi", "gh_error", "not_found"]

HEX = re.compile(r"^[0-9a-f]{4,40}$")


class GithubApi(ProtectionRoutes, ActivityRoutes):
    def __init__(self, scenario: dict):
        gh = scenario.get("github") or {}
        self.now = (scenario.get("meta") or {}).get("as_of")  # the activity log's time_period is relative to it
        self.token = (scenario.get("auth") or {}).get("github_token")
        self.users: dict = gh.get("users") or {}
        self.viewer = gh.get("viewer") or "ccwatch-bot"
        self.repos: dict[str, dict] = {name.lower(): (name, r) for name, r in (gh.get("repos") or {}).items()}
        rl = gh.get("rate_limit") or {}
        self.limit = int(rl.get("limit", 5000))
        self.reset = int(rl.get("reset") or time.time() + 3600)
        self.used = int(rl.get("used", 0))
        self._lock = threading.Lock()
        self._indexes = IndexRegistry()  # per-repository lookups (github_index.py), built lazily
        self.graphql = GraphqlApi(scenario, self)  # POST /graphql, /api/graphql (sandbox/github_graphql.py)
        self.routes = [
            (re.compile(p), getattr(self, name))
            for p, name in [
                (r"^/user$", "r_user"),
                (r"^/users/(?P<login>[^/]+)$", "r_named_user"),
                (r"^/rate_limit$", "r_rate_limit"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)$", "r_repo"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/pulls$", "r_pulls"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/pulls/(?P<n>\d+)$", "r_pull"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/pulls/(?P<n>\d+)/reviews$", "r_reviews"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/commits$", "r_commits"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/commits/(?P<ref>.+)/pulls$", "r_commit_pulls"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/commits/(?P<ref>.+)/check-runs$", "r_check_runs"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/commits/(?P<ref>.+)/statuses$", "r_statuses"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/statuses/(?P<ref>.+)$", "r_statuses"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/commits/(?P<ref>.+)/status$", "r_combined_status"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/commits/(?P<ref>.+)$", "r_commit"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/deployments$", "r_deployments"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/deployments/(?P<id>\d+)$", "r_deployment"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/deployments/(?P<id>\d+)/statuses$", "r_deployment_statuses"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/deployments/(?P<id>\d+)/statuses/(?P<sid>\d+)$", "r_deployment_status"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/branches/(?P<b>.+)/protection$", "r_protection"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/branches/(?P<b>.+)$", "r_branch"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/rules/branches/(?P<b>.+)$", "r_branch_rules"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/rulesets$", "r_rulesets"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/rulesets/(?P<id>\d+)$", "r_ruleset"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/environments$", "r_environments"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/environments/(?P<name>[^/]+)$", "r_environment"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/activity$", "r_activity"),
                (r"^/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/compare/(?P<basehead>.+)$", "r_compare"),
            ]
        ]

    # ------------------------------------------------------------------ entry points
    def handle(self, req: SandboxRequest) -> SandboxResponse:
        prefix = "/api/v3" if req.path == "/api/v3" or req.path.startswith("/api/v3/") else ""
        path = req.path[len(prefix):] or "/"
        if is_graphql(req):
            return self.graphql.handle(req)
        auth = self._check_auth(req, path)
        if auth is not None:
            return auth
        if req.method not in ("GET", "HEAD"):
            return not_found()
        ctx = Ctx(api=req.origin + prefix, html=req.origin, users=self.users,
                  last_push=lambda r: self.index(r).last_push)
        for pattern, fn in self.routes:
            m = pattern.match(path)
            if m:
                params = {k: unquote(v) for k, v in m.groupdict().items()}
                if "o" in params:
                    found = self.repos.get(f"{params.pop('o')}/{params.pop('r')}".lower())
                    if found is None:
                        return not_found()
                    return fn(req, ctx, found[0], found[1], **params)
                return fn(req, ctx, **params)
        return not_found()

    def _check_auth(self, req: SandboxRequest, path: str) -> SandboxResponse | None:
        header = (req.headers.get("Authorization") or "").strip()
        scheme, _, cred = header.partition(" ")
        cred = cred.strip() if scheme.lower() in ("token", "bearer") else ""
        if not header:
            if path == "/rate_limit" and not self.token:
                return None
            return gh_error(401, "Requires authentication")
        if not cred or (self.token and cred != self.token):
            return gh_error(401, "Bad credentials")
        return None

    def finish(self, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        """Add ETag (and answer 304 to a matching If-None-Match) and the rate-limit headers."""
        if is_graphql(req):  # its own resource: no ETag, no core charge
            return self.graphql.finish(req, resp)
        not_modified = add_etag(req, resp)
        with self._lock:
            if not not_modified and resp.status != 401:
                self.used += 1
            used = self.used
        if not_modified:
            resp = not_modified_response(resp)
        resp.headers.update(rate_limit_headers(self.limit, used, self.reset))
        return resp

    # ------------------------------------------------------------------ helpers
    paginate = staticmethod(paginate)

    def index(self, r: dict) -> RepoIndex:
        """The repository's lookup index (built once, on first use; see github_index.py)."""
        return self._indexes.get(f"id:{id(r)}", r)

    def branch_head(self, r: dict, branch: str) -> str | None:
        info = (r.get("branches") or {}).get(branch)
        if isinstance(info, dict) and info.get("sha"):
            return info["sha"]
        commits = r.get("commits") or []
        if commits and (branch == r.get("default_branch", "main") or info is not None):
            return commits[-1]["sha"]
        return self.index(r).head_of_ref.get(branch)

    def commit_index(self, r: dict) -> dict[str, dict]:
        return self.index(r).commits

    def resolve_ref(self, r: dict, ref: str) -> str | None:
        index = self.commit_index(r)
        if ref in index:
            return ref
        head = self.branch_head(r, ref)
        if head:
            return head
        if HEX.match(ref):
            matches = [s for s in index if s.startswith(ref)] if len(ref) < 40 else []
            if len(matches) == 1:
                return matches[0]
            if len(ref) == 40:
                return ref  # a commit the scenario only knows through checks/statuses/PR heads
        return None

    # ------------------------------------------------------------------ users and limits
    def r_user(self, req, ctx):
        return json_response(ctx.full_user(self.viewer))

    def r_named_user(self, req, ctx, login):
        return json_response(ctx.full_user(login))

    def r_rate_limit(self, req, ctx):
        with self._lock:
            used = self.used
        core = {"limit": self.limit, "used": used, "remaining": max(self.limit - used, 0), "reset": self.reset}
        other = {"limit": 5000, "used": 0, "remaining": 5000, "reset": self.reset}
        return json_response({"resources": {"core": core, "graphql": self.graphql.snapshot(), "search": {**other, "limit": 30, "remaining": 30}},
                              "rate": core})

    # ------------------------------------------------------------------ repository, pulls, reviews
    def r_repo(self, req, ctx, full, r):
        return json_response(ctx.repo(full, r, full=True))

    def _base_sha(self, r: dict, p: dict) -> str | None:
        if p.get("base_sha"):
            return p["base_sha"]
        merge = self.index(r).commits.get(p.get("merge_commit_sha") or "")
        if merge and merge.get("parents"):
            return merge["parents"][0]
        return self.branch_head(r, p.get("base", r.get("default_branch", "main")))

    def r_pulls(self, req, ctx, full, r):
        key = ("pulls", req.arg("state", "open"), req.arg("base"), req.arg("head"), req.arg("sort", "created"),
               req.arg("direction"))
        pulls = self.index(r).cached(key, lambda: self._pull_order(req, r))
        return self.paginate(req, Rendered(pulls, lambda p: ctx.pull(full, r, p, self._base_sha(r, p), single=False)))

    def _pull_order(self, req, r) -> list[dict]:
        state = req.arg("state", "open")
        pulls = list(r.get("pulls") or [])

        def pstate(p):
            return p.get("state") or ("closed" if p.get("merged_at") or p.get("closed_at") else "open")

        if state in ("open", "closed"):
            pulls = [p for p in pulls if pstate(p) == state]
        if req.arg("base"):
            pulls = [p for p in pulls if p.get("base", r.get("default_branch", "main")) == req.arg("base")]
        if req.arg("head"):
            ref = req.arg("head").split(":", 1)[-1]
            pulls = [p for p in pulls if p.get("head_ref") == ref]
        sort = req.arg("sort", "created")
        direction = req.arg("direction") or ("desc" if sort == "created" else "asc")

        def updated(p):
            return p.get("updated_at") or max(x for x in (p["created_at"], p.get("closed_at"), p.get("merged_at")) if x)

        key = updated if sort in ("updated", "long-running") else (lambda p: p["created_at"])
        pulls.sort(key=lambda p: (key(p), int(p["number"])), reverse=direction == "desc")
        return pulls

    def _find_pull(self, r, n):
        return self.index(r).pulls.get(int(n))

    def r_pull(self, req, ctx, full, r, n):
        p = self._find_pull(r, n)
        if p is None:
            return not_found()
        return json_response(ctx.pull(full, r, p, self._base_sha(r, p), single=True))

    def r_reviews(self, req, ctx, full, r, n):
        if self._find_pull(r, n) is None:
            return not_found()
        reviews = (r.get("reviews") or {}).get(str(n), [])
        reviews = sorted(reviews, key=lambda rv: (rv.get("submitted_at") or "9999", int(rv["id"])))
        return self.paginate(req, [ctx.review(full, int(n), rv) for rv in reviews])

    # ------------------------------------------------------------------ commits
    def r_commits(self, req, ctx, full, r):
        idx = self.index(r)
        start = self.resolve_ref(r, req.arg("sha") or r.get("default_branch", "main"))
        if start is None or start not in idx.commits:
            return not_found() if start is None else self.paginate(req, [])
        rows = idx.cached(("commits", start, req.arg("since"), req.arg("until")),
                          lambda: self._commit_order(req, idx, start))
        return self.paginate(req, Rendered(rows, lambda c: ctx.commit(full, c)))

    def _commit_order(self, req, idx: RepoIndex, start: str) -> list[dict]:
        index, order = idx.commits, idx.order
        seen, stack = set(), [start]
        while stack:
            sha = stack.pop()
            if sha in seen or sha not in index:
                continue
            seen.add(sha)
            stack.extend(index[sha].get("parents", []))
        since, until = req.arg("since"), req.arg("until")
        rows = [index[s] for s in seen]
        rows = [c for c in rows if (not since or c["date"] >= since) and (not until or c["date"] <= until)]
        rows.sort(key=lambda c: (c.get("committer_date", c["date"]), order[c["sha"]]), reverse=True)
        return rows

    def r_commit(self, req, ctx, full, r, ref):
        sha = self.resolve_ref(r, ref)
        c = self.commit_index(r).get(sha or "") or self._synthetic_commit(r, sha)
        if c is None:
            return gh_error(422, f"No commit found for SHA: {ref}", f"{DOCS}/commits/commits#get-a-commit")
        return json_response(ctx.commit(full, c, single=True))

    def _synthetic_commit(self, r: dict, sha: str | None) -> dict | None:
        """A PR head commit the scenario names only as ``head_sha`` (it is not on any listed branch)."""
        p = self.index(r).pull_of_head.get(sha) if sha else None
        if p is None:
            return None
        return {"sha": sha, "parents": [], "author": p.get("user"), "committer": p.get("user"),
                "date": p.get("head_date") or p["created_at"], "message": p.get("title", "")}

    def r_commit_pulls(self, req, ctx, full, r, ref):
        sha = self.resolve_ref(r, ref) or ref
        pulls = sorted(self.index(r).pulls_of_sha.get(sha, []), key=lambda p: int(p["number"]), reverse=True)
        return self.paginate(req, Rendered(pulls, lambda p: ctx.pull(full, r, p, self._base_sha(r, p), single=False)))

    def r_check_runs(self, req, ctx, full, r, ref):
        sha = self.resolve_ref(r, ref)
        if sha is None:
            return gh_error(422, f"No commit found for SHA: {ref}", f"{DOCS}/checks/runs#list-check-runs-for-a-git-reference")
        runs = list((r.get("check_runs") or {}).get(sha, []))
        if req.arg("check_name"):
            runs = [c for c in runs if c["name"] == req.arg("check_name")]
        if req.arg("status"):
            runs = [c for c in runs if c.get("status", "completed") == req.arg("status")]
        runs.sort(key=lambda c: (c.get("started_at") or "", int(c["id"])), reverse=True)
        if req.arg("filter", "latest") == "latest":
            latest: dict[str, dict] = {}
            for c in runs:
                latest.setdefault(c["name"], c)
            runs = [c for c in runs if latest[c["name"]] is c]
        rendered = [ctx.check_run(full, sha, c) for c in runs]
        return self.paginate(req, rendered, wrap=lambda chunk: {"total_count": len(rendered), "check_runs": chunk})

    def _statuses(self, r, sha):
        rows = list((r.get("statuses") or {}).get(sha, []))
        rows.sort(key=lambda s: (s["created_at"], int(s["id"])), reverse=True)
        return rows

    def r_statuses(self, req, ctx, full, r, ref):
        sha = self.resolve_ref(r, ref)
        if sha is None:
            return self.paginate(req, [])
        return self.paginate(req, [ctx.status(full, sha, s) for s in self._statuses(r, sha)])

    def r_combined_status(self, req, ctx, full, r, ref):
        sha = self.resolve_ref(r, ref)
        if sha is None:
            return gh_error(422, f"No commit found for SHA: {ref}")
        latest: dict[str, dict] = {}
        for s in self._statuses(r, sha):
            latest.setdefault(s.get("context", "default"), s)
        states = {s["state"] for s in latest.values()}
        state = "failure" if states & {"failure", "error"} else "pending" if (not states or "pending" in states) else "success"
        repo_obj = ctx.repo(full, r)
        return json_response({
            "state": state, "statuses": [ctx.status(full, sha, s) for s in latest.values()], "sha": sha,
            "total_count": len(latest),
            "repository": {k: repo_obj[k] for k in ("id", "node_id", "name", "full_name", "private", "owner", "html_url", "url")},
            "commit_url": f"{ctx.api}/repos/{full}/commits/{sha}", "url": f"{ctx.api}/repos/{full}/commits/{sha}/status",
        })

    # ------------------------------------------------------------------ deployments
    def _deployments(self, r):
        return self.index(r).deployments_desc

    def r_deployments(self, req, ctx, full, r):
        filters = tuple((param, req.arg(param)) for param in ("sha", "ref", "task", "environment"))
        rows = self.index(r).cached(("deployments", filters), lambda: self._deployment_rows(r, filters))
        return self.paginate(req, Rendered(rows, lambda d: ctx.deployment(full, d)))

    def _deployment_rows(self, r, filters) -> list[dict]:
        rows = self._deployments(r)
        for key, value in filters:
            if value is not None:
                default = {"task": "deploy", "environment": "production"}.get(key)
                rows = [d for d in rows if str(d.get(key, default if key != "ref" else d["sha"])) == value]
        return list(rows)

    def _find_deployment(self, r, did):
        return self.index(r).deployments.get(int(did))

    def r_deployment(self, req, ctx, full, r, id):
        d = self._find_deployment(r, id)
        return json_response(ctx.deployment(full, d)) if d else not_found()

    def r_deployment_statuses(self, req, ctx, full, r, id):
        d = self._find_deployment(r, id)
        if d is None:
            return not_found()
        rows = sorted(d.get("statuses") or [], key=lambda s: (s["created_at"], int(s["id"])), reverse=True)
        return self.paginate(req, [ctx.deployment_status(full, d, s) for s in rows])

    def r_deployment_status(self, req, ctx, full, r, id, sid):
        d = self._find_deployment(r, id)
        s = next((s for s in (d or {}).get("statuses") or [] if int(s["id"]) == int(sid)), None)
        return json_response(ctx.deployment_status(full, d, s)) if s else not_found()
