"""(issue #15) The night's merged PRs of every incremental repository, discovered org-wide by search.

A repository fetched incrementally asked, per repository, the pulls list's first page (the change
detector, conditional) and, when it changed, ``CcwatchMergedPulls``: two counted requests for
every repository that got a PR or a review.  Before the repositories are fetched,
:func:`stage_pulls` asks instead, per owner, GitHub search for the PRs merged in the window and
updated since the earliest ``since`` of the incremental plans (``CcwatchMergedPullsSearch``,
50 PRs a request with the same fields as ``CcwatchMergedPulls``, so the raw ``gql_pull`` nodes are
the same), and stages them per repository::

    staging/<date>/github_pulls.json   {"as_of", "window_from", "since", "url", "fetched_at",
                                        "queries": [...], "repos": {repo: [PullRequest node, ...]}}

``repos`` lists every repository the search covered (incremental plan, owner searched), with
``[]`` when none of its PRs moved.  The repository's fetch then keeps the nodes of its production
branch merged in the window and updated since its own ``since`` (``graphql.keep_pulls``) and
fetches overflowing pieces through REST as before; it asks neither the pulls list nor
``CcwatchMergedPulls``.

Fail closed: a search is trusted only when it is complete: its ``issueCount`` is at most
``SEARCH_CAP`` (GitHub answers no result past the 1,000th) and the pages gave exactly that many
PullRequest nodes, each with a URL naming its repository and a number.  Otherwise nothing is
staged and every repository asks per repository, as before (logged); an HTTP or GraphQL error fails
the stage.  A repository absent from ``repos`` (a full plan, another window, an older ``since``
than its own, no file) asks per repository.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from github import Github

from ccwatch.common.endpoints import Endpoint
from ccwatch.common.files import read_json_optional, write_json_atomic
from ccwatch.common.paths import staging_dir
from ccwatch.common.times import iso_z, parse_ts, utc_now_iso
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github.client import make_client
from ccwatch.ingest.github.graphql import SEARCH_OP, GraphQL, Named, next_cursor
from ccwatch.ingest.github.queries import PULLS_PAGE, SEARCH_CAP, pulls_search_query, search_time
from ccwatch.ingest.plan import plan_github_repo
from ccwatch.settings import Settings

log = logging.getLogger(__name__)

PULLS_FILE = "github_pulls.json"


def pulls_path(home: Path, as_of: datetime) -> Path:
    return staging_dir(home, as_of) / PULLS_FILE


def node_repo(node: Any) -> str | None:
    """``owner/name`` of a PullRequest node from its ``url`` (``<host>/<owner>/<name>/pull/<n>``)."""
    if not isinstance(node, dict) or not isinstance(node.get("url"), str) or not isinstance(node.get("number"), int):
        return None
    parts = urlsplit(node["url"]).path.strip("/").split("/")
    if len(parts) < 4 or parts[-2] != "pull" or parts[-1] != str(node["number"]):
        return None
    return f"{parts[-4]}/{parts[-3]}"


def search_owner(gh: Github, owner: str, since: datetime, start: datetime, as_of: datetime, budget: Any
                 ) -> tuple[str, list[dict[str, Any]] | None, str]:
    """(search string, the nodes or None when the search cannot be trusted complete, record url)."""
    g = GraphQL(Named(gh.requester, budget, f"search of {owner}'s merged PRs"))
    q = pulls_search_query(owner, search_time(since), search_time(start), search_time(as_of))
    nodes: list[dict[str, Any]] = []
    after: str | None = None
    cursors: set[str] = set()
    total = None
    while True:
        data = g.query(SEARCH_OP, {"q": q, "first": PULLS_PAGE, "after": after})
        search = data.get("search")
        if not isinstance(search, dict) or not isinstance(search.get("issueCount"), int):
            raise SourceError(f"GitHub {owner}: POST {g.shown} ({SEARCH_OP}): no search.issueCount in the answer")
        total = search["issueCount"]
        if total > SEARCH_CAP:
            log.warning("GitHub %s: search finds %d merged PRs updated since %s, more than the %d it answers: "
                        "the repositories are asked one by one", owner, total, iso_z(since), SEARCH_CAP)
            return q, None, g.record_url(SEARCH_OP)
        nodes.extend(n for n in search.get("nodes") or [])
        after = next_cursor(g, SEARCH_OP, search.get("pageInfo"), cursors)
        if after is None:
            break
    bad = [n for n in nodes if node_repo(n) is None]
    if bad or len(nodes) != total:
        log.warning("GitHub %s: search answered %d node(s) for issueCount %d (%d not a PullRequest with a URL): "
                    "the repositories are asked one by one", owner, len(nodes), total, len(bad))
        return q, None, g.record_url(SEARCH_OP)
    log.info("GitHub %s: %d merged PR(s) updated since %s in %d search request(s)", owner, len(nodes),
             iso_z(since), g.requests)
    return q, nodes, g.record_url(SEARCH_OP)


def stage_pulls(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, state: dict[str, Any] | None,
                *, budget: Any = None) -> dict[str, Any]:
    """Discover and stage the merged PRs of the incremental repositories (module docstring)."""
    path = pulls_path(home, as_of)
    path.unlink(missing_ok=True)  # a failed or untrusted discovery leaves none: per-repository fetches
    plans = {rc.repo: plan_github_repo(settings, state, as_of, rc) for rc in settings.github.repositories}
    incremental = {repo: plan for repo, plan in plans.items() if plan.incremental}
    if not incremental:
        return {"repos": 0}
    start = as_of - timedelta(days=settings.lookback_days)
    since = min(plan.since for plan in incremental.values())
    owners = sorted({repo.split("/", 1)[0] for repo in incremental}, key=str.lower)
    by_name = {repo.lower(): repo for repo in incremental}
    staged: dict[str, list[dict[str, Any]]] = {}
    queries, url = [], ""
    gh = make_client(endpoint)
    try:
        for owner in owners:
            q, nodes, url = search_owner(gh, owner, since, start, as_of, budget)
            if nodes is None:
                return {"repos": 0, "untrusted": owner}
            queries.append(q)
            for repo in incremental:
                if repo.split("/", 1)[0].lower() == owner.lower():
                    staged[repo] = []
            for node in nodes:
                repo = by_name.get(str(node_repo(node)).lower())
                if repo is not None:
                    staged[repo].append(node)
    finally:
        gh.close()
    write_json_atomic(path, {"as_of": iso_z(as_of), "window_from": iso_z(start), "since": iso_z(since), "url": url,
                             "fetched_at": utc_now_iso(), "queries": queries, "repos": staged})
    return {"repos": len(staged), "prs": sum(len(v) for v in staged.values()), "file": str(path)}


def staged_pulls(home: Path, as_of: datetime, repo: str, start: datetime, since: datetime
                 ) -> tuple[list[dict[str, Any]], str] | None:
    """(the staged PR nodes of ``repo``, the search's record url) when the date's discovery covered
    it for this window from ``since`` or earlier; None: ask per repository."""
    staged = read_json_optional(pulls_path(home, as_of), f"GitHub {repo}: the staged search (its PRs are asked alone)")
    if not isinstance(staged, dict) or staged.get("as_of") != iso_z(as_of) or staged.get("window_from") != iso_z(start):
        return None
    lo = parse_ts(staged.get("since")) if isinstance(staged.get("since"), str) else None
    nodes = (staged.get("repos") or {}).get(repo) if isinstance(staged.get("repos"), dict) else None
    url = staged.get("url")
    if lo is None or lo > parse_ts(iso_z(since)) or not isinstance(nodes, list) or not isinstance(url, str) or not url:
        return None
    return nodes, url
