"""(issue #15) What every repository's fetch needs from GraphQL, asked org-wide after the repositories' fetches.

Two GraphQL lookups used to cost at least one counted request for every repository that moved:

* the PRs of the night's first-parent commits (``CcwatchBranchHistory``, the branch's history
  paged from the earliest new commit: usually one page of a few commits);
* the statuses of the new deployments and of those whose statuses may still move
  (``CcwatchDeploymentStatuses``, 50 deployments a request by node id: usually one to three).

Node ids are global, and one document can hold one aliased ``repository`` per repository, so both
are now asked for all repositories together.  Each repository's fetch stages, beside its raw
records, what it left for them (``fetch.Deferred``)::

    staging/<date>/github/<owner>__<name>.batches.json
        {"repo", "as_of", "statuses": [deployment_statuses.Wanted ...], "links": commit_links.Links | null,
         "guard": fetch.Guard | null}

After every repository, :func:`stage_batches` asks

1. the commits' PRs: ``CcwatchBranchHistories``, the history pages of ``HISTORY_REPOS`` repositories a
   request (round after round while a repository has more pages), the same history walk as the
   per-repository query (``commit_links.commit_pulls``);
2. the search-lag guard of each repository that took its PRs from the org-wide search
   (``fetch.search_lag_guard``), now that its links are known: a repository the search may have
   missed a PR of asks its own PRs, as before;
3. the deployments' statuses: 50 a request across repositories (``deployment_statuses.deployment_statuses``);

``github.concurrency`` requests at a time, and stages the raw records, exactly the ones the
repositories asked before (``gql_commit_pulls`` / REST ``commit_pulls``, ``gql_pull`` and its REST
pieces, ``gql_deployment_statuses`` / REST ``deployment_statuses``)::

    staging/<date>/github_batches.jsonl   the records (RawRecord lines, written atomically)
    staging/<date>/github_batches.json    {"as_of", "records", "repos": {repo: sha256 of its batches file}}

Fail closed: any error fails the stage (``github_batches.failed.json``; the load refuses the date),
a repository without its batches file fails it naming the repository, a linked PR neither the search
nor the repository's own PRs give fails it naming the PR.  The load takes the records only when the
meta names the current batches file of every configured repository (``staging.staged_batches``): a
repository fetched again afterwards makes the load refuse until this stage runs again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ccwatch.common.endpoints import Endpoint
from ccwatch.common.errors import StageError
from ccwatch.common.files import write_json_atomic
from ccwatch.common.paths import staging_dir
from ccwatch.common.times import iso_z
from ccwatch.ingest.github.client import RepoClient, ThreadClients
from ccwatch.ingest.github.commit_links import Links, commit_pulls, linked_merged
from ccwatch.ingest.github.deployment_statuses import Wanted, deployment_statuses
from ccwatch.ingest.github.fetch import Deferred, Guard, link_window, search_lag_guard
from ccwatch.ingest.github.graphql import GraphQL, Named
from ccwatch.ingest.http.ratebudget import RateBudget
from ccwatch.ingest.records import RawRecord, write_staging
from ccwatch.ingest.staging import BATCHES_STAGE, batches_files, deferred_file, digest, fresh, ingest_attempt
from ccwatch.settings import Settings

log = logging.getLogger(__name__)


def write_deferred(home: Path, as_of: datetime, repo: str, deferred: Deferred) -> Path:
    """Stage what ``repo``'s fetch left for the org-wide batches (atomically)."""
    return write_json_atomic(deferred_file(home, as_of, repo), {"repo": repo, "as_of": iso_z(as_of), **asdict(deferred)})


