"""GitHub fetch of one repository: every raw kind of the evaluation window (docs/ARCHITECTURE.md).

Window: merged PRs, first-parent commits and deployments created in
``[as_of - lookback_days, ...)``; deployments listed before the window start are dropped
(no change of the window can have been shipped before it was merged).  (r2) The production
branch's activity log (``ingest.github.activity``) says when commits reached the branch; the
first-parent line is completed by push time, not only by committer date: a first parent the
listing lacks (a commit dated before the window) is fetched alone (raw kind ``commit``) until the
branch's state at the window start, and its PRs are asked through REST.  PRs, commit -> PR
links and deployment statuses come through GraphQL batches (``graphql.py``, ``commit_links.py``,
``deployment_statuses.py``; from the pipeline, the last two org-wide in ``batches.py``), with
REST for the pieces a batch cannot hold whole.  The repository's settings and (stop 31) the
production branch's tip are a GraphQL Repository node (``repositories.py``; from the pipeline,
asked org-wide before the fetches).  The branch's protection and rules, the commits and
deployments listings and the environments come through REST (``ingest.github.client``),
revalidated with ETags (``ingest.github.conditional``); REST's branch only where its
``"protected"`` flag is read (:func:`_fetch_repo`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from github import Github

from ccwatch.common.endpoints import Endpoint
from ccwatch.common.times import iso_z, parse_ts, parse_ts_or_none
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github import graphql as gql
from ccwatch.ingest.github.activity import boundary, fetch_activity, state_at
from ccwatch.ingest.github.client import RepoClient, own_client
from ccwatch.ingest.github.commit_links import Links, fetch_commit_pulls, linked_merged, links
from ccwatch.ingest.github.conditional import (
    list_commits,
    plan_validators,
    pulls_changed,
    relink,
    ruleset_ids,
)
from ccwatch.ingest.github.deployment_statuses import Wanted, fetch_deployment_statuses, wanted
from ccwatch.ingest.github.history import LineTooLong, complete_line
from ccwatch.ingest.github.repositories import branch_tip, fetch_repository, protected, qualified
from ccwatch.ingest.http.paging import is_before, sorted_past
from ccwatch.ingest.plan import OVERLAP
from ccwatch.ingest.records import RawRecord
from ccwatch.settings import RepoConfig, Settings

log = logging.getLogger(__name__)

# At most this many commits are fetched alone per repository and run to complete the first-parent
# line by push time; beyond it the fetch fails naming the repository (never a silently shorter line)
SINGLE_COMMITS_CAP = 300


@dataclass
class Guard:
    """(issue #15) What the search-lag guard (:func:`search_lag_guard`) needs of a repository's fetch
    when it runs after the commit links are asked org-wide: ``since`` (ISO 8601, exact), the PR numbers the
    org-wide search gave, the PR merges the activity log records since ``since`` (None: unreadable)
    and how many of the searched PRs merged since then, whether the branch moved, and the PRs the
    commits fetched alone (REST) already link."""

    since: str
    searched: list[int]
    logged: int | None
    known: int
    moved: bool
    linked: list[int]


@dataclass
class Deferred:
    """What one repository's fetch leaves to the org-wide batches after every repository (``batches.py``):
    its deployments whose statuses it needs, its first-parent commits whose PRs it needs, and the
    search-lag guard that must run once those links are known."""

    statuses: list[Wanted] = field(default_factory=list)
    links: Links | None = None
    guard: Guard | None = None


def link_window(since: datetime, start: datetime, as_of: datetime) -> tuple[datetime, datetime]:
    """The merge times a night's links count for the search-lag guard: since ``since`` (not before the
    window start) up to the as-of time."""
    return max(parse_ts(iso_z(since)), parse_ts(iso_z(start))), parse_ts(iso_z(as_of))


def fetch_github_repo(settings: Settings, endpoint: Endpoint, as_of: datetime, rc: RepoConfig, plan: Any = None,
                      *, client: Github | None = None, budget: Any = None, count: RawRecord | None = None,
                      discovered: tuple[list[Any], str] | None = None,
                      deferred: Deferred | None = None, repository: RawRecord | None = None) -> Iterator[RawRecord]:
    """The raw records of ONE repository (the unit of concurrency and of Airflow's task mapping).

    ``client``: a PyGithub client to reuse (not shared between threads); default: one of its own.
    ``budget``: a shared rate-limit budget of concurrent fetches (``ingest/http/ratebudget.py``).
    ``count``: the repository's ``merged_count`` record, already asked org-wide (``counts.py``);
    None: asked here.  ``repository``: its ``gql_repository`` record, already asked org-wide
    (``repositories.py``); None: asked here.  ``discovered``: (PR nodes, url) of the org-wide
    search (``discovery.py``) for an incremental plan: its PRs come from there, the pulls list and
    PR pages are not asked.
    ``deferred``: receives what the pipeline asks for every repository at once after the
    repositories' fetches (``batches.py``: the first-parent commits' PRs, then the search-lag guard,
    and the deployments' statuses) instead of asking it here.  None: asked here, for this
    repository alone (tests, tools)."""
    start = as_of - timedelta(days=settings.lookback_days)
    with own_client(endpoint, client) as gh:
        r = RepoClient(gh, endpoint, rc.repo, plan_validators(plan), budget, as_of)
        yield from _fetch_repo(r, rc, start, as_of, plan, count, discovered, deferred, repository)
        yield r.validators_record(as_of)  # last: every request of the fetch has answered


def _fetch_repo(r: RepoClient, rc: RepoConfig, start: datetime, as_of: datetime, plan: Any = None,
                count: RawRecord | None = None, discovered: tuple[list[Any], str] | None = None,
                deferred: Deferred | None = None, repository: RawRecord | None = None) -> Iterator[RawRecord]:
    """One repository.  An incremental ``plan`` (docs/ARCHITECTURE.md, "Incremental ingestion")
    fetches PRs updated, commits made and deployments created since ``plan.since``, plus the
    statuses of ``plan.open_deployments``.  Branch, protection, rules, rulesets,
    the commits and deployments listings and environments are conditional requests
    (conditional.py): with the plan's ETags an unchanged one answers 304, free, and
    yields a 304 record (the load keeps the stored copy)."""
    repo, branch = rc.repo, rc.production_branch
    incremental = plan is not None and plan.incremental
    since = plan.since if incremental else start
    # the repository's settings and the production branch's tip: a GraphQL node, staged org-wide
    # before the fetches (repositories.py)
    repository = repository if repository is not None else fetch_repository(r, rc)
    yield repository
    tip = branch_tip(repository.payload, branch)
    if tip is None:
        raise SourceError(f"GitHub {repo}: the production branch {branch} was not found (GraphQL answered no "
                          f"commit for {qualified(branch)}): check github.repositories[].production_branch")
    searched: set[Any] | None = None  # the PR numbers the org-wide search gave (None: not used)
    searched_merged: list[datetime | None] = []  # their merge times
    if incremental and discovered is not None:
        searched = set()
        for rec in gql.pulls_from_search(r, rc, discovered[0], start, as_of, since, discovered[1], searched):
            if rec.kind == "gql_pull" and isinstance(rec.payload, dict):
                searched_merged.append(parse_ts_or_none(rec.payload.get("mergedAt")))
            yield rec
    else:
        yield from _pulls(r, rc, start, as_of, since, plan)
    # (r2) the independent count of the window's merged PRs, for the population reconciliation
    # (asked org-wide in batches before the repositories when the date's counts are staged)
    yield count if count is not None else gql.fetch_merged_count(r, rc, start, as_of)

    # the branch's classic protection (403/404 are evidence), and REST's branch where its flag matters.
    # (stop 29) an unprotected branch's protection is a 404 without ETag, a counted request every
    # night: not asked again while the branch still says "protected": false (304: the stored branch,
    # which said so) and the stored answer is that 404, which then stands.  A branch that says true
    # (classic protection or rulesets) has it asked.  (stop 31) The tip and the flag come with the
    # GraphQL node (``repositories.protected``); REST's branch only where the flag is read and GitHub
    # would not give it in the node: before the protection when the plan says unprotected, after a
    # 404 protection for the next nights' skip.
    flag = protected(repository.payload, branch)
    if incremental and getattr(plan, "unprotected", False):
        if flag is None:
            status, br, url, etag = r.get(f"/branches/{branch}", conditional=True)
            yield r.record("branch", f"{repo}:{branch}", url, br, status, etag)
            if status != 304 and not (isinstance(br, dict) and br.get("protected") is False):
                yield from _protection(r, repo, branch, ask_branch=False)
        elif flag:
            yield from _protection(r, repo, branch, ask_branch=False)
    else:
        yield from _protection(r, repo, branch, ask_branch=flag is None)
    rules, url, etag = r.get_all(f"/rules/branches/{branch}", conditional=True)
    yield r.record("branch_rules", f"{repo}:{branch}", url, rules, 304 if rules is None else 200, etag)
    # a 304 rules list: the rulesets it named last time (a ruleset's bypass list or enforcement
    # can change without changing the branch's rules)
    rids = (ruleset_ids(rules) if rules is not None else tuple(getattr(plan, "ruleset_ids", ()) or ()))
    r.ruleset_ids = rids
    for rid in rids:
        status, rs, url, etag = r.get(f"/rulesets/{rid}", conditional=True)
        yield r.record("ruleset", f"{repo}/rulesets/{rid}", url, rs, status, etag)

    # (r2) the production branch's activity log: when commits reached it, force pushes, deletions
    win = parse_ts(iso_z(start))
    act_lo = parse_ts(iso_z(since if incremental and getattr(plan, "activity_complete", False) else start - OVERLAP))
    act_rec, entries = fetch_activity(r, repo, branch, act_lo)
    yield act_rec

    # first-parent history of the production branch in the window, and the PRs of each commit
    # (incremental: the stored tip when the branch answered 304)
    commits, url, etag = list_commits(r, branch, start, since, tip, plan if incremental else None)
    yield r.record("commits", f"{repo}:{branch}", url, commits, 304 if commits is None else 200, etag)
    if commits is None:  # 304: the branch did not move, no new commit
        chain, singles = [], {}
    else:
        chain, singles = _complete_line(r, rc, commits, tip, entries, win, plan if incremental else None)
    for sha, payload in singles.items():
        yield r.record("commit", f"{repo}@{sha}", payload.pop("_url"), payload)
    listed = [c for c in chain if c["sha"] not in singles]
    linked: set[int] = set()  # PRs merged into the branch since `since` that the night's history links
    link_lo, hi = link_window(since, start, as_of)
    for sha in singles:  # dated before the listing: their PRs through REST (no GraphQL history page reaches them)
        pulls, purl, petag = r.get_all(f"/commits/{sha}/pulls")
        rec = r.record("commit_pulls", f"{repo}@{sha}", purl, pulls, etag=petag)
        linked |= linked_merged(rec, branch, link_lo, hi)
        yield rec
    asked = listed + relink(plan, listed)  # + the overlap's unlinked ones
    guard = None
    if searched is not None:
        known = sum(1 for t in searched_merged if t is not None and link_lo <= t <= hi)
        guard = Guard(since.astimezone(UTC).isoformat(), sorted(searched), merge_events(act_rec, entries, link_lo, hi),
                      known, commits is not None, sorted(linked))
    if deferred is not None:
        deferred.links = links(repo, branch, asked, since) if asked else None
        deferred.guard = guard
    else:
        for rec in fetch_commit_pulls(r, rc, asked, since):
            linked |= linked_merged(rec, branch, link_lo, hi)
            yield rec
        if guard is not None:
            yield from search_lag_guard(r, rc, start, as_of, since, searched, linked, (guard.logged, guard.known),
                                        moved=guard.moved)

    # deployments (production and staging) with all their statuses
    # (incremental: created since `since`, merged with the stored list at load, plus the
    # stored deployments whose statuses may still move)
    lo = parse_ts(iso_z(since))
    open_deps = plan.open_deployments if incremental else {}
    for env in dict.fromkeys(rc.production_environments + rc.staging_environments):
        deps, url, etag = r.get_all("/deployments", {"environment": env},
                                    stop=lambda page: sorted_past(page, "created_at", lo), conditional=True)
        if deps is None:  # 304: no deployment created since the stored list
            yield r.record("deployments", f"{repo}:{env}", url, None, 304, etag)
            deps = []
        else:
            deps = [d for d in deps if not is_before(d.get("created_at"), lo)]
            yield r.record("deployments", f"{repo}:{env}", url, deps, etag=etag)
        ids = list(dict.fromkeys([d["id"] for d in deps] + [int(o["id"]) for o in open_deps.get(env, [])]))
        known = list(deps or []) + list(open_deps.get(env, []))
        if deferred is None:
            yield from fetch_deployment_statuses(r, ids, known, env)
        elif ids:
            deferred.statuses.append(wanted(repo, ids, known, env))

    for env in rc.production_environments:
        status, data, url, etag = r.get(f"/environments/{env}", data_statuses=(404,), conditional=True)
        yield r.record("environment", f"{repo}:{env}", url, data, status, etag)


def _protection(r: RepoClient, repo: str, branch: str, *, ask_branch: bool) -> Iterator[RawRecord]:
    """The classic protection; with ``ask_branch``, then REST's branch when it answered 404."""
    status, prot, url, etag = r.get(f"/branches/{branch}/protection", data_statuses=(403, 404), conditional=True)
    yield r.record("branch_protection", f"{repo}:{branch}", url, prot, status, etag)
    if ask_branch and status == 404:
        status, br, url, etag = r.get(f"/branches/{branch}", conditional=True)
        yield r.record("branch", f"{repo}:{branch}", url, br, status, etag)


def merge_events(act_rec: RawRecord, entries: list[dict[str, Any]] | None, lo: datetime, hi: datetime) -> int | None:
    """(issue #15) The PR merges (``pr_merge``, ``merge_queue_merge``) the branch's activity log records
    in ``[lo, hi]``: 0 when it answered 304 (nothing since the stored log), None when unreadable."""
    if act_rec.status_code == 304:
        return 0
    if entries is None:
        return None
    return sum(1 for e in entries if isinstance(e, dict) and e.get("activity_type") in ("pr_merge", "merge_queue_merge")
               and (at := parse_ts_or_none(e.get("timestamp"))) is not None and lo <= at <= hi)


def search_lag_guard(r: RepoClient, rc: RepoConfig, start: datetime, as_of: datetime, since: datetime,
                     searched: set[Any], linked: set[int], merges: tuple[int | None, int], *, moved: bool = True
                     ) -> Iterator[RawRecord]:
    """(issue #15) The production branch's history is authoritative, the org-wide search only the
    fast path: GitHub's search index can lag behind a merge.  The search missed a PR when the
    night's first-parent history links a PR merged into the branch since ``since`` that the search
    did not give, or when the branch's activity log records more PR merges since then than the
    search gave PRs merged since then (``merges``: (the log's, the search's); the log's None: the
    log is unreadable, nothing rules a miss out when the branch ``moved`` since the stored tip; a
    branch that did not move had no merge since the last run).  The repository's PRs are then asked per
    repository (``CcwatchMergedPulls``, as without the search; those already staged are left out),
    so the population equals a full fetch.  A linked PR still missing after that fails the fetch
    (GitHub contradicts itself; never a population short of a PR the history names)."""
    missing = sorted(linked - searched)
    logged, known = merges
    if missing:
        why = (f"merged PR(s) {', '.join(f'#{n}' for n in missing)} linked to first-parent commits of "
               f"{rc.production_branch} are not in the org-wide search's answer")
    elif logged is None and moved:
        why = f"the activity log of {rc.production_branch} is unreadable, so a merge the search missed cannot be ruled out"
    elif logged is not None and logged > known:
        why = (f"the activity log of {rc.production_branch} records {logged} PR merge(s) since {iso_z(since)}, "
               f"the org-wide search gave {known}")
    else:
        return
    log.warning("GitHub %s: %s (search index lag?): the repository's PRs are asked per repository", rc.repo, why)
    yield from gql.fetch_pulls(r, rc, start, as_of, since, searched)
    still = sorted(set(missing) - searched)
    if still:
        raise SourceError(f"GitHub {rc.repo}: merged PR(s) {', '.join(f'#{n}' for n in still)} linked to first-parent "
                          f"commits of {rc.production_branch} are neither in the org-wide search nor in the "
                          f"repository's merged PRs updated since {iso_z(since)}: the population cannot be completed")


def _pulls(r: RepoClient, rc: RepoConfig, start: datetime, as_of: datetime, since: datetime | None = None,
           plan: Any = None) -> Iterator[RawRecord]:
    """PRs merged into the production branch in the window and updated since ``since`` (default:
    the window start, i.e. all of them), with reviews, checks and statuses.  A new review or
    label bumps a PR's ``updated_at``, so an unchanged PR is never refetched.

    With a ``plan``, the pulls list's page 1 is asked first with the stored ETag
    (``conditional.pulls_changed``): a 304 means no PR changed, an incremental plan then
    needs nothing more.  The PRs come in GraphQL batches (``graphql.fetch_pulls``)."""
    if plan is not None and not pulls_changed(r, rc, plan) and plan.incremental:
        return
    yield from gql.fetch_pulls(r, rc, start, as_of, since)


def _complete_line(r: RepoClient, rc: RepoConfig, commits: list[dict[str, Any]], tip: str | None,
                   entries: list[dict[str, Any]] | None, win: datetime, plan: Any
                   ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The first-parent line from ``tip`` through the listing, completed by push time (module
    docstring): (the line oldest first, {sha: single commit payload (with its url under ``_url``)}).

    Boundary: the branch's states at the window start in the activity log (``activity.boundary``)
    and the tip the last load stored.  Before the first single fetch, the merge base of the
    branch's state at the window start (or the stored tip) and the current tip joins it: a force
    push that replaced history older than the window start then does not send the walk down to
    the root."""
    known = set(boundary(entries, win)) if entries else set()
    if entries == [] and tip:  # the log was read and nothing happened since its lower bound: the tip is older
        known.add(tip)
    stored = getattr(plan, "tip", None)
    if stored:
        known.add(stored)
    ref = (state_at(entries, win) if entries else None) or stored
    singles: dict[str, dict[str, Any]] = {}

    def merge_base() -> None:
        if not ref or not tip or ref == tip:
            return
        status, data, _, _ = r.get(f"/compare/{ref}...{tip}", {"per_page": 1}, data_statuses=(404, 422))
        base = ((data or {}).get("merge_base_commit") or {}).get("sha") if status == 200 and isinstance(data, dict) else None
        if base:
            known.add(base)

    def one(sha: str) -> dict[str, Any] | None:
        status, data, url, _ = r.get(f"/commits/{sha}", data_statuses=(404, 422))
        if status != 200 or not isinstance(data, dict) or data.get("sha") != sha:
            raise SourceError(f"GitHub {rc.repo}: GET {url} answered HTTP {status}: commit {sha} of the first-parent "
                              f"line of {rc.production_branch} cannot be read")
        singles[sha] = dict(data, _url=url)
        return data

    try:
        line, _ = complete_line(commits, tip, known, one, SINGLE_COMMITS_CAP, merge_base)
    except LineTooLong as exc:
        raise SourceError(
            f"GitHub {rc.repo}: the first-parent line of {rc.production_branch} from {tip} does not reach the "
            f"branch's state at the window start within {exc.fetched} commits fetched one by one (next: {exc.at}): "
            f"commits dated before the window were pushed in it, or the history was rewritten below the window "
            f"start; the line cannot be completed by push time") from None
    return line, singles
