"""One function per stage of the nightly run; the DAG's task bodies call these and nothing else.

Every stage takes the run's as-of time (tz-aware UTC) and works under ``home``
(``CCWATCH_HOME``).  Stages hand over through files and the warehouse, never through
large XComs: each returns a small JSON-serialisable summary.

Ingestion is incremental (``ingest.plan``) and atomic for evaluation: a fetch stage marks the
date's staging folder pending before it touches anything and leaves ``<stage>.failed.json`` when
it fails (``ingest.staging``); only a committed load clears the pending mark.  Evaluation,
evidence and alerting refuse a date that is pending, failed, or not loaded (``warehouse.runs``),
so they never read a half-written or failed ingest; the warehouse keeps the previous complete
state.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

from ccwatch.common.changes import title_ticket_key
from ccwatch.common.endpoints import Endpoint, redact_url
from ccwatch.common.errors import StageError
from ccwatch.common.files import write_json_atomic
from ccwatch.common.paths import staging_dir, state_path, validation_path, warehouse_path
from ccwatch.ingest import staging
from ccwatch.ingest.records import read_staging, write_staging
from ccwatch.ingest.state import drop_state, read_state, write_state
from ccwatch.settings import Settings
from ccwatch.warehouse import connection
from ccwatch.warehouse.runs import mark_run, open_loaded, record_failed_ingests

log = logging.getLogger("ccwatch")


# --- fetch -------------------------------------------------------------------------


def ingest_github(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, *, full: bool = False,
                  max_workers: int | None = None) -> dict:
    """Fetch every configured repository into ``staging/<date>/github/<owner>__<name>.jsonl``,
    ``max_workers`` (default ``github.concurrency``) at a time, then their commits' PRs and
    deployments' statuses org-wide; incremental per repository when the ingest state allows it (``full=True`` forces
    the whole window)."""
    from ccwatch.ingest.github import fanout

    return fanout.ingest_github(settings, endpoint, as_of, home, full=full, max_workers=max_workers)


def github_repositories(settings: Settings, as_of: datetime, home: Path, endpoint: Endpoint | None = None) -> list[str]:
    """The repositories the DAG maps ``ingest_github_repo`` over (prepares the date, see ingest.github.fanout;
    with the GitHub ``endpoint``, also asks the reconciliation counts of all of them org-wide, in batches).

    The run's first task: a malformed exceptions register stops the run here, before anything is
    fetched or marked (evaluate_controls reads it again: that reading is the one applied)."""
    from ccwatch.controls.register import configured_register
    from ccwatch.ingest.github import fanout

    configured_register(settings)
    return fanout.github_repositories(settings, as_of, home, endpoint)


def ingest_github_repo(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, repo: str, *,
                       full: bool = False, budget=None) -> dict:
    """Fetch ONE configured repository into its staging file (the mapped task's body)."""
    from ccwatch.ingest.github import fanout

    return fanout.ingest_github_repo(settings, endpoint, as_of, home, repo, full=full, budget=budget)


def ingest_github_batches(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path) -> dict:
    """The commits' PRs and the deployments' statuses of every repository, asked org-wide once every
    ``ingest_github_repo`` is done (``ingest/github/batches.py``; the DAG's ``github_batches``)."""
    from ccwatch.ingest.github.batches import stage_batches

    return stage_batches(settings, endpoint, as_of, home)


def ingest_jira(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, *, full: bool = False) -> dict:
    """Fetch the Jira projects into ``staging/<date>/jira.jsonl`` (incremental per project when possible)."""
    from ccwatch.ingest.jira import fetch_jira
    from ccwatch.ingest.plan import jira_plan_meta, plan_jira

    sdir = staging_dir(home, as_of)
    with staging.ingest_attempt(sdir, "ingest_jira", as_of):
        started = datetime.now(UTC)  # bookkeeping only: caps the watermark of a future-dated run
        state = None if full else read_state(home, warehouse_path(home))
        plan = plan_jira(settings, state, as_of)
        path = staging.fresh(sdir / "jira.jsonl")
        write_json_atomic(sdir / staging.JIRA_PLAN, jira_plan_meta(plan, as_of, started, state, settings.lookback_days))
        n = write_staging(path, fetch_jira(settings, endpoint, as_of, plan=plan))
    log.info("Jira: %d raw payloads from %s staged in %s", n, redact_url(endpoint.base_url), path)
    return {"records": n, "file": str(path), "modes": {p: m for ps, m, _ in plan.groups for p in ps}}


def referenced_ticket_keys(settings: Settings, titles: list[str]) -> list[str]:
    """The tickets the PR titles link (CONTROLS.md, "Ticket"): the first in-scope key of each."""
    pattern, projects = re.compile(settings.jira.ticket_key_pattern), frozenset(settings.jira.project_keys)
    return sorted({key for title in titles if (key := title_ticket_key(title, pattern, projects)[0])})


def resolve_tickets(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path) -> dict:
    """Fetch the tickets that PR titles name but the project search did not bring."""
    from ccwatch.ingest.jira import fetch_jira

    sdir = staging_dir(home, as_of)
    with staging.ingest_attempt(sdir, "resolve_tickets", as_of):
        jr, jplan = sdir / "jira.jsonl", sdir / staging.JIRA_PLAN
        for p in (jr, jplan):
            if not p.is_file():
                raise StageError(f"{p} is missing: the ingest stage that writes it did not complete")
        gh, _ = staging.staged_github(settings, home, as_of)
        titles = [(r.payload or {}).get("title") or "" for r in staging.read_github(gh)
                  if r.kind in ("pull", "gql_pull") and isinstance(r.payload, (dict, type(None)))]
        have = {r.natural_key for r in read_staging(jr) if r.kind in ("issue", "issue_missing")}
        # tickets already in the warehouse: unchanged unless the project search brought them again
        stored = set(json.loads(jplan.read_text(encoding="utf-8")).get("known_keys") or [])
        wanted = [k for k in referenced_ticket_keys(settings, titles) if k not in have and k not in stored]
        path = staging.fresh(sdir / "jira_referenced.jsonl")
        records = fetch_jira(settings, endpoint, as_of, keys=wanted) if wanted else iter(())
        n = write_staging(path, records)
    log.info("Jira: %d referenced tickets outside the project search and the warehouse; %d raw payloads",
             len(wanted), n)
    return {"referenced": len(wanted), "records": n}


# --- load, facts, evaluation ---------------------------------------------------------


def load_warehouse(settings: Settings, as_of: datetime, home: Path, *, chunk_records: int | None = None) -> dict:
    """Load every staging file of the run in one transaction (all or nothing), mark the run
    loaded in that same transaction, then publish the ingest state for the next fetch.  The
    staging files are streamed ``chunk_records`` records at a time (default: the store's), so the
    process's memory does not grow with the org (warehouse/store.py)."""
    from ccwatch.warehouse.ingest_state import compute_state, missing_basis
    from ccwatch.warehouse.kept_protection import (
        KeptProtectionMismatch,
        ProtectionAnswers,
        check_kept_protection,
    )
    from ccwatch.warehouse.raw_store import NotModifiedWithoutCopy
    from ccwatch.warehouse.settings_history import record_settings_history
    from ccwatch.warehouse.sightings import record_sightings
    from ccwatch.warehouse.state_anchor import anchor_problem, record_anchor
    from ccwatch.warehouse.store import load_records

    sdir = staging_dir(home, as_of)
    failed = staging.failed_ingest(home, as_of)
    if failed:
        raise StageError(f"{sdir}: the ingest of {as_of:%Y-%m-%d} failed ({'; '.join(failed)}): refusing to load")
    missing = [f for f in (*staging.JIRA_FILES, staging.JIRA_PLAN) if not (sdir / f).is_file()]
    gh_missing = staging.missing_github(settings, home, as_of)  # configured repositories only
    if gh_missing:
        missing.append(f"the GitHub staging of {'; '.join(gh_missing)}")
    if missing:
        raise StageError(f"{sdir}: staging incomplete, missing {', '.join(missing)}: refusing to load")
    gh_files, gh_meta = staging.staged_github(settings, home, as_of)
    metas = {"github": gh_meta, "jira": json.loads((sdir / staging.JIRA_PLAN).read_text(encoding="utf-8"))}

    answers = ProtectionAnswers()  # (stop 30) the protections the records answer, for check_kept_protection

    def records():  # streamed: one staging file after the other (read again by each pass of the load)
        yield from answers.note(staging.read_github(gh_files))
        for f in staging.JIRA_FILES:
            yield from read_staging(sdir / f)

    state: dict = {}

    def before_commit(c) -> None:
        check_kept_protection(c, settings, (gh_meta or {}).get("repos") or {}, answers.keys)
        record_failed_ingests(c, home)
        record_sightings(c, settings, as_of)  # (r2) the chains this load holds
        record_settings_history(c, settings, as_of)  # (r2) the settings in force tonight, appended
        mark_run(c, as_of, "loaded")
        state.update(compute_state(c, settings, as_of, prev, metas))
        record_anchor(c, state)  # (stop 30) what the next load checks the state file against

    con = connection.connect(warehouse_path(home))
    try:
        connection.set_memory_limit(con, connection.load_memory_limit())  # staged rows spill early: a flat peak
        prev = read_state(home, warehouse_path(home))
        gap = missing_basis(con, metas) or anchor_problem(con, metas, prev, state_path(home))
        if gap:
            drop_state(home)  # the next attempt fetches everything again
            mark_run(con, as_of, "failed", gap)
            raise StageError(f"{sdir}: {gap}; the ingest state was reset, rerun the date for a full fetch")
        try:
            counts = load_records(con, records, settings, before_commit=before_commit,
                                  **({"chunk_records": chunk_records} if chunk_records else {}))
        except Exception as exc:
            if isinstance(exc, (NotModifiedWithoutCopy, KeptProtectionMismatch)):  # a state this warehouse disowns
                drop_state(home)  # the next attempt fetches everything again
            mark_run(con, as_of, "failed", f"load failed: {type(exc).__name__}: {exc}"[:2000])
            raise
    finally:
        con.close()
    (sdir / staging.PENDING).unlink(missing_ok=True)
    write_state(home, state)
    log.info("Warehouse %s loaded: %s", warehouse_path(home), counts)
    return counts


def build_facts(settings: Settings, as_of: datetime, home: Path) -> dict:
    from ccwatch.controls.facts import build_facts as build

    con = open_loaded(home, as_of)
    try:
        return build(con, settings, as_of)
    finally:
        con.close()


def evaluate_controls(settings: Settings, as_of: datetime, home: Path) -> dict:
    from ccwatch.controls.evaluate import evaluate
    from ccwatch.controls.exceptions import apply_exceptions
    from ccwatch.controls.register import configured_register
    from ccwatch.warehouse.population import store_population
    from ccwatch.warehouse.reconciliation import store_reconciliation

    register = configured_register(settings)  # a malformed register fails here: nothing is touched yet
    excepted: dict = {}
    recon: list[dict] = []

    def before_commit(c) -> None:
        # the date's population (for auditor samples) and the register's verdicts, in the
        # transaction of its results: all of them or none
        store_population(c, as_of)
        recon[:] = store_reconciliation(c, settings, as_of)  # (r2) against the population just stored
        excepted.update(apply_exceptions(c, settings, as_of, register))

    con = open_loaded(home, as_of)
    try:
        result = evaluate(con, settings, as_of, before_commit=before_commit)
        # the GX results are complete under their final name before the run says 'evaluated', so
        # write_evidence never reads a half-written file or an earlier evaluation's results
        path = write_json_atomic(validation_path(home, as_of), result.gx_results)
        mark_run(con, as_of, "evaluated")
    finally:
        con.close()
    if register is not None:
        log.info("Exceptions register %s: %d entries, %d valid, %d invalid, %d failing rows excepted",
                 register.path, excepted["entries"], excepted["valid"], excepted["invalid"], excepted["applied"])
    mismatched = [r["repo"] for r in recon if not r["match"]]
    for r in recon:
        (log.error if not r["match"] else log.info)("Reconciliation %s (%s): %s", r["repo"], r["branch"], r["detail"])
    return {"rows": result.rows, "summary": result.summary, "gx_results": str(path), "exceptions": excepted,
            "reconciliation": {"status": "mismatch" if mismatched else "match", "mismatched": mismatched}}


# --- publish ---------------------------------------------------------------------------


def write_evidence(settings: Settings, as_of: datetime, home: Path, endpoints: dict[str, str], *,
                   signing_key=None, run_info: dict | None = None) -> dict:
    """Write the date's evidence folder and archive.  ``signing_key``: the Ed25519 private key of
    ``evidence.signing_conn_id`` (the Airflow glue resolves it; required when that key is set, never
    logged or stored); ``run_info``: dag_id, run_id, try_number as the orchestrator knows them."""
    from ccwatch.publish.evidence.write import write_evidence as write
    from ccwatch.publish.report.html import render_report

    gx_path = validation_path(home, as_of)
    if not gx_path.is_file():
        raise StageError(f"{gx_path} is missing: evaluate_controls did not complete for {as_of:%Y-%m-%d}")
    gx_results = json.loads(gx_path.read_text(encoding="utf-8"))
    con = open_loaded(home, as_of, need="evaluated")
    try:
        html = render_report(con, settings, as_of, gx_results, signing_key=signing_key)
        safe = {k: redact_url(v) for k, v in endpoints.items()}
        res = write(con, settings, as_of, Path(home), gx_results, html, safe, signing_key=signing_key,
                    run_info=run_info)
        mark_run(con, as_of, "archived", f"{res.archive}")
    finally:
        con.close()
    if res.numbered:
        log.warning("An archive for %s already existed; wrote the new numbered archive %s", as_of.date(), res.archive)
    log.info("Evidence %s: archive sha256 %s, manifest.json sha256 %s (%s); change folders: %d written, %d carried "
             "over from the previous date", as_of.date(), res.sha256, res.manifest_sha256,
             "signed" if res.signed else "unsigned", res.written, res.carried)
    return {"directory": str(res.directory), "archive": str(res.archive), "numbered": res.numbered,
            "files": res.files, "report": str(Path(res.directory) / "report.html"), "pruned": list(res.pruned),
            "sha256": res.sha256, "manifest_sha256": res.manifest_sha256, "signed": res.signed,
            "timestamped": res.timestamped, "written": res.written, "carried": res.carried}


def alert_slack(settings: Settings, as_of: datetime, home: Path, endpoint: Endpoint, report_location: str) -> dict:
    """Post the night's message: new failures and resolutions when there are any, else one line; either
    way it carries the archive's and the manifest's SHA-256 (CONTROLS.md r2: recorded outside the archive)."""
    from ccwatch.publish import results, slack
    from ccwatch.publish.evidence.ledger import latest_record

    con = open_loaded(home, as_of, need="evaluated")
    try:
        record = latest_record(con, as_of)
        if record is None:
            raise StageError(f"no evidence_archives record for {as_of:%Y-%m-%d}: write_evidence did not complete, "
                             "so there are no digests to post")
        message = slack.build_slack_message(con, settings, as_of, report_location, digests=record)
        if message is None:
            message = slack.build_digest_message(as_of, record, report_location,
                                                 reconciliation=results.reconciliation(con, as_of))
            news = False
        else:
            news = True
        slack.send_slack(endpoint, settings.slack.channel, message)
        slack.mark_alerted(con, as_of, message)
    finally:
        con.close()
    log.info("Slack: %s posted to %s", "alert" if news else "no new failures; digest line", settings.slack.channel)
    return {"sent": True}
