"""GitHub ingestion per repository: the per-repository stage and the thread pool over them.

One repository is the unit of concurrency (a worker thread of :func:`ingest_github`) and of
Airflow's dynamic task mapping (one ``ingest_github_repo`` task instance per repository,
:func:`ingest_github_repo`).  Each repository is staged on its own, atomically
(docs/ARCHITECTURE.md, "Staging layout")::

    staging/<date>/github/<owner>__<name>.jsonl       its raw records (temp name + rename)
    staging/<date>/github/<owner>__<name>.plan.json   its fetch plan (``plan.github_plan_meta``)
    staging/<date>/github/<owner>__<name>.batches.json   what it leaves to the org-wide batches
    staging/<date>/ingest_github[<owner>__<name>].failed.json   its last attempt failed

A repository whose fetch fails leaves its failure marker and no staging file: the date is
failed exactly as a failed fetch was before (no load, no evidence, no all-clear).  The load
(``staging.staged_github``) requires the files of every CONFIGURED repository; files of a
repository removed from the config are neither required nor loaded.  The commits' PRs and the
deployments' statuses of every repository are asked after them, org-wide (``batches.py``): by
:func:`ingest_github` once its pool is done, by the DAG's ``github_batches`` task after the mapped ones.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ccwatch.common.endpoints import Endpoint, redact_url
from ccwatch.common.errors import StageError
from ccwatch.common.files import write_json_atomic
from ccwatch.common.paths import staging_dir, warehouse_path
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github.batches import stage_batches, write_deferred
from ccwatch.ingest.github.client import ThreadClients
from ccwatch.ingest.github.counts import stage_counts, staged_count
from ccwatch.ingest.github.discovery import stage_pulls, staged_pulls
from ccwatch.ingest.github.fetch import Deferred, fetch_github_repo
from ccwatch.ingest.github.repositories import stage_repositories, staged_repository
from ccwatch.ingest.http.ratebudget import RateBudget
from ccwatch.ingest.plan import github_plan_meta, plan_github_repo
from ccwatch.ingest.records import RawRecord, write_staging
from ccwatch.ingest.staging import (
    GITHUB_STAGE,
    PENDING,
    deferred_file,
    failure_marker,
    fresh,
    github_dir,
    ingest_attempt,
    repo_files,
    repo_slug,
)
from ccwatch.ingest.state import read_state
from ccwatch.settings import RepoConfig, Settings

log = logging.getLogger("ccwatch")
COUNTS_STAGE = "ingest_github_counts"  # its failure marker: staging/<date>/ingest_github_counts.failed.json



class Cancelled(RuntimeError):
    """A repository's fetch stopped because another repository of the same ingest failed."""


def _check_slugs(settings: Settings) -> None:
    seen: dict[str, str] = {}
    for rc in settings.github.repositories:
        other = seen.setdefault(repo_slug(rc.repo).lower(), rc.repo)
        if other != rc.repo:
            raise StageError(f"GitHub repositories {other} and {rc.repo} would share the staging file "
                             f"{repo_slug(rc.repo)}.jsonl: rename one in the config")


def github_repositories(settings: Settings, as_of: datetime, home: Path, endpoint: Endpoint | None = None, *,
                        budget: Any = None, full: bool = False) -> list[str]:
    """The configured repositories (what the DAG maps over), after preparing the date: it is
    marked pending, and failure markers of repositories no longer configured (or of the
    single-file layout before per-repository staging) are removed, so they cannot fail the date.
    With an ``endpoint``, the reconciliation counts and the settings of every repository are then
    asked org-wide in batches and staged for the repositories' fetches (``counts.py``,
    ``repositories.py``), and the merged PRs of the
    incremental ones discovered org-wide by search (``discovery.py``; not with ``full``); a failure
    leaves ``ingest_github_counts.failed.json`` (the date cannot be loaded until a fetch succeeds)."""
    _check_slugs(settings)
    sdir = staging_dir(home, as_of)
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / PENDING).touch()
    configured = {failure_marker(home, as_of, rc.repo).name for rc in settings.github.repositories}
    for marker in [*sdir.glob(f"{GITHUB_STAGE}[[]*].failed.json"), sdir / f"{GITHUB_STAGE}.failed.json"]:
        if marker.name not in configured and marker.exists():
            log.info("GitHub: %s is not a configured repository's failure: removed", marker.name)
            marker.unlink(missing_ok=True)
    if endpoint is not None:
        with ingest_attempt(sdir, COUNTS_STAGE, as_of):
            stage_counts(settings, endpoint, as_of, home, budget=budget)
            stage_repositories(settings, endpoint, as_of, home, budget=budget)
            state = None if full else read_state(home, warehouse_path(home))
            stage_pulls(settings, endpoint, as_of, home, state, budget=budget)
    return [rc.repo for rc in settings.github.repositories]


def _repo_config(settings: Settings, repo: str) -> RepoConfig:
    try:
        return settings.repo(repo)
    except KeyError:
        raise StageError(f"GitHub {repo}: not a repository of the config (github.repositories)") from None


def _until(records: Iterable[RawRecord], stop: threading.Event | None, repo: str) -> Iterator[RawRecord]:
    for rec in records:
        if stop is not None and stop.is_set():
            raise Cancelled(f"GitHub {repo}: fetch stopped because another repository failed")
        yield rec


