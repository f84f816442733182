"""The per-object REST crawl of GitHub evidence: the reference the GraphQL batches are compared with.

The product fetches PRs (with reviews, head check runs and statuses), the PRs of each first-parent
commit and deployment statuses in GraphQL batches (``graphql.py``, ``commit_links.py``, ``deployment_statuses.py``), and asks REST only
for the pieces a batch cannot hold whole.  This is the straightforward REST crawl those batches
replaced, one object at a time on the public ``ingest.github.client.RepoClient``: used ONLY by the
tests that check GraphQL gives the evidence REST gives.  ``rest_reference()`` runs the product's
fetch with these in place of the three GraphQL batch functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from ccwatch.common.times import iso_z, parse_ts
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github import fetch as github_fetch
from ccwatch.ingest.github import graphql as gql
from ccwatch.ingest.github.client import RepoClient
from ccwatch.ingest.http.paging import is_before, sorted_past
from ccwatch.ingest.records import RawRecord
from ccwatch.settings import RepoConfig


def fetch_pulls(r: RepoClient, rc: RepoConfig, start: datetime, as_of: datetime, since: datetime | None = None
                ) -> Iterator[RawRecord]:
    """PRs merged into the production branch in the window and updated since ``since`` (default: the
    window start), each with its reviews, and its head's check runs and statuses: ``pull``,
    ``reviews``, ``check_runs`` and ``statuses`` records."""
    repo = rc.repo
    lo, hi = parse_ts(iso_z(start)), parse_ts(iso_z(as_of))
    upd_lo = parse_ts(iso_z(since or start))

    def past_window(page: list[dict[str, Any]]) -> bool:
        return sorted_past(page, "updated_at", upd_lo)

    listed, _, _ = r.get_all("/pulls", {"state": "closed", "base": rc.production_branch, "sort": "updated",
                                        "direction": "desc"}, stop=past_window)
    seen: set[int] = set()
    for item in listed:
        merged = parse_ts(item.get("merged_at"))
        if merged is None or not (lo <= merged <= hi) or item["number"] in seen:
            continue
        if is_before(item.get("updated_at"), upd_lo):
            continue
        seen.add(item["number"])
        n = item["number"]
        _, pr, url, etag = r.get(f"/pulls/{n}")
        yield r.record("pull", f"{repo}#{n}", url, pr, etag=etag)
        reviews, url, etag = r.get_all(f"/pulls/{n}/reviews")
        yield r.record("reviews", f"{repo}#{n}", url, reviews, etag=etag)
        sha = (pr.get("head") or {}).get("sha")
        if not sha:
            raise SourceError(f"GitHub {repo}: pull #{n} has no head sha")
        runs, url, etag = r.get_all(f"/commits/{sha}/check-runs", {"filter": "all"}, items_key="check_runs")
        yield r.record("check_runs", f"{repo}@{sha}", url, runs, etag=etag)
        sts, url, etag = r.get_all(f"/commits/{sha}/statuses")
        yield r.record("statuses", f"{repo}@{sha}", url, sts, etag=etag)


def fetch_commit_pulls(r: RepoClient, rc: RepoConfig, first_parent: list[dict[str, Any]], since: datetime
                       ) -> Iterator[RawRecord]:
    """``commit_pulls``: the PRs of each first-parent commit, one ``/commits/{sha}/pulls`` each."""
    for c in first_parent:
        pulls, url, etag = r.get_all(f"/commits/{c['sha']}/pulls")
        yield r.record("commit_pulls", f"{rc.repo}@{c['sha']}", url, pulls, etag=etag)


def fetch_deployment_statuses(r: RepoClient, ids: list[int], known: list[dict[str, Any]],
                              environment: str | None = None) -> Iterator[RawRecord]:
    """``deployment_statuses``: every status of each deployment, one ``/deployments/{id}/statuses`` each."""
    for dep_id in ids:
        sts, url, etag = r.get_all(f"/deployments/{dep_id}/statuses")
        yield r.record("deployment_statuses", f"{r.repo}/deployments/{dep_id}", url, sts, etag=etag)


@contextmanager
def rest_reference() -> Iterator[None]:
    """Within: the product's GitHub fetch crawls PRs, commit links and deployment statuses through
    REST, one object at a time, instead of the GraphQL batches (everything else unchanged)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gql, "fetch_pulls", fetch_pulls)
        # fetch.py names these (commit_links.py, deployment_statuses.py) itself
        mp.setattr(github_fetch, "fetch_commit_pulls", fetch_commit_pulls)
        mp.setattr(github_fetch, "fetch_deployment_statuses", fetch_deployment_statuses)
        yield
