"""GitHub GraphQL batches of the connector (docs/ARCHITECTURE.md, "GraphQL raw kinds").

Three documents of :mod:`ccwatch.ingest.github.queries` replace per-object REST requests (none
selects a 32-bit ``Int`` id: real ids are past 2**31, see that module):

* ``CcwatchMergedPulls`` (50 PRs a request, with reviews, labels, head checks and statuses)
  replaces the pulls list and the per-PR ``pull``/``reviews``/``check-runs``/``statuses``
  GETs: raw kind ``gql_pull`` (payload: the PullRequest node exactly as returned);
* ``CcwatchBranchHistory`` (100 commits a request) replaces ``/commits/{sha}/pulls`` for each
  first-parent commit: raw kind ``gql_commit_pulls`` (payload: that commit's history node);
* ``CcwatchDeploymentStatuses`` (50 deployments a request, by node id) replaces
  ``/deployments/{id}/statuses``: raw kind ``gql_deployment_statuses`` (the Deployment node).
  ``nodes(ids:)`` answers in the order asked; each node is matched to its REST deployment by that
  position and checked on ``environment``, ``createdAt`` and (when the REST payload is known)
  ``commitOid``: GraphQL has no 64-bit deployment id, and node ids are opaque (GitHub may answer a
  newer id format than the one asked for).  A node that does not match goes through REST.

Nothing is truncated: a piece GraphQL cannot give whole (a nested ``hasNextPage``, a status
context whose latest status came after the merge, a head commit other than ``headRefOid``, a
commit with more associated PRs than a page, a deployment node that does not resolve, does not
match or has more statuses) is ALSO fetched through REST as
today's kind, and the normaliser takes that piece from the REST record.

Requests go through PyGithub's requester (auth, Enterprise ``/api/graphql``, the bounded
``GithubRetry`` of ``ingest/http/retry.py``, which retries POST: these queries are
idempotent reads).  GitHub answers query errors with HTTP 200 and an ``errors`` array: any
error fails the fetch (a partial answer is never evidence).  ``rateLimit`` cost/remaining is
logged at DEBUG.  The token is in the requester's auth header only, never in a message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from github import GithubException, RateLimitExceededException

from ccwatch.common.times import iso_z, parse_ts, parse_ts_or_none
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github.answers import is_rate_limit
from ccwatch.ingest.github.pieces import pull_incomplete
from ccwatch.ingest.github.queries import (
    ASSOCIATED_PULLS,
    DEPLOYMENT_NODES,
    DEPLOYMENT_STATUSES_PAGE,
    HISTORY_PAGE,
    HISTORY_REPOS,
    OPERATIONS,
    PULLS_PAGE,
    branch_histories_document,
    merged_count_query,
    search_time,
)
from ccwatch.ingest.http.paging import is_before, sorted_past
from ccwatch.ingest.http.retry import RETRY_STATUSES, rate_limit_text
from ccwatch.ingest.http.urls import public_url
from ccwatch.ingest.records import RawRecord

log = logging.getLogger(__name__)

PULLS_OP, HISTORY_OP, DEPLOYMENTS_OP = "CcwatchMergedPulls", "CcwatchBranchHistory", "CcwatchDeploymentStatuses"
HISTORIES_OP = "CcwatchBranchHistories"
COUNT_OP, COUNTS_OP = "CcwatchMergedCount", "CcwatchMergedCounts"
SEARCH_OP = "CcwatchMergedPullsSearch"

# fine-grained permission each document needs (classic tokens: the 'repo' scope)
_NEEDS = {PULLS_OP: "Pull requests: read", HISTORY_OP: "Contents: read", HISTORIES_OP: "Contents: read",
          DEPLOYMENTS_OP: "Deployments: read",
          COUNT_OP: "Pull requests: read", COUNTS_OP: "Pull requests: read",
          SEARCH_OP: "Pull requests: read"}


class GraphQL:
    """POSTs the documents of ``queries`` for one repository (``r``: its ``client.RepoClient``)."""

    def __init__(self, r: Any) -> None:
        self.r = r
        self.repo = r.repo
        self.url = r.req.graphql_url
        self.shown = public_url(self.url)
        self.requests = 0

    def record_url(self, op: str) -> str:
        return f"{self.shown}#{op}"

    def query(self, op: str, variables: dict[str, Any], document: str | None = None) -> dict[str, Any]:
        """The ``data`` of one answer; SourceError on any HTTP or GraphQL error.  ``document``: the
        text of ``op`` when it is built per request (``queries.merged_counts_document``)."""
        shown = f"POST {self.shown} ({op})"
        self.requests += 1
        body_in = {"query": document or OPERATIONS[op], "variables": variables, "operationName": op}
        budget = getattr(self.r, "budget", None)  # ratebudget.RateBudget of concurrent fetches
        if budget is not None:
            budget.acquire("graphql")
        try:
            status, headers, body = self.r.req.requestJson("POST", self.url, input=body_in)
        except RateLimitExceededException as exc:  # retries spent, or the wait would pass the budget
            if budget is not None:
                budget.update(exc.headers, default_resource="graphql")
            raise self._rate_limited(shown, exc.headers, exc.data) from None
        except GithubException as exc:  # a 403 GithubRetry found not to be a rate limit
            status, headers, body = exc.status, dict(exc.headers or {}), exc.data
        except Exception as exc:  # connection errors, timeouts, exhausted retries
            raise SourceError(f"GitHub {self.repo}: {shown} failed (gave up after the retries): "
                              f"{type(exc).__name__}: {exc}") from None
        headers = {str(k).lower(): v for k, v in (headers or {}).items()}
        if budget is not None and headers:
            budget.update(headers, default_resource="graphql")
        if isinstance(body, (str, bytes, type(None))):
            try:
                data = json.loads(body) if body else None
            except ValueError:
                raise SourceError(f"GitHub {self.repo}: {shown}: HTTP {status}, body is not JSON "
                                  f"(truncated or not an API answer)") from None
        else:
            data = body
        msg = data.get("message") if isinstance(data, dict) else None
        if status == 429 or (status == 403 and is_rate_limit(headers, data)):
            raise self._rate_limited(shown, headers, data)
        if status == 401:
            raise SourceError(f"GitHub {self.repo}: {shown} answered HTTP 401" + (f" ({msg})" if msg else "")
                              + ": the token is invalid, expired or revoked; check the connection's token")
        if status != 200:
            text = f"GitHub {self.repo}: {shown} answered HTTP {status}" + (f": {msg}" if msg else "")
            if status == 403:
                text += (f". The token lacks access to {self.repo}: it needs the '{_NEEDS[op]}' repository "
                         f"permission (fine-grained token or GitHub App) or the 'repo' scope (classic token)")
            elif status in RETRY_STATUSES:
                text += " (still failing after the retries)"
            raise SourceError(text)
        if not isinstance(data, dict):
            raise SourceError(f"GitHub {self.repo}: {shown}: expected a JSON object, got {type(data).__name__}")
        errors = data.get("errors")
        if errors:
            errs = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
            limited = [e for e in errs if e.get("type") == "RATE_LIMITED"]
            if limited:
                raise self._rate_limited(shown, headers, limited[0])
            said = "; ".join(f"{e.get('type') or 'error'}: {e.get('message') or 'no message'}"
                             + (f" (at {'.'.join(map(str, e['path']))})" if isinstance(e.get("path"), list) else "")
                             for e in errs[:3]) or str(errors)[:300]
            more = f" (and {len(errs) - 3} more)" if len(errs) > 3 else ""
            raise SourceError(f"GitHub {self.repo}: {shown} answered GraphQL errors: {said}{more}")
        payload = data.get("data")
        if not isinstance(payload, dict):
            raise SourceError(f"GitHub {self.repo}: {shown}: the answer has no data")
        rl = payload.get("rateLimit")
        if isinstance(rl, dict):
            log.debug("GitHub %s: %s cost %s point(s), %s of %s remaining (resets at %s)", self.repo, op,
                      rl.get("cost"), rl.get("remaining"), rl.get("limit"), rl.get("resetAt"))
        return payload

    def _rate_limited(self, shown: str, headers: Any, data: Any) -> SourceError:
        msg = data.get("message") if isinstance(data, dict) else data
        return SourceError(f"GitHub {self.repo}: {shown}: rate limit exceeded and not reset within the "
                           f"retry budget ({rate_limit_text(headers)}): {msg or 'no message'}")


def next_cursor(g: GraphQL, op: str, info: Any, seen: set[str]) -> str | None:
    """The ``endCursor`` to continue with, None when the connection is complete."""
    if not isinstance(info, dict) or not info.get("hasNextPage"):
        return None
    cursor = info.get("endCursor")
    if not cursor or cursor in seen:
        raise SourceError(f"GitHub {g.repo}: POST {g.shown} ({op}): hasNextPage with "
                          f"{'no endCursor' if not cursor else 'an endCursor already fetched'}: paging loop")
    seen.add(cursor)
    return cursor


# ------------------------------------------------------------------------------------------ PRs
def fetch_pulls(r: Any, rc: Any, start: datetime, as_of: datetime, since: datetime | None = None,
                seen: set[Any] | None = None) -> Iterator[RawRecord]:
    """PRs merged into the production branch in ``[start, as_of]`` and updated since ``since``
    (default ``start``): one ``gql_pull`` each, plus REST records for their overflowing pieces.
    ``seen``: numbers already staged (left out; the kept ones are added to it)."""
    g = GraphQL(r)
    owner, name = rc.repo.split("/", 1)
    lo, hi = parse_ts(iso_z(start)), parse_ts(iso_z(as_of))
    upd_lo = parse_ts(iso_z(since or start))
    after: str | None = None
    cursors: set[str] = set()
    seen = set() if seen is None else seen
    rest = 0
    while True:
        data = g.query(PULLS_OP, {"owner": owner, "name": name, "base": rc.production_branch,
                                  "first": PULLS_PAGE, "after": after})
        conn = (data.get("repository") or {}).get("pullRequests") if isinstance(data.get("repository"), dict) else None
        if not isinstance(conn, dict):
            raise SourceError(f"GitHub {rc.repo}: POST {g.shown} ({PULLS_OP}): no repository.pullRequests "
                              f"in the answer")
        nodes = [n for n in conn.get("nodes") or [] if isinstance(n, dict)]
        for rec in keep_pulls(r, rc.repo, nodes, lo, hi, upd_lo, seen, g.record_url(PULLS_OP)):
            rest += rec.kind != "gql_pull"
            yield rec
        if sorted_past(nodes, "updatedAt", upd_lo):  # newest first and already older than `since`
            break
        after = next_cursor(g, PULLS_OP, conn.get("pageInfo"), cursors)
        if after is None:
            break
    log.info("GitHub %s: %d merged PR(s) in %d GraphQL request(s), %d REST fallback record(s)",
             rc.repo, len(seen), g.requests, rest)


def keep_pulls(r: Any, repo: str, nodes: list[dict[str, Any]], lo: datetime, hi: datetime, upd_lo: datetime,
               seen: set[Any], url: str) -> Iterator[RawRecord]:
    """``gql_pull`` records of the PullRequest ``nodes`` merged in ``[lo, hi]`` and updated since
    ``upd_lo`` not ``seen`` yet (added to it), each followed by REST records of its overflowing
    pieces.  ``nodes``: a ``CcwatchMergedPulls`` page or (issue #15) the repository's PRs of the
    org-wide search, already of its production branch."""
    for node in nodes:
        merged = parse_ts(node.get("mergedAt"))
        n = node.get("number")
        # states: [MERGED]: a MERGED node without mergedAt is a merged PR whose merge time is
        # unknown: staged all the same so the load fails naming it (never silently left out)
        unmerged = merged is None and node.get("state", "MERGED") != "MERGED"
        if (unmerged or (merged is not None and not (lo <= merged <= hi)) or n in seen
                or is_before(node.get("updatedAt"), upd_lo)):
            continue
        seen.add(n)
        yield r.record("gql_pull", f"{repo}#{n}", url, node)
        if merged is None:  # the load refuses this node whatever REST would add
            continue
        yield from _pull_rest(r, repo, node)


def pulls_from_search(r: Any, rc: Any, nodes: list[Any], start: datetime, as_of: datetime, since: datetime,
                      url: str, seen: set[Any] | None = None) -> Iterator[RawRecord]:
    """(issue #15) The repository's PRs from the org-wide search (``discovery.py``): those of its
    production branch, as :func:`fetch_pulls` keeps them from its own pages (their numbers are
    added to ``seen``)."""
    lo, hi = parse_ts(iso_z(start)), parse_ts(iso_z(as_of))
    mine = [n for n in nodes if isinstance(n, dict) and n.get("baseRefName") == rc.production_branch]
    # newest update first, as CcwatchMergedPulls pages them (the staging order of the records)
    mine.sort(key=lambda n: (parse_ts(n.get("updatedAt")) or lo, n.get("number") or 0), reverse=True)
    seen = set() if seen is None else seen
    rest = 0
    for rec in keep_pulls(r, rc.repo, mine, lo, hi, parse_ts(iso_z(since)), seen, url):
        rest += rec.kind != "gql_pull"
        yield rec
    log.info("GitHub %s: %d merged PR(s) from the org-wide search, %d REST fallback record(s)", rc.repo, len(seen), rest)


def linked_merged(rec: RawRecord, branch: str, lo: datetime, hi: datetime) -> set[int]:
    """(issue #15) The numbers of the PRs a ``gql_commit_pulls`` / ``commit_pulls`` record links to
    its first-parent commit that were merged into ``branch`` in ``[lo, hi]``."""
    if rec.kind == "gql_commit_pulls":
        conn = rec.payload.get("associatedPullRequests") if isinstance(rec.payload, dict) else None
        prs = [(p.get("number"), p.get("baseRefName"), p.get("mergedAt"))
               for p in ((conn or {}).get("nodes") or []) if isinstance(p, dict)]
    elif rec.kind == "commit_pulls":
        prs = [(p.get("number"), (p.get("base") or {}).get("ref"), p.get("merged_at"))
               for p in rec.payload or [] if isinstance(p, dict)]
    else:
        return set()
    out = set()
    for number, base, merged in prs:
        at = parse_ts_or_none(merged) if isinstance(merged, str) else None
        if isinstance(number, int) and base == branch and at is not None and lo <= at <= hi:
            out.add(number)
    return out


def _pull_rest(r: Any, repo: str, node: dict[str, Any]) -> Iterator[RawRecord]:
    over = pull_incomplete(node)
    n = node["number"]
    for kind, why in over.items():
        log.debug("GitHub %s#%s: %s through REST (%s)", repo, n, kind, why)
    sha = node.get("headRefOid")
    if "pull" in over:
        _, pr, url, etag = r.get(f"/pulls/{n}")
        yield r.record("pull", f"{repo}#{n}", url, pr, etag=etag)
        sha = ((pr or {}).get("head") or {}).get("sha")
    if "reviews" in over:
        reviews, url, etag = r.get_all(f"/pulls/{n}/reviews")
        yield r.record("reviews", f"{repo}#{n}", url, reviews, etag=etag)
    if ("check_runs" in over or "statuses" in over) and not sha:
        raise SourceError(f"GitHub {repo}: pull #{n} has no head sha")
    if "check_runs" in over:
        runs, url, etag = r.get_all(f"/commits/{sha}/check-runs", {"filter": "all"}, items_key="check_runs")
        yield r.record("check_runs", f"{repo}@{sha}", url, runs, etag=etag)
    if "statuses" in over:
        sts, url, etag = r.get_all(f"/commits/{sha}/statuses")
        yield r.record("statuses", f"{repo}@{sha}", url, sts, etag=etag)


# ------------------------------------------------------------------------- commits -> their PRs
def _commit_date(c: dict[str, Any]) -> datetime | None:
    commit = c.get("commit") or {}
    try:
        return parse_ts((commit.get("committer") or {}).get("date") or (commit.get("author") or {}).get("date"))
    except ValueError:
        return None


def _associated_complete(node: dict[str, Any]) -> bool:
    """The history node lists all its commit's PRs: ``pageInfo`` says no more (without a pageInfo,
    a full page may hide more)."""
    conn = node.get("associatedPullRequests")
    prs = conn.get("nodes") if isinstance(conn, dict) else None
    if not isinstance(prs, list):
        return False
    info = conn.get("pageInfo")
    return not info.get("hasNextPage") if isinstance(info, dict) else len(prs) < ASSOCIATED_PULLS


@dataclass(frozen=True)
class Links:
    """One repository's first-parent commits whose PRs a fetch needs: ``commits`` in the order asked,
    each ``{"sha", "date"}`` (its committer date, ISO, or None); ``since`` (ISO) starts the history
    walk when a date is unknown, else the earliest date does."""

    repo: str
    branch: str
    commits: tuple[dict[str, Any], ...]
    since: str


def links(repo: str, branch: str, first_parent: list[dict[str, Any]], since: datetime) -> Links:
    """``first_parent``: REST commit list items (or items shaped like them: ``sha``, ``commit.committer.date``)."""
    return Links(repo, branch, tuple({"sha": c["sha"], "date": iso_z(d.replace(tzinfo=UTC)) if (d := _commit_date(c))
                                      else None} for c in first_parent), iso_z(since))


class _Walk:
    """The history walk of one repository: what it still looks for, what it found, where it is."""

    def __init__(self, w: Links) -> None:
        self.w = w
        self.wanted = {c["sha"] for c in w.commits}
        self.found: dict[str, dict[str, Any]] = {}
        dates = [parse_ts_or_none(c["date"]) for c in w.commits]
        lo = min(dates) if dates and None not in dates else parse_ts(w.since)  # type: ignore[type-var]
        self.since = iso_z((lo - timedelta(seconds=1)).replace(tzinfo=UTC))
        self.after: str | None = None
        self.cursors: set[str] = set()
        self.done = not self.wanted


def fetch_commit_pulls(r: Any, rc: Any, first_parent: list[dict[str, Any]], since: datetime
                       ) -> Iterator[RawRecord]:
    """``gql_commit_pulls`` for each first-parent commit of ONE repository (``r``): see :func:`commit_pulls`."""
    if not first_parent:
        return
    yield from commit_pulls(lambda name: GraphQL(r), {rc.repo: r},
                            [links(rc.repo, rc.production_branch, first_parent, since)], batched=False)


def commit_pulls(graphql: Any, clients: dict[str, Any], asked: list[Links], *, batched: bool = True,
                 pool: Any = None) -> Iterator[RawRecord]:
    """``gql_commit_pulls`` for each first-parent commit of ``asked`` found in its branch's history
    (paged from the repository's earliest asked date, stopping once all are found), REST
    ``commit_pulls`` through the repository's client for the others and for those with more
    associated PRs than one page.  ``batched``: the repositories' pages go ``HISTORY_REPOS`` a
    request (``CcwatchBranchHistories``, round after round while a repository has more pages);
    else one repository, ``CcwatchBranchHistory``.  A repository's records come as soon as its walk
    ends, in the order of its commits.  ``graphql(name)`` and ``pool``: as :func:`deployment_statuses`."""
    walks = [_Walk(w) for w in asked]
    pending = [x for x in walks if not x.done]
    size = HISTORY_REPOS if batched else 1
    op = HISTORIES_OP if batched else HISTORY_OP

    def ask(chunk: list[_Walk]) -> tuple[Any, list[Any]]:
        g = graphql(repos_named([x.w.repo for x in chunk], "first-parent history"))
        if batched:
            variables: dict[str, Any] = {"first": HISTORY_PAGE}
            for i, x in enumerate(chunk):
                owner, name = x.w.repo.split("/", 1)
                variables.update({f"o{i}": owner, f"n{i}": name, f"q{i}": f"refs/heads/{x.w.branch}",
                                  f"since{i}": x.since, f"after{i}": x.after})
            data = g.query(op, variables, branch_histories_document(len(chunk)))
            repos = [data.get(f"r{i}") for i in range(len(chunk))]
        else:
            (x,) = chunk
            owner, name = x.w.repo.split("/", 1)
            data = g.query(op, {"owner": owner, "name": name, "qualifiedName": f"refs/heads/{x.w.branch}",
                                "since": x.since, "first": HISTORY_PAGE, "after": x.after})
            repos = [data.get("repository")]
        histories = []
        for node in repos:
            node = node if isinstance(node, dict) else {}
            target = (node.get("ref") or {}).get("target") if isinstance(node.get("ref"), dict) else None
            histories.append(target.get("history") if isinstance(target, dict) else None)
        return g, histories

    requests = rest = 0
    while pending:
        chunks = [pending[k:k + size] for k in range(0, len(pending), size)]
        for chunk, (g, histories) in zip(chunks, (pool.map if pool is not None else map)(ask, chunks), strict=True):
            requests += 1
            for x, history in zip(chunk, histories, strict=True):
                if not isinstance(history, dict):
                    log.info("GitHub %s: %s has no history in GraphQL: commit PRs through REST", x.w.repo, x.w.branch)
                    x.done = True
                    continue
                for node in history.get("nodes") or []:
                    if isinstance(node, dict) and node.get("oid") in x.wanted:
                        x.found.setdefault(node["oid"], node)
                x.after = next_cursor(g, op, history.get("pageInfo"), x.cursors)
                x.done = x.after is None or not (x.wanted - x.found.keys())
            url = g.record_url(op)
            for x in chunk:
                if x.done:
                    rest += yield from _emit_links(clients[x.w.repo], x, url)
        pending = [x for x in pending if not x.done]
    if asked:
        log.info("GitHub %s: PRs of %d first-parent commit(s) in %d GraphQL request(s), %d through REST",
                 repos_named([w.repo for w in asked], "commits"), sum(len(w.commits) for w in asked), requests, rest)


def _emit_links(r: Any, x: _Walk, url: str) -> Iterator[RawRecord]:
    """One repository's records, in the order of its commits; returns how many went through REST."""
    rest = 0
    for c in x.w.commits:
        sha = c["sha"]
        node = x.found.get(sha)
        if node is not None and _associated_complete(node):
            yield r.record("gql_commit_pulls", f"{x.w.repo}@{sha}", url, node)
            continue
        rest += 1
        log.debug("GitHub %s@%s: commit PRs through REST (%s)", x.w.repo, sha,
                  "not in the GraphQL history" if node is None else f"more than {ASSOCIATED_PULLS} PRs")
        pulls, purl, etag = r.get_all(f"/commits/{sha}/pulls")
        yield r.record("commit_pulls", f"{x.w.repo}@{sha}", purl, pulls, etag=etag)
    return rest


# ------------------------------------------------------------------------ deployment statuses
@dataclass(frozen=True)
class Wanted:
    """The deployments of one repository and environment whose statuses a fetch needs: ``ids`` in
    the order asked, ``known`` the REST deployment payloads (or stored entries) with ``id``,
    ``node_id``, ``created_at`` and optionally ``sha`` / ``environment`` to look them up and check them."""

    repo: str
    environment: str | None
    ids: tuple[int, ...]
    known: tuple[dict[str, Any], ...]


#: the fields of a deployment payload the lookup and its check (:func:`_matches`) read
WANTED_FIELDS = ("id", "node_id", "created_at", "sha", "environment")


def wanted(repo: str, ids: list[int], known: list[dict[str, Any]], environment: str | None) -> Wanted:
    return Wanted(repo, environment, tuple(int(i) for i in ids),
                  tuple({k: d[k] for k in WANTED_FIELDS if k in d} for d in known if isinstance(d, dict)))


class Named:
    """What :class:`GraphQL` needs of a client for a query that spans repositories: the requester,
    the rate budget and a name for its messages (``repo``)."""

    def __init__(self, req: Any, budget: Any, name: str) -> None:
        self.req, self.budget, self.repo = req, budget, name


def repos_named(repos: list[str], what: str) -> str:
    """``a/x, b/y, c/z ... q/w (what of N repositories)``: a batch's name in its messages."""
    names = list(dict.fromkeys(repos))
    shown = ", ".join(names[:3]) + (f" ... {names[-1]}" if len(names) > 3 else "")
    return f"{shown} ({what} of {len(names)} repositor{'y' if len(names) == 1 else 'ies'})"


def _rest_deployment_statuses(r: Any, dep_id: int) -> RawRecord:
    sts, url, etag = r.get_all(f"/deployments/{dep_id}/statuses")
    return r.record("deployment_statuses", f"{r.repo}/deployments/{dep_id}", url, sts, etag=etag)


def _matches(node: Any, d: dict[str, Any], environment: str | None) -> bool:
    """A ``nodes(ids:)`` answer is the REST deployment ``d`` asked for at its position: same
    environment and creation time, same commit when the REST payload names it; its statuses whole."""
    if not isinstance(node, dict) or not isinstance(node.get("statuses"), dict):
        return False
    if (node["statuses"].get("pageInfo") or {}).get("hasNextPage"):
        return False
    env = d.get("environment") or environment
    created = parse_ts_or_none(node.get("createdAt"))
    return (bool(env) and node.get("environment") == env
            and created is not None and created == parse_ts_or_none(d.get("created_at"))
            and (not d.get("sha") or node.get("commitOid") == d["sha"]))


def fetch_deployment_statuses(r: Any, ids: list[int], known: list[dict[str, Any]], environment: str | None = None
                              ) -> Iterator[RawRecord]:
    """Statuses of deployments ``ids`` of ``environment`` of ONE repository (``r``): see
    :func:`deployment_statuses`."""
    yield from deployment_statuses(lambda name: GraphQL(r), {r.repo: r}, [wanted(r.repo, ids, known, environment)])


def deployment_statuses(graphql: Any, clients: dict[str, Any], asked: list[Wanted], *,
                        pool: Any = None) -> Iterator[RawRecord]:
    """Statuses of the deployments of ``asked`` (one entry per repository and environment, in any
    number of repositories): ``gql_deployment_statuses`` for those whose ``node_id`` is known,
    looked up ``DEPLOYMENT_NODES`` a request across repositories (node ids are global) and matched
    by position (:func:`_matches`); then REST ``deployment_statuses`` through the repository's client
    (``clients[repo]``, a ``client.RepoClient``) for the rest and for any node that overflows, does
    not resolve or does not match (never guessed).  ``graphql(name)``: the :class:`GraphQL` to ask
    one batch with (called in the thread that asks it), ``name`` naming the batch's repositories
    for its messages.  ``pool``: an executor whose ``map`` asks the batches at the same time (their
    answers are taken in order, so the records are the same whatever the pool)."""
    payloads: dict[tuple[str, int], dict[str, Any]] = {}
    for w in asked:
        for d in w.known:
            if d.get("id") is not None and d.get("node_id"):
                payloads.setdefault((w.repo, int(d["id"])), d)
    batch = list(dict.fromkeys((w.repo, i, w.environment) for w in asked for i in w.ids if (w.repo, i) in payloads))
    chunks = [batch[k:k + DEPLOYMENT_NODES] for k in range(0, len(batch), DEPLOYMENT_NODES)]

    def ask(chunk: list[tuple[str, int, str | None]]) -> tuple[str, list[Any]]:
        g = graphql(repos_named([repo for repo, _, _ in chunk], "deployment statuses"))
        data = g.query(DEPLOYMENTS_OP, {"ids": [str(payloads[(repo, i)]["node_id"]) for repo, i, _ in chunk],
                                        "first": DEPLOYMENT_STATUSES_PAGE})
        nodes = data.get("nodes")
        if not isinstance(nodes, list) or len(nodes) != len(chunk):
            raise SourceError(f"GitHub {g.repo}: POST {g.shown} ({DEPLOYMENTS_OP}): asked for {len(chunk)} "
                              f"node(s), got {len(nodes) if isinstance(nodes, list) else 'none'}")
        return g.record_url(DEPLOYMENTS_OP), nodes

    done: set[tuple[str, int]] = set()
    for chunk, (url, nodes) in zip(chunks, (pool.map if pool is not None else map)(ask, chunks), strict=True):
        for (repo, dep_id, env), node in zip(chunk, nodes, strict=True):
            if _matches(node, payloads[(repo, dep_id)], env):
                done.add((repo, dep_id))
                yield clients[repo].record("gql_deployment_statuses", f"{repo}/deployments/{dep_id}", url, node)
    rest = 0
    for w in asked:
        for dep_id in w.ids:
            if (w.repo, dep_id) in done:
                continue
            done.add((w.repo, dep_id))
            rest += 1
            log.debug("GitHub %s: statuses of deployment %s through REST (%s)", w.repo, dep_id,
                      "no node_id known" if (w.repo, dep_id) not in payloads
                      else "unresolved, not matching the REST deployment, or more statuses than one page")
            yield _rest_deployment_statuses(clients[w.repo], dep_id)
    total = sum(len(w.ids) for w in asked)
    if total:
        log.info("GitHub %s: statuses of %d deployment(s) in %d GraphQL request(s), %d through REST",
                 repos_named([w.repo for w in asked], "deployments"), total, len(chunks), rest)


# ------------------------------------------------------------------- the independent count (r2)
def fetch_merged_count(r: Any, rc: Any, start: datetime, as_of: datetime) -> RawRecord:
    """(r2) The number of PRs merged into the production branch in ``[start, as_of]`` according to
    GitHub's search (``CcwatchMergedCount``, ``issueCount``): an independent count the evaluation
    reconciles with the population (CONTROLS.md, "Population reconciliation").  Raw kind
    ``merged_count``, natural key ``o/r:branch``, payload ``{"variables": {"q": ...}, "data": {"search":
    <the answer's search object as returned>}}`` (the search string names the window it counted).  Asked every run,
    incremental or not (one point).  An answer without an integer ``issueCount`` fails the fetch."""
    g = GraphQL(r)
    q = merged_count_query(rc.repo, rc.production_branch, search_time(start), search_time(as_of))
    data = g.query(COUNT_OP, {"q": q})
    count = (data.get("search") or {}).get("issueCount") if isinstance(data.get("search"), dict) else None
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise SourceError(f"GitHub {rc.repo}: POST {g.shown} ({COUNT_OP}): no search.issueCount in the answer "
                          f"(got {count!r})")
    log.info("GitHub %s: search counts %d PR(s) merged into %s in the window", rc.repo, count, rc.production_branch)
    # the search object as returned (like the other GraphQL kinds, which keep their nodes: the answer's
    # rateLimit is bookkeeping of the request, not evidence, and differs between two identical fetches)
    return r.record("merged_count", f"{rc.repo}:{rc.production_branch}", g.record_url(COUNT_OP),
                    {"variables": {"q": q}, "data": {"search": data["search"]}})
