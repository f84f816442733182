"""
### ccwatch_nightly — continuous SOC 2 CC8.1 change-management evidence

Every night, for the run's logical date (the **as-of time**):

1. **github_repositories** lists the configured repositories and asks GitHub, org-wide in
   batches of 50, each one's count of merged PRs for the reconciliation; then **ingest_github_repo**
   fetches each one in its own mapped task instance (dynamic task mapping, labelled with the
   repository; at most `CCWATCH_GITHUB_CONCURRENCY`, default 4, at a time per run, spread over
   the workers) while **ingest_jira** fetches Jira. They use the real clients (connections
   `github_default`, `jira_default`; ids in the config file) and stage the raw payloads under
   `CCWATCH_HOME/staging/<date>/` (GitHub: one file per repository), which every worker must share;
   then **github_batches** asks org-wide, in GraphQL requests that span repositories, what the
   repositories' fetches need: the PRs of their new first-parent commits (then the guard against
   the search index's lag) and the statuses of their new and still-moving deployments;
2. **resolve_tickets** fetches tickets named in PR titles that the project search missed;
3. **load_warehouse** loads the staged payloads into DuckDB in one transaction;
4. **build_facts** derives one row of facts per change and per repository;
5. **evaluate_controls** asserts CC8.1-01…13 with Great Expectations into `control_results`;
6. **write_evidence** writes the dated, hash-manifested evidence folder and archive, signed with
   the Ed25519 key of `evidence.signing_conn_id` and time-stamped by `evidence.timestamp_url` when
   set (a failing TSA fails the run), and records both digests in `evidence_archives`;
7. **alert_slack** posts failures not alerted before (connection `slack_api_default`), or on a
   night without news one line; either way the archive's and the manifest's SHA-256.

A failed fetch of any one repository fails the run (nothing downstream runs, no "all clear");
each mapped task retries on its own, and a task that fails for good posts a pipeline-failure
alert. Reruns of a date replace that date's results.
The configuration file comes from `CCWATCH_CONFIG` (default `include/config/ccwatch.yaml`).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import pendulum
from airflow.sdk import dag, task
from ccwatch_airflow.callbacks import alert_pipeline_failure

log = logging.getLogger("ccwatch")

# Retries cover passing source faults; the demo and the tests shorten the delay through
# CCWATCH_RETRY_DELAY_SECONDS so a failing run fails in seconds, not a quarter hour.
DEFAULT_ARGS = {
    "owner": "compliance-platform",
    "retries": int(os.environ.get("CCWATCH_RETRIES", "2")),
    "retry_delay": timedelta(seconds=int(os.environ.get("CCWATCH_RETRY_DELAY_SECONDS", "300"))),
    "retry_exponential_backoff": True,
    "on_failure_callback": alert_pipeline_failure,
}

# Repositories fetched at the same time per run. Parsing must not read the config file, so the
# config's github.concurrency (the in-process thread pool) is mirrored by this variable.
GITHUB_CONCURRENCY_ENV = "CCWATCH_GITHUB_CONCURRENCY"


def _github_concurrency() -> int:
    text = os.environ.get(GITHUB_CONCURRENCY_ENV, "4").strip()
    if not text.isdigit() or not 1 <= int(text) <= 32:
        raise ValueError(f"{GITHUB_CONCURRENCY_ENV}={text!r}: must be an integer from 1 to 32")
    return int(text)


def _run(context) -> tuple:
    """Settings, as-of time and output folder of this run (cheap; called inside tasks only)."""
    from ccwatch.common.times import parse_as_of
    from ccwatch.settings import ccwatch_home, load_settings

    return load_settings(), parse_as_of(context["logical_date"]), ccwatch_home()


@dag(
    dag_id="ccwatch_nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ccwatch", "compliance", "soc2"],
    doc_md=__doc__,
)
def ccwatch_nightly():
    @task
    def github_repositories(**context) -> list[str]:
        from ccwatch.pipeline import github_repositories as stage
        from ccwatch_airflow.connections import configured_endpoint

        settings, as_of, home = _run(context)
        if settings.github.concurrency != _github_concurrency():
            log.warning("github.concurrency is %d in the config but %s=%d limits the mapped fetches",
                        settings.github.concurrency, GITHUB_CONCURRENCY_ENV, _github_concurrency())
        return stage(settings, as_of, home, configured_endpoint(settings, "github"))

    @task(map_index_template="{{ task.op_kwargs['repo'] }}", max_active_tis_per_dagrun=_github_concurrency())
    def ingest_github_repo(repo: str, **context) -> dict:
        from ccwatch.pipeline import ingest_github_repo as stage
        from ccwatch_airflow.connections import configured_endpoint

        settings, as_of, home = _run(context)
        endpoint = configured_endpoint(settings, "github")
        return stage(settings, endpoint, as_of, home, repo)

    @task
    def github_batches(**context) -> dict:
        from ccwatch.pipeline import ingest_github_batches as stage
        from ccwatch_airflow.connections import configured_endpoint

        settings, as_of, home = _run(context)
        return stage(settings, configured_endpoint(settings, "github"), as_of, home)

    @task
    def ingest_jira(**context) -> dict:
        from ccwatch.pipeline import ingest_jira as stage
        from ccwatch_airflow.connections import configured_endpoint

        settings, as_of, home = _run(context)
        endpoint = configured_endpoint(settings, "jira")
        return stage(settings, endpoint, as_of, home)

    @task
    def resolve_tickets(**context) -> dict:
        from ccwatch.pipeline import resolve_tickets as stage
        from ccwatch_airflow.connections import configured_endpoint

        settings, as_of, home = _run(context)
        endpoint = configured_endpoint(settings, "jira")
        return stage(settings, endpoint, as_of, home)

    @task
    def load_warehouse(**context) -> dict:
        from ccwatch.pipeline import load_warehouse as stage

        return stage(*_run(context))

    @task
    def build_facts(**context) -> dict:
        from ccwatch.pipeline import build_facts as stage

        return stage(*_run(context))

    @task
    def evaluate_controls(**context) -> dict:
        from ccwatch.pipeline import evaluate_controls as stage

        return stage(*_run(context))

    @task
    def write_evidence(**context) -> dict:
        from ccwatch.pipeline import write_evidence as stage
        from ccwatch_airflow.connections import configured_endpoint, configured_signing_key

        settings, as_of, home = _run(context)
        endpoints = {
            "github": configured_endpoint(settings, "github").base_url,
            "jira": configured_endpoint(settings, "jira").base_url,
        }
        ti = context.get("ti") or context.get("task_instance")
        run_info = {"dag_id": getattr(ti, "dag_id", None), "run_id": context.get("run_id"),
                    "try_number": getattr(ti, "try_number", None)}
        return stage(settings, as_of, home, endpoints, signing_key=configured_signing_key(settings),
                     run_info=run_info)

    @task
    def alert_slack(evidence: dict, **context) -> dict:
        from ccwatch.pipeline import alert_slack as stage
        from ccwatch_airflow.connections import configured_endpoint

        settings, as_of, home = _run(context)
        endpoint = configured_endpoint(settings, "slack")
        return stage(settings, as_of, home, endpoint, evidence["report"])

    batches = github_batches()
    ingest_github_repo.expand(repo=github_repositories()) >> batches
    fetched = [batches, ingest_jira()]
    tickets = resolve_tickets()
    loaded = load_warehouse()
    facts = build_facts()
    evaluated = evaluate_controls()
    evidence = write_evidence()
    fetched >> tickets >> loaded >> facts >> evaluated >> evidence
    alert_slack(evidence)


ccwatch_nightly()
