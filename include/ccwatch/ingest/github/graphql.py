"""GitHub GraphQL of the connector: the requests, and the merged PRs (docs/ARCHITECTURE.md, "GraphQL raw kinds").

:class:`GraphQL` POSTs the documents of :mod:`ccwatch.ingest.github.queries` (none selects a 32-bit
``Int`` id: real ids are past 2**31, see that module) for one repository, or for a batch of them
(:class:`Named`).  This module also holds the merged PRs and the independent count:

* ``CcwatchMergedPulls`` (50 PRs a request, with reviews, labels, head checks and statuses)
  replaces the pulls list and the per-PR ``pull``/``reviews``/``check-runs``/``statuses``
  GETs: raw kind ``gql_pull`` (payload: the PullRequest node exactly as returned); the org-wide
  search's nodes are the same (``discovery.py``, :func:`pulls_from_search`);
* ``CcwatchMergedCount`` (r2): the search's count of the window's merged PRs (``merged_count``).

The commits' PRs and the deployments' statuses have their own modules (``commit_links.py``,
``deployment_statuses.py``), which ``batches.py`` also asks across repositories.

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
from datetime import datetime
from typing import Any

from github import GithubException, RateLimitExceededException

from ccwatch.common.times import iso_z, parse_ts
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github.answers import is_rate_limit
from ccwatch.ingest.github.pieces import pull_incomplete
from ccwatch.ingest.github.queries import (
    OPERATIONS,
    PULLS_PAGE,
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
REPO_OP, REPOS_OP = "CcwatchRepository", "CcwatchRepositories"

# fine-grained permission each document needs (classic tokens: the 'repo' scope)
_NEEDS = {PULLS_OP: "Pull requests: read", HISTORY_OP: "Contents: read", HISTORIES_OP: "Contents: read",
          DEPLOYMENTS_OP: "Deployments: read",
          COUNT_OP: "Pull requests: read", COUNTS_OP: "Pull requests: read",
          SEARCH_OP: "Pull requests: read", REPO_OP: "Metadata: read", REPOS_OP: "Metadata: read"}


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
            raise GraphQLErrors(f"GitHub {self.repo}: {shown} answered GraphQL errors: {said}{more}", errs)
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


class GraphQLErrors(SourceError):
    """An answer with an ``errors`` array (HTTP 200): ``errors`` holds them, as GitHub wrote them."""

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors

    def only_under(self, *path: str) -> bool:
        """Every error is located at or below a field whose path, after its first element (the alias),
        starts with ``path`` (e.g. ``("productionBranch",)``)."""
        return bool(self.errors) and all(
            isinstance(p := e.get("path"), list) and tuple(p[1:1 + len(path)]) == path for e in self.errors)


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


def org_batches(gh: Any, budget: Any, repos: list[str], size: int, what: str) -> Iterator[tuple[GraphQL, list[str]]]:
    """(issue #15) ``repos`` ``size`` at a time, one aliased document each: a GraphQL client per chunk
    (``gh``'s requester, the shared ``budget``), named after the chunk's repositories in its messages."""
    for k in range(0, len(repos), size):
        chunk = repos[k:k + size]
        yield GraphQL(Named(gh.requester, budget, repos_named(chunk, what))), chunk


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