def read_deferred(path: Path, repo: str, branch: str | None = None) -> tuple[Deferred, str]:
    """(what ``repo``'s batches file asks, the file's SHA-256); StageError naming the file, also when
    its commits are of another ``branch`` than the configured production branch (the config changed
    after the fetch: the line, and the merges the lag guard counts, would be another branch's)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StageError(f"{path}: missing: the fetch of {repo} did not complete (rerun it, then "
                         f"{BATCHES_STAGE})") from None
    try:
        doc = json.loads(raw)
        if doc.get("repo") != repo:
            raise ValueError(f"it names {doc.get('repo')!r}")
        statuses = [Wanted(repo, w["environment"], tuple(int(i) for i in w["ids"]), tuple(dict(d) for d in w["known"]))
                    for w in doc["statuses"]]
        lk = doc["links"]
        links = None if lk is None else Links(repo, str(lk["branch"]), tuple(
            {"sha": str(c["sha"]), "date": c["date"]} for c in lk["commits"]), str(lk["since"]))
        gd = doc["guard"]
        guard = None if gd is None else Guard(datetime.fromisoformat(gd["since"]).isoformat(),
                                              [int(n) for n in gd["searched"]],
                                              None if gd["logged"] is None else int(gd["logged"]), int(gd["known"]),
                                              bool(gd["moved"]), [int(n) for n in gd["linked"]])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StageError(f"{path}: not the batches file of {repo} ({exc}): rerun the fetch of {repo}") from None
    if branch is not None and links is not None and links.branch != branch:
        raise StageError(f"{path}: fetched for branch {links.branch} of {repo}, the config's production branch is "
                         f"now {branch}: rerun the fetch of {repo}, then {BATCHES_STAGE}")
    return Deferred(statuses, links, guard), digest(raw)


def stage_batches(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, *, budget: Any = None,
                  workers: int | None = None) -> dict[str, Any]:
    """Ask what every configured repository's fetch left for the org-wide batches, and stage the records."""
    sdir = staging_dir(home, as_of)
    with ingest_attempt(sdir, BATCHES_STAGE, as_of):
        path, meta = batches_files(home, as_of)
        fresh(meta)  # first: a meta without its records, or naming older ones, can never look current
        fresh(path)
        deferred: dict[str, Deferred] = {}
        digests: dict[str, str] = {}
        for rc in settings.github.repositories:
            deferred[rc.repo], digests[rc.repo] = read_deferred(deferred_file(home, as_of, rc.repo), rc.repo,
                                                                rc.production_branch)
        n = max(1, workers or settings.github.concurrency)
        budget = budget if budget is not None else RateBudget(workers=n)
        threads = ThreadClients(endpoint)
        try:
            gh = threads.get()
            clients = {repo: RepoClient(gh, endpoint, repo, None, budget, as_of) for repo in deferred}
            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="ccwatch-batches") as pool:
                records = _records(settings, as_of, deferred, clients,
                                   lambda name: GraphQL(Named(threads.get().requester, budget, name)),
                                   pool if n > 1 else None)
                count = write_staging(path, records)
        finally:
            threads.close()
        write_json_atomic(meta, {"as_of": iso_z(as_of), "records": count, "repos": digests})
    log.info("GitHub: the org-wide batches of %d repositories staged in %s (%d records)", len(deferred), path, count)
    return {"records": count, "file": str(path)}


def _records(settings: Settings, as_of: datetime, deferred: dict[str, Deferred], clients: dict[str, RepoClient],
             graphql: Any, pool: Any) -> Iterator[RawRecord]:
    start = as_of - timedelta(days=settings.lookback_days)
    guards = {repo: d.guard for repo, d in deferred.items() if d.guard is not None}
    windows = {repo: link_window(datetime.fromisoformat(g.since), start, as_of)
               for repo, g in guards.items()}
    linked = {repo: set(g.linked) for repo, g in guards.items()}
    branches = {rc.repo: rc.production_branch for rc in settings.github.repositories}
    for rec in commit_pulls(graphql, clients, [d.links for d in deferred.values() if d.links is not None], pool=pool):
        repo = rec.natural_key.split("@", 1)[0]
        if repo in linked:
            linked[repo] |= linked_merged(rec, branches[repo], *windows[repo])
        yield rec
    for repo, g in guards.items():
        yield from search_lag_guard(clients[repo], settings.repo(repo), start, as_of,
                                    datetime.fromisoformat(g.since), set(g.searched), linked[repo],
                                    (g.logged, g.known), moved=g.moved)
    yield from deployment_statuses(graphql, clients, [w for d in deferred.values() for w in d.statuses], pool=pool)
