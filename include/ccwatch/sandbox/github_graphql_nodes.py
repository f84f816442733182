"""GitHub GraphQL double, the object graph: Repository, PullRequest, Commit, CheckSuite, Deployment ...

Objects are plain dicts keyed by GraphQL field name (``__typename`` where the position is an
interface or union); a callable value is a resolver, called with the field's arguments, so
connections (:func:`~ccwatch.sandbox.github_graphql_paging.connection`, O(page) over the
per-repository indexes of :class:`~ccwatch.sandbox.github_graphql_index.RepoIndex`) are built only
when selected.  graphql-core (``github_graphql_exec``) serialises them by the published schema: a
dict may hold more keys than a query selects, and an id too big for an ``Int`` field fails there
exactly as on GitHub.

Identities match the REST double (``render.py``): ``id`` = the REST ``node_id``; ``databaseId``
(``Int``) and ``fullDatabaseId`` (``BigInt``) = the REST ``id``; an App's ``databaseId`` = the
REST ``app.id``.  Bots are ``Bot`` actors whose login has no ``[bot]`` suffix (API-NOTES.md).
"""

from __future__ import annotations

import bisect
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql import GraphQLError

from ccwatch.sandbox.github_graphql_errors import GitHubError
from ccwatch.sandbox.github_graphql_index import RepoIndex, iso, pull_state, pull_updated, upper
from ccwatch.sandbox.github_graphql_paging import b64, bad_cursor, connection, unb64
from ccwatch.sandbox.render import Ctx, label_id, node_id, pull_id, repo_id

Obj = dict[str, Any]
GHOST = "ghost"  # GitHub's stand-in for a deleted account (a non-null actor with no one behind it)
# search(type: ISSUE): the two query forms the double answers, qualifiers in any order:
# CcwatchMergedCount's (one repository, a count) and CcwatchMergedPullsSearch's (an owner's merged PRs)
_SEARCH_TERMS = {"repo", "is:pr", "is:merged", "base", "merged"}
_ORG_TERMS = {"org", "is:pr", "is:merged", "updated", "merged", "sort"}
SEARCH_CAP = 1000  # GitHub search gives at most 1,000 results (issueCount says how many matched)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _View:
    """rows[lo:hi] without copying (a page of a 100k-commit history costs O(page))."""

    def __init__(self, rows: list, lo: int, hi: int):
        self.rows, self.lo, self.hi = rows, lo, max(hi, lo)

    def __len__(self) -> int:
        return self.hi - self.lo

    def __getitem__(self, s: slice) -> list:
        return self.rows[self.lo + s.start: self.lo + s.stop]


def _search_bound(text: str, end: bool) -> str:
    """One end of ``merged:FROM..TO`` as an ISO-8601 UTC string: a day covers the whole UTC day."""
    if _DAY.match(text):
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        return (day + timedelta(days=1, seconds=-1) if end else day).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise GraphQLError(f"merged:{text}: not a date or an ISO-8601 time") from None


def _search_terms(query: str, allowed: set[str]) -> dict[str, str]:
    """The qualifiers of a search string (``is:pr`` and ``is:merged`` by their whole word, the
    others by key), or {} when a word is not one of ``allowed``, repeats, or has no value."""
    terms: dict[str, str] = {}
    for word in query.split():
        key, sep, value = word.partition(":")
        name = word if key == "is" else key
        if not sep or name not in allowed or name in terms or (key != "is" and not value):
            return {}
        terms[name] = value
    return terms


def parse_merged_search(query: str) -> tuple[str, str, str, str]:
    """(repository, base, from, to) of ``repo:o/r is:pr is:merged base:B merged:FROM..TO`` (any
    order); anything else is an error without a GitHub ``type`` (a limit of the double, not of
    GitHub): the double answers no other search."""
    terms = _search_terms(query, _SEARCH_TERMS)
    lo, dots, hi = terms.get("merged", "").partition("..")
    if set(terms) != _SEARCH_TERMS or not dots or not lo or not hi:
        raise GraphQLError("The sandbox's GitHub double answers only the search "
                           f"'repo:OWNER/NAME is:pr is:merged base:BRANCH merged:FROM..TO', not {query!r}")
    return terms["repo"], terms["base"], _search_bound(lo, end=False), _search_bound(hi, end=True)


