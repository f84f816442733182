"""GitHub GraphQL double, the object graph: Repository, PullRequest, Commit, CheckSuite, Deployment ...

Each object is an :class:`~ccwatch.sandbox.github_graphql_exec.Obj` built from the scenario
through the per-repository indexes of :class:`~ccwatch.sandbox.github_graphql.RepoIndex`;
connections (:func:`connection`, O(page) over an indexed list) are resolved lazily, so only what
the selection asks for is computed.
Identities match the REST double (``render.py``): ``id`` = REST ``node_id``, ``databaseId`` =
REST ``id``.  Bots are ``Bot`` actors whose login has no ``[bot]`` suffix (API-NOTES.md).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from typing import Any

from ccwatch.sandbox.github_graphql_exec import MAX_PAGE, FieldError, Obj
from ccwatch.sandbox.github_graphql_index import (
    RepoIndex,
    b64,
    bad_cursor,
    iso,
    offset_cursor,
    offset_position,
    pull_state,
    pull_updated,
    unb64,
    upper,
)
from ccwatch.sandbox.render import Ctx, node_id, stable_int

ACTOR = ("Actor", "Node")
FAILING = {"failure", "timed_out", "cancelled", "action_required", "startup_failure", "stale"}


def window(n_items: int, args: dict, name: str, position: Callable[[str], int]) -> tuple[int, int, bool, bool]:
    """The slice ``[lo, hi)`` of a connection of ``n_items`` for first/after/last/before, and
    (hasNextPage, hasPreviousPage).  ``position(cursor)`` is the index of a cursor's item."""
    first, last = args.get("first"), args.get("last")
    for key, size in (("first", first), ("last", last)):
        if size is not None and size > MAX_PAGE:
            raise FieldError("EXCESSIVE_PAGINATION", f"Requesting {size} records on the `{name}` connection exceeds "
                                                     f"the `{key}` limit of {MAX_PAGE} records.")
        if size is not None and size < 0:
            raise FieldError("ARGUMENT_LIMIT", f"`{key}` on the `{name}` connection cannot be less than zero.")
    if first is None and last is None:
        raise FieldError("MISSING_PAGINATION_BOUNDARIES",
                         f"You must provide a `first` or `last` value to properly paginate the `{name}` connection.")
    lo, hi = 0, n_items
    if args.get("after") is not None:
        lo = position(args["after"]) + 1
    if args.get("before") is not None:
        hi = position(args["before"])
    lo, hi = max(lo, 0), max(min(hi, n_items), 0)
    hi = max(hi, lo)
    start, end = lo, hi
    if first is not None:
        end = min(end, start + first)
    if last is not None:
        start = max(start, end - last)
    has_next = end < hi if first is not None else (hi < n_items and args.get("before") is not None)
    has_prev = start > lo if last is not None else start > 0
    return start, end, has_next, has_prev


def connection(typename: str, items: list, args: dict, name: str, cursor_of: Callable[[int], str],
               position: Callable[[str], int], node: Callable[[Any], Any]) -> Obj:
    """A Relay connection over an indexed list (O(page)); ``node`` renders one item."""
    start, end, has_next, has_prev = window(len(items), args, name, position)
    page = [node(x) for x in items[start:end]]

    def cursors() -> list[str]:  # only when edges or pageInfo are selected
        return [cursor_of(i) for i in range(start, end)]

    edge_type = typename.replace("Connection", "Edge")
    return Obj(typename, {
        "nodes": page, "totalCount": len(items),
        "edges": lambda _a, _n: [Obj(edge_type, {"cursor": c, "node": x}) for c, x in zip(cursors(), page, strict=True)],
        "pageInfo": lambda _a, _n: Obj("PageInfo", {
            "hasNextPage": has_next, "hasPreviousPage": has_prev,
            "startCursor": cursor_of(start) if end > start else None,
            "endCursor": cursor_of(end - 1) if end > start else None}),
    })


class _View:
    """rows[lo:hi] without copying (a page of a 100k-commit history costs O(page))."""

    def __init__(self, rows: list, lo: int, hi: int):
        self.rows, self.lo, self.hi = rows, lo, max(hi, lo)

    def __len__(self) -> int:
        return self.hi - self.lo

    def __getitem__(self, s: slice) -> list:
        return self.rows[self.lo + s.start: self.lo + s.stop]


def small(typename: str, items: list, args: dict, name: str, node) -> Obj:
    """A connection over a short list, with offset cursors."""
    return connection(typename, items, args, name, offset_cursor, offset_position, node)


