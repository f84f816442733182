"""(issue #15) The deployment statuses of every repository, asked org-wide after the repositories' fetches.

A repository's fetch used to ask its deployments' statuses itself (``CcwatchDeploymentStatuses``,
50 deployments a request by node id): at least one counted request for every repository with a
new deployment or one whose statuses may still move, each usually for one to three deployments.
Node ids are global, so one ``nodes(ids:)`` lookup can hold the deployments of many repositories.

Each repository's fetch now stages, beside its raw records, the deployments whose statuses it
needs (``staging/<date>/github/<owner>__<name>.statuses.json``: ``graphql.Wanted`` entries, the
fields of the REST payloads the lookup checks).  After every repository, :func:`stage_statuses`
asks them all, 50 a request across repositories (``github.concurrency`` requests at a time), and
stages the raw records, exactly the ones the repositories asked before (``gql_deployment_statuses``,
or REST ``deployment_statuses`` for a node that does not resolve, does not match or overflows)::

    staging/<date>/github_statuses.jsonl   the records (RawRecord lines, written atomically)
    staging/<date>/github_statuses.json    {"as_of", "records", "repos": {repo: sha256 of its statuses file}}

Fail closed: any error fails the stage (``github_deployment_statuses.failed.json``; the load refuses the
date), and a repository without its statuses file fails it naming the repository.  The load takes
the statuses only when the meta names the current statuses file of every configured repository
(``staging.staged_statuses``): a repository fetched again afterwards makes the load refuse until
this stage runs again.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from github import Github

from ccwatch.common.endpoints import Endpoint
from ccwatch.common.errors import StageError
from ccwatch.common.files import write_json_atomic
from ccwatch.common.paths import staging_dir
from ccwatch.common.times import iso_z
from ccwatch.ingest.github.client import RepoClient, make_client
from ccwatch.ingest.github.graphql import GraphQL, Named, Wanted, deployment_statuses
from ccwatch.ingest.http.ratebudget import RateBudget
from ccwatch.ingest.records import write_staging
from ccwatch.ingest.staging import STATUSES_STAGE, digest, fresh, ingest_attempt, statuses_files, wanted_file
from ccwatch.settings import Settings

log = logging.getLogger(__name__)


def write_wanted(home: Path, as_of: datetime, repo: str, asked: list[Wanted]) -> Path:
    """Stage ``repo``'s deployments whose statuses are needed (atomically)."""
    return write_json_atomic(wanted_file(home, as_of, repo),
                             {"repo": repo, "as_of": iso_z(as_of), "wanted": [asdict(w) for w in asked]})


def read_wanted(path: Path, repo: str) -> tuple[list[Wanted], str]:
    """(the entries of ``repo``'s statuses file, the file's SHA-256); StageError naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StageError(f"{path}: missing: the fetch of {repo} did not complete (rerun it, then "
                         f"{STATUSES_STAGE})") from None
    try:
        doc = json.loads(raw)
        if doc.get("repo") != repo:
            raise ValueError(f"it names {doc.get('repo')!r}")
        out = [Wanted(repo, w["environment"], tuple(int(i) for i in w["ids"]),
                      tuple(dict(d) for d in w["known"])) for w in doc["wanted"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StageError(f"{path}: not the statuses file of {repo} ({exc}): rerun the fetch of {repo}") from None
    return out, digest(raw)


def stage_statuses(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, *, budget: Any = None,
                   workers: int | None = None) -> dict[str, Any]:
    """Ask the statuses every configured repository's fetch staged a need for, org-wide, and stage them."""
    sdir = staging_dir(home, as_of)
    with ingest_attempt(sdir, STATUSES_STAGE, as_of):
        path, meta = statuses_files(home, as_of)
        fresh(meta)  # first: a meta without its records, or naming older ones, can never look current
        fresh(path)
        asked: list[Wanted] = []
        digests: dict[str, str] = {}
        for rc in settings.github.repositories:
            entries, digests[rc.repo] = read_wanted(wanted_file(home, as_of, rc.repo), rc.repo)
            asked.extend(entries)
        n = max(1, workers or settings.github.concurrency)
        budget = budget if budget is not None else RateBudget(workers=n)
        local, lock, clients_made = threading.local(), threading.Lock(), []

        def thread_client() -> Github:
            gh = getattr(local, "gh", None)
            if gh is None:
                gh = local.gh = make_client(endpoint)
                with lock:
                    clients_made.append(gh)
            return gh

        try:
            gh = thread_client()
            clients = {w.repo: RepoClient(gh, endpoint, w.repo, None, budget, as_of) for w in asked}
            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="ccwatch-statuses") as pool:
                records = deployment_statuses(lambda name: GraphQL(Named(thread_client().requester, budget, name)),
                                              clients, asked, pool=pool if n > 1 else None)
                count = write_staging(path, records)
        finally:
            for gh in clients_made:
                gh.close()
        write_json_atomic(meta, {"as_of": iso_z(as_of), "records": count, "repos": digests})
    log.info("GitHub: statuses of %d deployment(s) of %d repositories staged in %s (%d records)",
             sum(len(w.ids) for w in asked), len({w.repo for w in asked}), path, count)
    return {"deployments": sum(len(w.ids) for w in asked), "records": count, "file": str(path)}