def parse_pulls_search(query: str) -> tuple[str, str, str, str]:
    """(owner, updated from, merged from, merged to) of ``org:O is:pr is:merged updated:>=T
    merged:FROM..TO sort:updated-desc`` (any order); anything else is a GraphQLError (a limit of the
    double: it answers no other search)."""
    terms = _search_terms(query, _ORG_TERMS)
    lo, dots, hi = terms.get("merged", "").partition("..")
    upd = terms.get("updated", "")
    if (set(terms) != _ORG_TERMS or not dots or not lo or not hi or not upd.startswith(">=")
            or terms.get("sort") != "updated-desc"):
        raise GraphQLError("The sandbox's GitHub double answers only the searches 'repo:OWNER/NAME is:pr "
                           "is:merged base:BRANCH merged:FROM..TO' and 'org:OWNER is:pr is:merged updated:>=TIME "
                           f"merged:FROM..TO sort:updated-desc', not {query!r}")
    return (terms["org"], _search_bound(upd[2:], end=False), _search_bound(lo, end=False),
            _search_bound(hi, end=True))


def lagging(r: dict) -> list[dict]:
    """The PRs of repository ``r`` GitHub's search index has not caught up with (scenario key
    ``search_lag``: PR numbers): the org-wide PR search leaves them out (nodes and ``issueCount``),
    and the repository's count search too when ``search_lag_count`` is true (docs/SANDBOX.md)."""
    lag = {int(n) for n in r.get("search_lag") or []}
    return [p for p in r.get("pulls") or [] if int(p["number"]) in lag] if lag else []