def _stage_repo(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, rc: RepoConfig,
                state: dict[str, Any] | None, *, client: Callable[[], Any] | None = None, budget: Any = None,
                stop: threading.Event | None = None) -> dict:
    """``client``: gives the PyGithub client to use (the worker thread's), inside the attempt so
    that a client that cannot be made fails this repository like any other fetch error."""
    sdir = staging_dir(home, as_of)
    marker = failure_marker(home, as_of, rc.repo).name
    with ingest_attempt(sdir, f"{GITHUB_STAGE}[{rc.repo}]", as_of, marker=marker):
        started = datetime.now(UTC)  # bookkeeping only: caps the watermark of a future-dated run
        plan = plan_github_repo(settings, state, as_of, rc)
        path, plan_path = repo_files(home, as_of, rc.repo)
        fresh(path)  # before the plan: a staging file is always newer than the plan next to it
        fresh(deferred_file(home, as_of, rc.repo))
        write_json_atomic(plan_path, github_plan_meta({rc.repo: plan}, as_of, started, state))
        start = as_of - timedelta(days=settings.lookback_days)
        count = staged_count(home, as_of, rc, start)
        repository = staged_repository(home, as_of, rc)
        discovered = staged_pulls(home, as_of, rc.repo, start, plan.since) if plan.incremental else None
        deferred = Deferred()  # what the org-wide batches ask after every repository (batches.py)
        records = fetch_github_repo(settings, endpoint, as_of, rc, plan, client=client and client(), budget=budget,
                                    count=count, discovered=discovered, deferred=deferred, repository=repository)
        n = write_staging(path, _until(records, stop, rc.repo))
        write_deferred(home, as_of, rc.repo, deferred)
    log.info("GitHub %s: %d raw payloads (%s) staged in %s", rc.repo, n, plan.mode, path)
    return {"repo": rc.repo, "records": n, "mode": plan.mode, "file": str(path)}


def ingest_github_repo(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, repo: str, *,
                       full: bool = False, budget: Any = None) -> dict:
    """Fetch ONE configured repository into its staging file (the mapped task's body)."""
    rc = _repo_config(settings, repo)
    _check_slugs(settings)
    state = None if full else read_state(home, warehouse_path(home))
    return _stage_repo(settings, endpoint, as_of, home, rc, state, budget=rate_budget() if budget is None else budget)


def rate_budget(workers: int = 1) -> RateBudget:
    """A rate-limit budget shared by the threads of one process (``ingest/http/ratebudget.py``)."""
    return RateBudget(workers=workers)


def ingest_github(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, *, full: bool = False,
                  max_workers: int | None = None) -> dict:
    """Fetch every configured repository, ``max_workers`` at a time (default
    ``github.concurrency``), one PyGithub client per worker thread and one shared rate budget,
    then the org-wide batches (``batches.stage_batches``: the commits' PRs, the deployments' statuses).
    The first failure stops the other workers (repositories not started are not fetched, running
    ones stop at their next record) and is re-raised naming its repository."""
    workers = max(1, min(max_workers or settings.github.concurrency, len(settings.github.repositories)))
    budget, stop, threads = rate_budget(workers), threading.Event(), ThreadClients(endpoint)
    repos = github_repositories(settings, as_of, home, endpoint, budget=budget, full=full)
    state = None if full else read_state(home, warehouse_path(home))
    errors: list[tuple[str, BaseException]] = []  # in the order they happened
    lock = threading.Lock()

    def one(repo: str) -> dict:
        if stop.is_set():
            raise Cancelled(f"GitHub {repo}: not fetched because another repository failed")
        try:
            return _stage_repo(settings, endpoint, as_of, home, settings.repo(repo), state,
                               client=threads.get, budget=budget, stop=stop)
        except Cancelled:
            raise
        except BaseException as exc:
            with lock:
                errors.append((repo, exc))
            stop.set()  # before this worker takes the next repository
            raise

    started = datetime.now(UTC)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ccwatch-github") as pool:
            futures: dict[Future, str] = {pool.submit(one, r): r for r in repos}
            wait(futures, return_when=FIRST_EXCEPTION)
            if stop.is_set():
                for f in futures:
                    f.cancel()  # not started yet: never fetched
        # leaving the pool waited for every worker: the running ones stopped at their next record
    finally:
        threads.close()
    if errors:
        repo, exc = errors[0]
        if repo in str(exc):
            raise exc
        if isinstance(exc, SourceError):
            raise SourceError(f"GitHub {repo}: {exc}") from exc
        raise StageError(f"GitHub {repo}: {type(exc).__name__}: {exc}") from exc
    results = {futures[f]: f.result() for f in futures}
    batches = stage_batches(settings, endpoint, as_of, home, budget=budget, workers=workers)
    total = sum(r["records"] for r in results.values()) + batches["records"]
    log.info("GitHub: %d raw payloads from %d repositories (%d workers, %.1f s) from %s staged in %s",
             total, len(repos), workers, (datetime.now(UTC) - started).total_seconds(),
             redact_url(endpoint.base_url), github_dir(home, as_of))
    return {"records": total, "file": str(github_dir(home, as_of)), "workers": workers,
            "modes": {r: results[r]["mode"] for r in repos}, "repos": {r: results[r]["records"] for r in repos},
            "batches": batches["records"]}
