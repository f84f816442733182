"""(r2) The reconciliation counts of every configured repository, asked org-wide in batches (issue #15).

The population reconciliation needs, per repository, GitHub search's count of the PRs merged into
its production branch in the window (raw kind ``merged_count``, ``graphql.fetch_merged_count``).
Asked per repository, that is one counted GraphQL request per repository every night, changed or
not.  Before the repositories are fetched, :func:`stage_counts` asks them ``COUNTS_BATCH`` at a
time (``CcwatchMergedCounts``: one aliased ``search`` per repository, the same search string as
the per-repository query, 1 point for 50) and stages the answers::

    staging/<date>/github_counts.json   {"as_of", "window_from", "url", "fetched_at",
                                         "repos": {repo: {"q": <search string>, "search": <answer>}}}

(outside ``staging/<date>/github/``, whose files are one repository each).  Each repository's fetch
then takes its count from there (:func:`staged_count`): the raw record is the one the
per-repository query would have stored (payload ``{"variables": {"q": q}, "data": {"search": ...}}``
as returned; url ``...#CcwatchMergedCounts``; ``fetched_at``: when the batch answered).  Fail
closed: a batch with any error fails the stage naming its repositories; a repository whose staged
search string is not exactly the one its fetch would ask (another window, another branch, a file
of an older config or none at all) asks its own count, as before.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from github import Github

from ccwatch.common.endpoints import Endpoint
from ccwatch.common.files import read_json_optional, write_json_atomic
from ccwatch.common.paths import staging_dir
from ccwatch.common.times import iso_z, utc_now_iso
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github.client import own_client
from ccwatch.ingest.github.graphql import COUNTS_OP, org_batches
from ccwatch.ingest.github.queries import (
    COUNTS_BATCH,
    merged_count_query,
    merged_counts_document,
    search_time,
)
from ccwatch.ingest.records import RawRecord
from ccwatch.settings import RepoConfig, Settings

log = logging.getLogger(__name__)

COUNTS_FILE = "github_counts.json"


def count_query(rc: RepoConfig, start: datetime, as_of: datetime) -> str:
    """The search string of ``rc``'s count for the window ``[start, as_of]`` (as the fetch asks it)."""
    return merged_count_query(rc.repo, rc.production_branch, search_time(start), search_time(as_of))


def counts_path(home: Path, as_of: datetime) -> Path:
    return staging_dir(home, as_of) / COUNTS_FILE


def fetch_counts(endpoint: Endpoint, repos: list[RepoConfig], start: datetime, as_of: datetime, *,
                 budget: Any = None, client: Github | None = None) -> dict[str, Any]:
    """``{"url", "fetched_at", "repos": {repo: {"q", "search"}}}`` for ``repos``, ``COUNTS_BATCH`` a
    request.  Any HTTP or GraphQL error, or an answer without an integer ``issueCount`` for one of
    them, raises SourceError (never a partial set)."""
    by_name = {rc.repo: rc for rc in repos}
    out: dict[str, Any] = {}
    url, requests = "", 0
    with own_client(endpoint, client) as gh:
        for g, names in org_batches(gh, budget, list(by_name), COUNTS_BATCH, "search counts"):
            chunk = [by_name[n] for n in names]
            url = g.record_url(COUNTS_OP)
            qs = [count_query(rc, start, as_of) for rc in chunk]
            data = g.query(COUNTS_OP, {f"q{i}": q for i, q in enumerate(qs)}, merged_counts_document(len(chunk)))
            requests += 1
            fetched_at = utc_now_iso()
            for i, (rc, q) in enumerate(zip(chunk, qs, strict=True)):
                search = data.get(f"c{i}")
                n = search.get("issueCount") if isinstance(search, dict) else None
                if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                    raise SourceError(f"GitHub {rc.repo}: POST {g.shown} ({COUNTS_OP}): no search.issueCount in "
                                      f"the answer (got {n!r})")
                out[rc.repo] = {"q": q, "search": search, "fetched_at": fetched_at}
    log.info("GitHub: merged-PR search counts of %d repositories in %d GraphQL request(s)", len(out), requests)
    return {"url": url, "repos": out}


def stage_counts(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, *, budget: Any = None
                 ) -> dict[str, Any]:
    """Fetch the counts of every configured repository and stage them (atomically) for the date."""
    start = as_of - timedelta(days=settings.lookback_days)
    path = counts_path(home, as_of)
    path.unlink(missing_ok=True)  # a failed attempt leaves none (its repositories then ask their own)
    counts = fetch_counts(endpoint, list(settings.github.repositories), start, as_of, budget=budget)
    write_json_atomic(path, {"as_of": iso_z(as_of), "window_from": iso_z(start), **counts})
    return {"repos": len(counts["repos"]), "file": str(path)}


def staged_count(home: Path, as_of: datetime, rc: RepoConfig, start: datetime) -> RawRecord | None:
    """The ``merged_count`` record of ``rc`` from the date's staged counts, or None when there is
    none for exactly the search string its fetch would ask (then it asks its own)."""
    staged = read_json_optional(counts_path(home, as_of), f"GitHub {rc.repo}: the staged counts (its count is asked alone)")
    entry = (staged.get("repos") or {}).get(rc.repo) if isinstance(staged, dict) else None
    q = count_query(rc, start, as_of)
    if not isinstance(entry, dict) or entry.get("q") != q or not isinstance(entry.get("search"), dict):
        return None
    n = entry["search"].get("issueCount")
    url = staged.get("url")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0 or not entry.get("fetched_at") or not url:
        return None
    return RawRecord(source="github", kind="merged_count", natural_key=f"{rc.repo}:{rc.production_branch}",
                     url=str(url), fetched_at=entry["fetched_at"],
                     payload={"variables": {"q": q}, "data": {"search": entry["search"]}}, etag=None, status_code=200)