class Nodes:
    """The resolvers of one request (``ctx``: the origin the client called, for URLs)."""

    def __init__(self, api: Any, ctx: Ctx):
        self.api, self.ctx = api, ctx

    def query_root(self, rate: Obj) -> Obj:
        return {"rateLimit": lambda _a: rate, "repository": self.repository, "nodes": self.nodes,
                "search": self.search}

    # ------------------------------------------------------------------ roots
    def repository(self, args: dict) -> Obj:
        owner, name = args.get("owner") or "", args.get("name") or ""
        ix = self.api.index(f"{owner}/{name}")
        if ix is None:
            raise GitHubError("NOT_FOUND", f"Could not resolve to a Repository with the name '{owner}/{name}'.")
        return self.repo(ix)

    def nodes(self, args: dict) -> list:
        """``nodes(ids:)``: Deployments (the only node type ccwatch looks up); an unknown id is
        ``null`` at its position with a NOT_FOUND error (graphql-core lists it at ``["nodes", i]``)."""
        table = self.api.deployments()
        out: list[Any] = []
        for gid in args.get("ids") or []:
            found = table.get(gid)
            out.append(self.deployment(*found) if found else GitHubError(
                "NOT_FOUND", f"Could not resolve to a node with the global id of '{gid}'"))
        return out

    def search(self, args: dict) -> Obj:
        if args.get("type") != "ISSUE":
            raise GraphQLError("The sandbox's GitHub double answers search(type: ISSUE) only")
        if any(w.startswith("org:") for w in (args.get("query") or "").split()):
            return self.search_pulls(args)
        repo, base, lo, hi = parse_merged_search(args.get("query") or "")
        ix = self.api.index(repo)
        count = ix.merged_count(base, lo, hi) if ix is not None else 0
        if ix is not None and ix.r.get("search_lag_count"):  # the index lag reaches the count too
            count -= sum(1 for p in lagging(ix.r) if p.get("base", ix.r.get("default_branch", "main")) == base
                         and p.get("merged_at") and lo <= iso(p["merged_at"]) <= hi)
        return {"issueCount": count, "nodes": [], "pageInfo": {"hasNextPage": False, "hasPreviousPage": False}}

    def search_pulls(self, args: dict) -> Obj:
        """An owner's merged PRs (every base) merged in [from, to] and updated since a time, newest
        update first (then repository and number); ``issueCount`` counts them all, the connection
        reaches the first SEARCH_CAP only, as on GitHub."""
        owner, upd, lo, hi = parse_pulls_search(args.get("query") or "")
        rows = []
        for full, _ in self.api.gh.repos.values():
            if full.split("/", 1)[0].lower() != owner.lower():
                continue
            ix = self.api.index(full)
            hidden = {int(p["number"]) for p in lagging(ix.r)}
            for p in ix.r.get("pulls") or []:
                merged = iso(p.get("merged_at"))
                if merged and lo <= merged <= hi and iso(pull_updated(p)) >= upd and int(p["number"]) not in hidden:
                    rows.append((iso(pull_updated(p)), full.lower(), int(p["number"]), ix, p))
        rows.sort(key=lambda t: (t[0], t[1], t[2]), reverse=True)
        out = connection(rows[:SEARCH_CAP], args, lambda t: self.pull(t[3], t[4]))
        out["issueCount"] = len(rows)
        return out

    # ------------------------------------------------------------------ actors
    def actor(self, login: str | None) -> Obj | None:
        """An ``Actor`` (User, Bot or Organization) as GitHub's GraphQL spells it; None for no one."""
        if not login:
            return None
        uid, utype = self.ctx.user_info(login)
        if utype == "Bot":
            short = login[:-5] if login.endswith("[bot]") else login
            return {"__typename": "Bot", "login": short, "databaseId": uid, "id": node_id("Bot", uid),
                    "url": f"{self.ctx.html}/apps/{short}"}
        kind = "Organization" if utype == "Organization" else "User"
        return {"__typename": kind, "login": login, "databaseId": uid, "id": node_id(kind, uid),
                "url": f"{self.ctx.html}/{login}"}

    # ------------------------------------------------------------------ repository
    def repo(self, ix: RepoIndex) -> Obj:
        rid = repo_id(ix.full, ix.r)
        return {"id": node_id("Repository", rid), "databaseId": rid, **self.repo_settings(ix),
                "pullRequests": lambda args: self.pull_requests(ix, args),
                "ref": lambda args: self.ref(ix, args.get("qualifiedName") or "")}

    def repo_settings(self, ix: RepoIndex) -> Obj:
        """The settings fields (``CcwatchRepositories``), from the same values as the REST body of
        ``GET /repos/{o}/{r}`` (``render.Ctx.repo``): ``pushedAt`` moves with a push to any branch;
        the merge methods are the scenario's ``allow_*`` keys (GitHub's defaults when absent)."""
        rest = self.ctx.repo(ix.full, ix.r, full=True)
        perms = rest.get("permissions") or {}
        perm = next((p for key, p in (("admin", "ADMIN"), ("maintain", "MAINTAIN"), ("push", "WRITE"),
                                      ("triage", "TRIAGE"), ("pull", "READ")) if perms.get(key)), None)
        r = ix.r
        return {"nameWithOwner": rest["full_name"], "url": rest["html_url"], "visibility": rest["visibility"].upper(),
                "isPrivate": rest["private"], "isFork": rest["fork"], "isTemplate": rest["is_template"],
                "isArchived": rest["archived"], "archivedAt": r.get("archived_at"), "isDisabled": rest["disabled"],
                "isLocked": False, "defaultBranchRef": {"name": rest["default_branch"]},
                "mergeCommitAllowed": bool(r.get("allow_merge_commit", True)),
                "squashMergeAllowed": bool(r.get("allow_squash_merge", True)),
                "rebaseMergeAllowed": bool(r.get("allow_rebase_merge", True)),
                "autoMergeAllowed": bool(r.get("allow_auto_merge", False)),
                "deleteBranchOnMerge": bool(r.get("delete_branch_on_merge", False)),
                "webCommitSignoffRequired": rest["web_commit_signoff_required"], "viewerPermission": perm,
                "createdAt": rest["created_at"], "updatedAt": rest["updated_at"], "pushedAt": rest["pushed_at"]}

    def pull_requests(self, ix: RepoIndex, args: dict) -> Obj:
        states = tuple(sorted(args.get("states") or ()))
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

        return connection(rows, args, lambda p: self.pull(ix, p), cursor_of, position)

    def ref(self, ix: RepoIndex, qualified: str) -> Obj | None:
        if qualified.startswith("refs/") and not qualified.startswith("refs/heads/"):
            return None
        branch = qualified[len("refs/heads/"):] if qualified.startswith("refs/heads/") else qualified
        head = ix.head(branch) if branch else None
        if head is None:
            return None
        return {"id": node_id("Ref", f"{ix.full}:{branch}"), "name": branch, "target": self.commit(ix, head),
                "branchProtectionRule": lambda args: self.protection_rule(ix, branch),
                "rules": lambda args: {"totalCount": len((ix.r.get("rules") or {}).get(branch) or [])}}

    def protection_rule(self, ix: RepoIndex, branch: str) -> Obj | None:
        """The classic rule for the ref, as the REST double's ``protection`` says (a ``protected: true``
        branch without classic protection or rules: a rule the scenario does not detail).  GitHub answers
        ``FORBIDDEN`` to a token without the Administration permission: ``protection: "forbidden"`` or
        ``branches.<b>.rule_hidden`` (a token whose REST protection answer still says 404)."""
        info = (ix.r.get("branches") or {}).get(branch) or {}
        prot = (ix.r.get("protection") or {}).get(branch)
        if prot == "forbidden" or info.get("rule_hidden"):
            raise GitHubError("FORBIDDEN", "Resource not accessible by integration")
        rules = (ix.r.get("rules") or {}).get(branch)
        if isinstance(prot, dict) or (info.get("protected") is True and not rules):
            return {"id": node_id("BranchProtectionRule", f"{ix.full}:{branch}")}
        return None

    # ------------------------------------------------------------------ pull requests
    def pull(self, ix: RepoIndex, p: dict) -> Obj:
        n = int(p["number"])
        pid = pull_id(ix.full, p)
        merged = bool(p.get("merged_at"))
        head = p.get("head_sha")
        labels = p.get("labels") or []
        return {
            "__typename": "PullRequest", "id": node_id("PullRequest", pid), "databaseId": pid, "fullDatabaseId": pid,
            "number": n, "title": p.get("title", ""), "url": f"{self.ctx.html}/{ix.full}/pull/{n}",
            "state": pull_state(p), "createdAt": iso(p["created_at"]), "updatedAt": iso(pull_updated(p)),
            "mergedAt": iso(p.get("merged_at")), "closedAt": iso(p.get("closed_at")),
            "baseRefName": p.get("base", ix.r.get("default_branch", "main")),
            "headRefName": p.get("head_ref", f"pr-{n}"), "headRefOid": head,
            "author": self.actor(p.get("user")), "mergedBy": self.actor(p.get("merged_by")) if merged else None,
            "mergeCommit": (lambda _a: self.commit(ix, p["merge_commit_sha"])) if merged and p.get("merge_commit_sha")
            else None,
            "labels": lambda args: connection(labels, args, lambda lb: {
                "name": lb, "id": node_id("Label", label_id(ix.full, lb))}),
            "reviews": lambda args: self.reviews(ix, n, args),
            "timelineItems": lambda args: connection(self.timeline(ix, p, pid, args), args, lambda e: e),
            "commits": lambda args: connection([head] if head else [], args, lambda sha: {
                "__typename": "PullRequestCommit", "id": node_id("PullRequestCommit", f"{pid}:{sha}"),
                "commit": self.commit(ix, sha)}),
        }

    def timeline(self, ix: RepoIndex, p: dict, pid: int, args: dict) -> list[Obj]:
        """The PR's timeline events the double knows: the ``AddedToMergeQueueEvent`` of a scenario
        PR's ``queued_by``/``queued_at`` (``itemTypes`` filters; no other event is modelled)."""
        wanted = args.get("itemTypes")
        if not p.get("queued_by") or (wanted and "ADDED_TO_MERGE_QUEUE_EVENT" not in wanted):
            return []
        actor = self.actor(p["queued_by"])
        enqueuer = {"login": actor["login"], "id": actor["id"]} if actor and actor["__typename"] == "User" else None
        return [{"__typename": "AddedToMergeQueueEvent", "id": node_id("AddedToMergeQueueEvent", f"{pid}:1"),
                 "createdAt": iso(p.get("queued_at") or p.get("merged_at") or p["created_at"]), "actor": actor,
                 "enqueuer": enqueuer}]

    def reviews(self, ix: RepoIndex, n: int, args: dict) -> Obj:
        rows = ix.reviews(n)
        if args.get("states"):
            rows = [rv for rv in rows if rv.get("state", "COMMENTED") in args["states"]]

        def node(rv: dict) -> Obj:
            rid = int(rv["id"])
            return {"__typename": "PullRequestReview", "id": node_id("PullRequestReview", rid), "databaseId": rid,
                    "fullDatabaseId": rid, "state": rv.get("state", "COMMENTED"),
                    "submittedAt": iso(rv.get("submitted_at")) if rv.get("state") != "PENDING" else None,
                    "author": self.actor(rv.get("user")),
                    "commit": self.commit(ix, rv["commit_id"]) if rv.get("commit_id") else None}
        return connection(rows, args, node)

    # ------------------------------------------------------------------ commits
    def commit(self, ix: RepoIndex, sha: str) -> Obj:
        c = ix.commit(sha) or {}
        return {
            "__typename": "Commit", "oid": sha, "id": node_id("Commit", sha[:20]),
            "committedDate": ix.committed(c) if c else None,
            "parents": lambda args: connection(c.get("parents", []), args, lambda s: self.commit(ix, s)),
            "associatedPullRequests": lambda args: connection(
                [p for p in ix.prs_by_sha.get(sha, []) if not args.get("states") or pull_state(p) in args["states"]],
                args, lambda p: self.pull(ix, p)),
            "checkSuites": lambda args: connection(ix.suites(sha), args, lambda s: self.check_suite(ix, sha, s)),
            "status": lambda _a: self.status(ix, sha),
            "history": lambda args: self.history(ix, sha, args),
        }

    def history(self, ix: RepoIndex, sha: str, args: dict) -> Obj:
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

        return connection(view, args, lambda s: self.commit(ix, s), lambda i: b64(f"{sha} {i}"), position)

    def check_suite(self, ix: RepoIndex, sha: str, suite: tuple) -> Obj:
        sid, app, runs = suite
        info = self.ctx.app(app) or {}
        return {"id": node_id("CheckSuite", sid), "databaseId": sid,
                "app": {"id": info.get("node_id"), "databaseId": info.get("id"), "slug": info.get("slug")},
                "checkRuns": lambda args: self.check_runs(ix, runs, args)}

    def check_runs(self, ix: RepoIndex, runs: list, args: dict) -> Obj:
        flt = args.get("filterBy") or {}
        rows = runs
        if (flt.get("checkType") or "LATEST") == "LATEST":
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
            return {"id": node_id("CheckRun", cid), "databaseId": cid, "name": cr["name"],
                    "status": upper(cr.get("status", "completed")), "conclusion": upper(cr.get("conclusion")),
                    "startedAt": iso(cr.get("started_at")), "completedAt": iso(cr.get("completed_at")),
                    "detailsUrl": cr.get("details_url", html), "url": html}
        return connection(rows, args, node)

    def status(self, ix: RepoIndex, sha: str) -> Obj | None:
        latest = ix.latest_statuses(sha)
        if not latest:
            return None
        return {"id": node_id("Status", sha[:20]), "contexts": [{
            "id": node_id("StatusContext", int(s["id"])), "context": s.get("context", "default"),
            "state": upper(s["state"]), "targetUrl": s.get("target_url"), "createdAt": iso(s["created_at"]),
            "creator": self.actor(s.get("creator"))} for s in latest]}

    # ------------------------------------------------------------------ deployments
    def deployment(self, ix: RepoIndex, d: dict) -> Obj:
        did = int(d["id"])
        rows = sorted(d.get("statuses") or [], key=lambda s: (s["created_at"], int(s["id"])), reverse=True)
        env = d.get("environment", "production")

        def status(s: dict) -> Obj:
            sid = int(s["id"])
            return {"id": node_id("DeploymentStatus", sid), "state": upper(s["state"]),
                    "description": s.get("description") or None, "environmentUrl": s.get("environment_url") or None,
                    "logUrl": s.get("log_url") or None, "createdAt": iso(s["created_at"]),
                    "updatedAt": iso(s.get("updated_at", s["created_at"])),
                    "creator": self.actor(s.get("creator") or GHOST)}

        return {"__typename": "Deployment", "id": node_id("Deployment", did), "databaseId": did, "environment": env,
                "createdAt": iso(d["created_at"]), "commitOid": d["sha"],
                "statuses": lambda args: connection(rows, args, status)}