class Nodes:
    def __init__(self, api, ctx: Ctx):
        self.api, self.ctx = api, ctx

    def query_root(self, rate: Obj) -> Obj:
        return Obj("Query", {"rateLimit": rate, "repository": self.repository, "nodes": self.nodes,
                             "node": lambda args, _n: self._node(args.get("id"))})

    # ------------------------------------------------------------------ roots
    def repository(self, args: dict, _name: str) -> Obj:
        owner, name = args.get("owner") or "", args.get("name") or ""
        ix = self.api.index(f"{owner}/{name}")
        if ix is None:
            raise FieldError("NOT_FOUND", f"Could not resolve to a Repository with the name '{owner}/{name}'.")
        return self.repo(ix)

    def _node(self, gid):
        found = self.api.deployments().get(gid) if isinstance(gid, str) else None
        if found is None:
            raise FieldError("NOT_FOUND", f"Could not resolve to a node with the global id of '{gid}'")
        return self.deployment(*found)

    def nodes(self, args: dict, _name: str) -> list:
        out = []
        for gid in args.get("ids") or []:
            try:
                out.append(self._node(gid))
            except FieldError as err:
                out.append(err)  # the executor lists it at ["nodes", i] and answers null there
        return out

    # ------------------------------------------------------------------ actors
    def actor(self, login: str | None) -> Obj | None:
        if not login:
            return None
        uid, utype = self.ctx.user_info(login)
        if utype == "Bot":
            short = login[:-5] if login.endswith("[bot]") else login
            return Obj("Bot", {"login": short, "databaseId": uid, "id": node_id("Bot", uid),
                               "url": f"{self.ctx.html}/apps/{short}"}, ACTOR)
        return Obj(utype if utype == "Organization" else "User",
                   {"login": login, "databaseId": uid, "id": node_id(utype, uid), "url": f"{self.ctx.html}/{login}"},
                   ACTOR)

    # ------------------------------------------------------------------ repository
    def repo(self, ix: RepoIndex) -> Obj:
        rid = int(ix.r.get("id") or stable_int(f"repo:{ix.full}"))
        default = ix.r.get("default_branch", "main")
        return Obj("Repository", {
            "id": node_id("Repository", rid), "databaseId": rid, "name": ix.full.split("/", 1)[1],
            "nameWithOwner": ix.full, "url": f"{self.ctx.html}/{ix.full}", "isPrivate": bool(ix.r.get("private", True)),
            "pullRequests": lambda args, name: self.pull_requests(ix, args, name),
            "ref": lambda args, _n: self.ref(ix, args.get("qualifiedName") or ""),
            "defaultBranchRef": lambda args, _n: self.ref(ix, default),
        }, ("Node",))

    def pull_requests(self, ix: RepoIndex, args: dict, name: str) -> Obj:
        states = args.get("states") or ()
        states = tuple(sorted([states] if isinstance(states, str) else states))
        order = args.get("orderBy") or {}
        order = (order.get("field", "CREATED_AT"), order.get("direction", "ASC"))
        rows, pos = ix.pulls(states, args.get("baseRefName"), order)
        if args.get("headRefName"):
            rows = [p for p in rows if p.get("head_ref") == args["headRefName"]]
            pos = {int(p["number"]): i for i, p in enumerate(rows)}
        sort_key = pull_updated if order[0] == "UPDATED_AT" else (lambda p: p["created_at"])

        def cursor_of(i: int) -> str:
            return b64("cursor:v2:" + json.dumps([iso(sort_key(rows[i])), int(rows[i]["number"])]))

        def position(cursor: str) -> int:
            try:
                _, number = json.loads(unb64(cursor)[len("cursor:v2:"):])
                return pos[int(number)]
            except (ValueError, KeyError, TypeError):
                raise bad_cursor(cursor) from None

        return connection("PullRequestConnection", rows, args, name, cursor_of, position,
                          lambda p: self.pull(ix, p))

    def ref(self, ix: RepoIndex, qualified: str) -> Obj | None:
        if qualified.startswith("refs/") and not qualified.startswith("refs/heads/"):
            return None
        branch = qualified[len("refs/heads/"):] if qualified.startswith("refs/heads/") else qualified
        head = ix.head(branch) if branch else None
        if head is None:
            return None
        return Obj("Ref", {"name": branch, "prefix": "refs/heads/", "id": node_id("Ref", f"{ix.full}:{branch}"),
                           "target": self.commit(ix, head)}, ("Node",))

    # ------------------------------------------------------------------ pull requests
    def pull(self, ix: RepoIndex, p: dict) -> Obj:
        n = int(p["number"])
        pid = int(p.get("id") or stable_int(f"pull:{ix.full}#{n}"))
        merged = bool(p.get("merged_at"))
        head = p.get("head_sha")
        labels = p.get("labels") or []
        return Obj("PullRequest", {
            "id": node_id("PullRequest", pid), "databaseId": pid, "number": n, "title": p.get("title", ""),
            "body": p.get("body") or "", "url": f"{self.ctx.html}/{ix.full}/pull/{n}", "state": pull_state(p),
            "isDraft": bool(p.get("draft", False)), "merged": merged, "createdAt": iso(p["created_at"]),
            "updatedAt": iso(pull_updated(p)), "mergedAt": iso(p.get("merged_at")), "closedAt": iso(p.get("closed_at")),
            "baseRefName": p.get("base", ix.r.get("default_branch", "main")),
            "headRefName": p.get("head_ref", f"pr-{n}"), "headRefOid": head,
            "author": self.actor(p.get("user")), "mergedBy": self.actor(p.get("merged_by")) if merged else None,
            "mergeCommit": self.commit(ix, p["merge_commit_sha"]) if merged and p.get("merge_commit_sha") else None,
            "labels": lambda args, name: small("LabelConnection", labels, args, name, lambda lb: Obj("Label", {
                "name": lb, "id": node_id("Label", stable_int(f"label:{ix.full}:{lb}")), "color": "ededed"})),
            "reviews": lambda args, name: self.reviews(ix, n, args, name),
            "commits": lambda args, name: small("PullRequestCommitConnection", [head] if head else [], args, name,
                                                lambda sha: Obj("PullRequestCommit", {
                                                    "id": node_id("PullRequestCommit", f"{pid}:{sha}"),
                                                    "commit": self.commit(ix, sha),
                                                    "url": f"{self.ctx.html}/{ix.full}/pull/{n}/commits/{sha}"})),
        }, ("Node",))

    def reviews(self, ix: RepoIndex, n: int, args: dict, name: str) -> Obj:
        rows = ix.reviews(n)
        if args.get("states"):
            rows = [rv for rv in rows if rv.get("state", "COMMENTED") in args["states"]]

        def node(rv: dict) -> Obj:
            rid = int(rv["id"])
            return Obj("PullRequestReview", {
                "id": node_id("PullRequestReview", rid), "databaseId": rid, "state": rv.get("state", "COMMENTED"),
                "body": rv.get("body", ""),
                "submittedAt": iso(rv.get("submitted_at")) if rv.get("state") != "PENDING" else None,
                "author": self.actor(rv.get("user")),
                "commit": self.commit(ix, rv["commit_id"]) if rv.get("commit_id") else None,
            }, ("Node",))
        return small("PullRequestReviewConnection", rows, args, name, node)

    # ------------------------------------------------------------------ commits
    def commit(self, ix: RepoIndex, sha: str) -> Obj:
        c = ix.commit(sha) or {}
        msg = c.get("message", "")
        return Obj("Commit", {
            "oid": sha, "id": node_id("Commit", sha[:20]), "url": f"{self.ctx.html}/{ix.full}/commit/{sha}",
            "committedDate": ix.committed(c) if c else None,
            "authoredDate": iso(c.get("author_date") or c.get("date")) if c else None,
            "message": msg, "messageHeadline": msg.split("\n", 1)[0],
            "parents": lambda args, name: small("CommitConnection", c.get("parents", []), args, name,
                                                lambda s: self.commit(ix, s)),
            "associatedPullRequests": lambda args, name: small(
                "PullRequestConnection", [p for p in ix.prs_by_sha.get(sha, [])
                                          if not args.get("states") or pull_state(p) in args["states"]],
                args, name, lambda p: self.pull(ix, p)),
            "checkSuites": lambda args, name: small("CheckSuiteConnection", ix.suites(sha), args, name,
                                                    lambda s: self.check_suite(ix, sha, s)),
            "status": lambda args, _n: self.status(ix, sha),
            "history": lambda args, name: self.history(ix, sha, args, name),
        }, ("GitObject", "Node"))

    def history(self, ix: RepoIndex, sha: str, args: dict, name: str) -> Obj:
        rows, asc = ix.history(sha) if sha in ix.commits else ([], [])
        n = len(asc)
        lo = n - bisect.bisect_right(asc, iso(args["until"])) if args.get("until") else 0
        hi = n - bisect.bisect_left(asc, iso(args["since"])) if args.get("since") else n
        view = _View(rows, lo, hi)

        def position(cursor: str) -> int:
            oid, _, i = unb64(cursor).partition(" ")
            if oid != sha or not i.isdigit():
                raise bad_cursor(cursor)
            return int(i)

        return connection("CommitHistoryConnection", view, args, name, lambda i: b64(f"{sha} {i}"), position,
                          lambda s: self.commit(ix, s))

    def check_suite(self, ix: RepoIndex, sha: str, suite: tuple) -> Obj:
        sid, app, runs = suite
        slug = app.get("slug") if isinstance(app, dict) else app
        done = all(r.get("status", "completed") == "completed" for r in runs)
        concl = {r.get("conclusion") for r in runs}
        return Obj("CheckSuite", {
            "id": node_id("CheckSuite", sid), "databaseId": sid,
            "app": Obj("App", {"slug": slug, "name": lambda _a, _n: (self.ctx.app(app) or {}).get("name", slug),
                               "databaseId": lambda _a, _n: (self.ctx.app(app) or {}).get("id"),
                               "id": lambda _a, _n: (self.ctx.app(app) or {}).get("node_id")}, ("Node",)),
            "status": "COMPLETED" if done else "IN_PROGRESS",
            "conclusion": (("FAILURE" if concl & FAILING else "SUCCESS") if done else None),
            "checkRuns": lambda args, name: self.check_runs(ix, sha, runs, args, name),
        }, ("Node",))

    def check_runs(self, ix: RepoIndex, sha: str, runs: list, args: dict, name: str) -> Obj:
        flt = args.get("filterBy") or {}
        rows = runs
        if flt.get("checkType", "LATEST") == "LATEST":
            latest: dict[str, dict] = {}
            for c in sorted(runs, key=lambda c: (c.get("started_at") or "", int(c["id"])), reverse=True):
                latest.setdefault(c["name"], c)
            rows = [c for c in runs if latest[c["name"]] is c]
        if flt.get("checkName"):
            rows = [c for c in rows if c["name"] == flt["checkName"]]
        if flt.get("status"):
            rows = [c for c in rows if upper(c.get("status", "completed")) == flt["status"]]

        def node(cr: dict) -> Obj:
            cid = int(cr["id"])
            html = f"{self.ctx.html}/{ix.full}/runs/{cid}"
            return Obj("CheckRun", {
                "id": node_id("CheckRun", cid), "databaseId": cid, "name": cr["name"],
                "status": upper(cr.get("status", "completed")), "conclusion": upper(cr.get("conclusion")),
                "startedAt": iso(cr.get("started_at")), "completedAt": iso(cr.get("completed_at")),
                "detailsUrl": cr.get("details_url", html), "url": html, "title": cr.get("title"),
                "summary": cr.get("summary"),
            }, ("Node",))
        return small("CheckRunConnection", rows, args, name, node)

    def status(self, ix: RepoIndex, sha: str) -> Obj | None:
        latest = ix.latest_statuses(sha)
        if not latest:
            return None
        states = {s["state"] for s in latest}
        state = "FAILURE" if states & {"failure", "error"} else "PENDING" if "pending" in states else "SUCCESS"
        return Obj("Status", {
            "id": node_id("Status", sha[:20]), "state": state,
            "contexts": [Obj("StatusContext", {
                "id": node_id("StatusContext", int(s["id"])), "context": s.get("context", "default"),
                "state": upper(s["state"]), "description": s.get("description"), "targetUrl": s.get("target_url"),
                "createdAt": iso(s["created_at"]), "creator": self.actor(s.get("creator")),
            }, ("Node",)) for s in latest],
        }, ("Node",))

    # ------------------------------------------------------------------ deployments
    def deployment(self, ix: RepoIndex, d: dict) -> Obj:
        did = int(d["id"])
        rows = sorted(d.get("statuses") or [], key=lambda s: (s["created_at"], int(s["id"])), reverse=True)
        env = d.get("environment", "production")

        def status(s: dict) -> Obj:
            sid = int(s["id"])
            return Obj("DeploymentStatus", {
                "id": node_id("DeploymentStatus", sid), "state": upper(s["state"]),
                "description": s.get("description") or None, "environment": s.get("environment", env),
                "environmentUrl": s.get("environment_url") or None, "logUrl": s.get("log_url") or None,
                "createdAt": iso(s["created_at"]), "updatedAt": iso(s.get("updated_at", s["created_at"])),
                "creator": self.actor(s.get("creator")),
            }, ("Node",))

        return Obj("Deployment", {
            "id": node_id("Deployment", did), "databaseId": did, "environment": env,
            "originalEnvironment": d.get("original_environment", env), "task": d.get("task", "deploy"),
            "description": d.get("description"), "createdAt": iso(d["created_at"]),
            "updatedAt": iso(d.get("updated_at", d["created_at"])), "commitOid": d["sha"],
            "commit": self.commit(ix, d["sha"]), "creator": self.actor(d.get("creator")),
            "latestStatus": status(rows[0]) if rows else None,
            "statuses": lambda args, name: small("DeploymentStatusConnection", rows, args, name, status),
        }, ("Node",))
