"""The PRs of first-parent commits, from the branch's GraphQL history (issue #15: org-wide too).

``CcwatchBranchHistory`` (100 commits a page, one repository) and ``CcwatchBranchHistories`` (the
same page aliased for up to ``HISTORY_REPOS`` repositories, asked by ``batches.py`` after every
repository's fetch) replace ``/commits/{sha}/pulls`` for each first-parent commit: raw kind
``gql_commit_pulls`` (payload: that commit's history node exactly as returned).  A commit the history
does not reach, or with more associated PRs than a page, goes through REST (``commit_pulls``) from
its repository's client (docs/ARCHITECTURE.md, "GraphQL raw kinds").
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ccwatch.common.times import iso_z, parse_ts, parse_ts_or_none
from ccwatch.ingest.github.graphql import HISTORIES_OP, HISTORY_OP, GraphQL, next_cursor, repos_named
from ccwatch.ingest.github.queries import (
    ASSOCIATED_PULLS,
    HISTORY_PAGE,
    HISTORY_REPOS,
    branch_histories_document,
)
from ccwatch.ingest.records import RawRecord

log = logging.getLogger(__name__)


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
