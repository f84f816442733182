"""Conditional requests of the GitHub connector (ETag / If-None-Match; docs/ARCHITECTURE.md).

GitHub answers a GET whose ``If-None-Match`` matches the current ETag of the resource with
``304 Not Modified`` and no body, and a 304 does not count against the rate limit.  The
connector records the ETag of every answer it gets (``RepoClient.seen``: url key -> etag); the
fetch ends with one ``validators`` raw record per repository carrying that map; after a
committed load the ingest state keeps it per repository (``warehouse.ingest_state.compute_state``) and
the next *incremental* plan carries it (``RepoPlan.validators``).  A full plan sends none.

A 304 yields ``RawRecord(kind, key, url, payload=None, status_code=304, etag=...)``: the load
keeps the stored payload and rows of that object (``warehouse.store``), and fails closed when
nothing is stored for it.

The pulls list (``state=closed&base=<branch>&sort=updated&direction=desc``, page 1) is the PR
change detector: a PR that is merged, edited, reviewed or labelled moves to the top with a new
``updated_at``, so an unchanged first page means no PR of the branch changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ccwatch.common.times import iso_z, parse_ts
from ccwatch.ingest.github.history import line_down_to, reaches
from ccwatch.ingest.http.paging import is_before

VALIDATORS_KIND = "validators"  # raw kind: natural_key = repo, payload = {"as_of", "validators"}
PER_PAGE = 100


def url_key(shown: str) -> str:
    """The validator key of a request: its path and sorted query (host and scheme dropped, so
    a key survives an endpoint alias; the stored payload belongs to the same repository)."""
    parts = urlsplit(shown)
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return parts.path.rstrip("/") + (f"?{query}" if query else "")


def plan_validators(plan: Any) -> dict[str, str]:
    """The ETags an incremental plan may send (none for a full plan or no plan)."""
    if plan is None or not getattr(plan, "incremental", False):
        return {}
    return dict(getattr(plan, "validators", None) or {})


def pulls_params(rc: Any) -> dict[str, Any]:
    return {"state": "closed", "base": rc.production_branch, "sort": "updated", "direction": "desc",
            "per_page": PER_PAGE}


def pulls_changed(r: Any, rc: Any, plan: Any) -> bool:
    """Whether any closed PR of the production branch changed since the fetch that stored the
    plan's ETag of the pulls list (page 1).  False only on a 304; True otherwise (also for a
    full plan, which still makes the request so the next plan has the ETag).  The answer's ETag
    is remembered in ``r.seen`` for the next state.  The page itself (200) is kept on
    ``r.pulls_page`` for a caller that wants it."""
    status, data, shown, _etag = r.get("/pulls", pulls_params(rc), conditional=True)
    if status == 304:
        r.pulls_page = None
        return False
    r.pulls_page = data if isinstance(data, list) else None
    if not _settled(r.pulls_page, getattr(r, "as_of", None)):
        r.seen.pop(url_key(shown), None)
    return True


def _settled(page: list[dict[str, Any]] | None, as_of: datetime | None) -> bool:
    """The pulls list's ETag may stand for "everything on it is stored": no PR on page 1 was
    updated after the run's as-of time.  A fetch stores only PRs merged up to ``as_of``; one
    merged after it (a past-dated run, or a nightly run that starts after its as-of time) is on
    this page but not stored, so the next fetch must not take a 304 for "nothing new"."""
    if not isinstance(page, list) or as_of is None:
        return False
    hi = parse_ts(iso_z(as_of))
    for item in page:
        updated = parse_ts(item.get("updated_at")) if isinstance(item, dict) else None
        if updated is None or updated > hi:
            return False
    return True


# --- the production branch's commits listing ---------------------------------------------


def ruleset_ids(rules: list[dict[str, Any]]) -> tuple[int, ...]:
    return tuple(sorted({int(x["ruleset_id"]) for x in rules if isinstance(x, dict) and x.get("ruleset_id")}))


def list_commits(r: Any, branch: str, start: datetime, since: datetime, tip: str | None, plan: Any
                  ) -> tuple[list[dict[str, Any]] | None, str, str | None]:
    """The production branch's commits.  Full: every commit of the window (``since`` = start).
    Incremental: WITHOUT ``since`` (a constant URL, so the stored ETag can answer 304 -> None),
    paged until the stored tip (or a page wholly older than ``since``); kept: the first-parent
    line down to the stored tip and the commits dated since ``since`` (the overlap); the load
    merges them into the stored list.  A line that does not reach the stored tip (force push)
    lists the whole window, as a full fetch does."""
    if plan is None:
        return r.get_all("/commits", {"sha": branch, "since": iso_z(start)})
    lo = parse_ts(iso_z(since))
    commits, url, etag = r.get_all("/commits", {"sha": branch}, conditional=True,
                                   stop=lambda page: _commits_reached(page, plan.tip, lo))
    if commits is None:
        return None, url, etag
    if not reaches(commits, tip, plan.tip):
        return r.get_all("/commits", {"sha": branch, "since": iso_z(start)})
    line = set(line_down_to(commits, tip, plan.tip))
    kept = [c for c in commits if c.get("sha") in line or not is_before(_commit_date(c), lo)]
    return kept, url, etag


def _commit_date(c: dict[str, Any]) -> Any:
    return ((c.get("commit") or {}).get("committer") or {}).get("date")


def _commits_reached(page: list[dict[str, Any]], stored_tip: str | None, lo: datetime) -> bool:
    """Paging of an incremental commits listing may stop: the page holds the stored tip, or every
    commit on it is older than ``lo`` (then ``history.reaches`` decides whether the listing suffices)."""
    if any(c.get("sha") == stored_tip for c in page):
        return True
    dates = [parse_ts(_commit_date(c)) for c in page]
    return bool(dates) and None not in dates and all(d < lo for d in dates)


def relink(plan: Any, chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The commits whose PRs are asked again besides ``chain`` (the first-parent commits the
    listing gave): the plan's ``unlinked`` ones (first-parent commits of the overlap that had no
    merged PR at the last load) not in it.  GitHub links a merge commit to its PR asynchronously,
    so a link missing at the first fetch is asked again every night while the commit is in the
    overlap, also when the listing answers 304 (then ``chain`` is empty).  Shaped as REST list
    items (``sha``, ``commit.committer.date``): the history query starts at the earliest date.
    A listed chain that does not hold the stored tip (a force push: the listing covered the whole
    window) already holds every first-parent commit: the others left the branch."""
    if plan is None or not getattr(plan, "incremental", False):
        return []
    have = {c.get("sha") for c in chain}
    if chain and getattr(plan, "tip", None) not in have:
        return []
    return [{"sha": u["sha"], "commit": {"committer": {"date": u["committed_at"]}}}
            for u in getattr(plan, "unlinked", ()) or () if u.get("sha") not in have]
