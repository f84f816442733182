"""One function per stage of the nightly run; the DAG's task bodies call these and nothing else.

Every stage takes the run's as-of time (tz-aware UTC) and works under ``home``
(``CCWATCH_HOME``).  Stages hand over through files and the warehouse, never through
large XComs: each returns a small JSON-serialisable summary.

Ingestion is incremental (``ccwatch.ingest.plan``) and atomic for evaluation: a fetch stage
marks the date's staging folder pending (``_ingest_pending``) before it touches anything and
leaves ``<stage>.failed.json`` when it fails (GitHub: one marker per repository,
``ccwatch.ingest.github.fanout``); only a committed load clears the pending mark.
Evaluation, evidence and alerting refuse a date that is pending, failed, or not loaded
(``runs``), so they never read a half-written or failed ingest; the warehouse keeps the
previous complete state.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ccwatch.common.endpoints import Endpoint, redact_url
from ccwatch.ingest import plan as wm
from ccwatch.ingest.records import read_staging, staging_dir, utc_now_iso, write_staging
from ccwatch.settings import Settings
from ccwatch.warehouse import schema

log = logging.getLogger("ccwatch")

# GitHub stages one file + plan per repository under staging/<date>/github/ (ccwatch.ingest.github.fanout)
STAGING_FILES = ("jira.jsonl", "jira_referenced.jsonl")
PLAN_FILES = {"jira": "jira.plan.json"}
PENDING = "_ingest_pending"


class StageError(RuntimeError):
    """A stage cannot run because an earlier stage's output is missing or unusable."""


def parse_as_of(value: str | datetime) -> datetime:
    """The run's as-of time as an aware UTC datetime (a date alone means 00:00 UTC)."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip().replace("Z", "+00:00")
        dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    # A plain datetime, never Airflow's pendulum DateTime: pendulum drops the tzinfo of
    # a std-library timezone on arithmetic (as_of - timedelta became naive).
    return datetime(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond, tzinfo=UTC)


def warehouse_path(home: Path) -> Path:
    return Path(home) / "warehouse.duckdb"


def _evidence_date(as_of: datetime) -> str:
    return as_of.strftime("%Y-%m-%d")


# --- fetch -------------------------------------------------------------------------


def ingest_github(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, *, full: bool = False,
                  max_workers: int | None = None) -> dict:
    """Fetch every configured repository into ``staging/<date>/github/<owner>__<name>.jsonl``,
    ``max_workers`` (default ``github.concurrency``) at a time; incremental per repository when
    the ingest state allows it (``full=True`` forces the whole window)."""
    from ccwatch.ingest.github import fanout as github_ingest

    return github_ingest.ingest_github(settings, endpoint, as_of, home, full=full, max_workers=max_workers)


def github_repositories(settings: Settings, as_of: datetime, home: Path) -> list[str]:
    """The repositories the DAG maps ``ingest_github_repo`` over (prepares the date, see github_ingest)."""
    from ccwatch.ingest.github import fanout as github_ingest

    return github_ingest.github_repositories(settings, as_of, home)


def ingest_github_repo(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, repo: str, *,
                       full: bool = False, budget=None) -> dict:
    """Fetch ONE configured repository into its staging file (the mapped task's body)."""
    from ccwatch.ingest.github import fanout as github_ingest

    return github_ingest.ingest_github_repo(settings, endpoint, as_of, home, repo, full=full, budget=budget)


def ingest_jira(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, *, full: bool = False) -> dict:
    """Fetch the Jira projects into ``staging/<date>/jira.jsonl`` (incremental per project when possible)."""
    from ccwatch.ingest.jira import fetch_jira

    sdir = staging_dir(home, as_of)
    with _ingest_attempt(sdir, "ingest_jira", as_of):
        started = datetime.now(UTC)
        state = None if full else wm.read_state(home, warehouse_path(home))
        plan = wm.plan_jira(settings, state, as_of)
        path = _fresh(sdir / "jira.jsonl")
        wm.write_json_atomic(sdir / PLAN_FILES["jira"],
                             wm.jira_plan_meta(plan, as_of, started, state, settings.lookback_days))
        n = write_staging(path, fetch_jira(settings, endpoint, as_of, plan=plan))
    log.info("Jira: %d raw payloads from %s staged in %s", n, redact_url(endpoint.base_url), path)
    return {"records": n, "file": str(path), "modes": {p: m for ps, m, _ in plan.groups for p in ps}}


@contextmanager
def _ingest_attempt(sdir: Path, stage: str, as_of: datetime, *, marker: str | None = None) -> Iterator[None]:
    """Mark the date pending before anything is fetched; on failure leave ``<stage>.failed.json``
    (or ``marker``: a file name for a stage whose name is not one)."""
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / PENDING).touch()
    marker = sdir / (marker or f"{stage}.failed.json")
    marker.unlink(missing_ok=True)
    try:
        yield
    except BaseException as exc:
        # SourceError messages name the endpoint, never a token (ccwatch.ingest.source)
        wm.write_json_atomic(marker, {"stage": stage, "as_of": wm.iso(as_of), "failed_at": utc_now_iso(),
                                      "error": f"{type(exc).__name__}: {exc}"[:2000]})
        raise


def failed_ingest(home: Path, as_of: datetime) -> list[str]:
    """The fetch stages of the date whose last attempt failed (with their error)."""
    out = []
    for marker in sorted(staging_dir(home, as_of).glob("*.failed.json")):
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
            out.append(f"{info.get('stage')}: {info.get('error')}")
        except (OSError, ValueError):
            out.append(f"{marker.name}: unreadable failure marker")
    return out


def _fresh(path: Path) -> Path:
    """Remove an earlier run's staging file first, so a failed fetch can never leave it looking current."""
    path.unlink(missing_ok=True)
    return path


def referenced_ticket_keys(settings: Settings, titles: list[str]) -> list[str]:
    """The ticket each PR title links (CONTROLS.md, "Ticket"): first in-scope match only."""
    pattern = re.compile(settings.jira.ticket_key_pattern)
    projects = set(settings.jira.project_keys)
    keys = set()
    for title in titles:
        for m in pattern.finditer(title or ""):
            key = m.group(1) if pattern.groups else m.group(0)
            if key.split("-", 1)[0] in projects:
                keys.add(key)
                break
    return sorted(keys)


def resolve_tickets(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path) -> dict:
    """Fetch the tickets that PR titles name but the project search did not bring."""
    from ccwatch.ingest.github import fanout as github_ingest
    from ccwatch.ingest.jira import fetch_jira

    sdir = staging_dir(home, as_of)
    with _ingest_attempt(sdir, "resolve_tickets", as_of):
        jr, jplan = sdir / "jira.jsonl", sdir / PLAN_FILES["jira"]
        for p in (jr, jplan):
            if not p.is_file():
                raise StageError(f"{p} is missing: the ingest stage that writes it did not complete")
        gh, _ = github_ingest.staged_github(settings, home, as_of)
        titles = [(r.payload or {}).get("title") or "" for r in github_ingest.read_github(gh)
                  if r.kind in ("pull", "gql_pull") and isinstance(r.payload, (dict, type(None)))]
        have = {r.natural_key for r in read_staging(jr) if r.kind in ("issue", "issue_missing")}
        # tickets already in the warehouse: unchanged unless the project search brought them again
        stored = set(json.loads(jplan.read_text(encoding="utf-8")).get("known_keys") or [])
        wanted = [k for k in referenced_ticket_keys(settings, titles) if k not in have and k not in stored]
        path = _fresh(sdir / "jira_referenced.jsonl")
        records = fetch_jira(settings, endpoint, as_of, keys=wanted) if wanted else iter(())
        n = write_staging(path, records)
    log.info("Jira: %d referenced tickets outside the project search and the warehouse; %d raw payloads",
             len(wanted), n)
    return {"referenced": len(wanted), "records": n}


# --- load, facts, evaluation ---------------------------------------------------------


def load_warehouse(settings: Settings, as_of: datetime, home: Path) -> dict:
    """Load every staging file of the run in one transaction (all or nothing), mark the run
    loaded in that same transaction, then publish the ingest state for the next fetch."""
    from ccwatch.ingest.github import fanout as github_ingest
    from ccwatch.warehouse.store import NotModifiedWithoutCopy, load_records

    sdir = staging_dir(home, as_of)
    failed = failed_ingest(home, as_of)
    if failed:
        raise StageError(f"{sdir}: the ingest of {as_of:%Y-%m-%d} failed ({'; '.join(failed)}): refusing to load")
    missing = [f for f in (*STAGING_FILES, *PLAN_FILES.values()) if not (sdir / f).is_file()]
    gh_missing = github_ingest.missing_github(settings, home, as_of)  # configured repositories only
    if gh_missing:
        missing.append(f"the GitHub staging of {'; '.join(gh_missing)}")
    if missing:
        raise StageError(f"{sdir}: staging incomplete, missing {', '.join(missing)}: refusing to load")
    gh_files, gh_meta = github_ingest.staged_github(settings, home, as_of)
    metas = {"github": gh_meta,
             **{src: json.loads((sdir / f).read_text(encoding="utf-8")) for src, f in PLAN_FILES.items()}}

    def records():  # streamed: one staging file after the other
        yield from github_ingest.read_github(gh_files)
        for f in STAGING_FILES:
            yield from read_staging(sdir / f)

    state: dict = {}

    def before_commit(c) -> None:
        _record_failed_ingests(c, home)
        _mark_run(c, as_of, "loaded")
        state.update(wm.compute_state(c, settings, as_of, prev, metas))

    con = schema.connect(warehouse_path(home))
    try:
        prev = wm.read_state(home, warehouse_path(home))
        gap = wm.missing_basis(con, metas)
        if gap:
            wm.drop_state(home)  # the next attempt fetches everything again
            _mark_run(con, as_of, "failed", gap)
            raise StageError(f"{sdir}: {gap}; the ingest state was reset, rerun the date for a full fetch")
        try:
            counts = load_records(con, records(), settings, before_commit=before_commit)
        except Exception as exc:
            if isinstance(exc, NotModifiedWithoutCopy):  # ETags of a load this warehouse lacks
                wm.drop_state(home)  # the next attempt fetches everything again
            _mark_run(con, as_of, "failed", f"load failed: {type(exc).__name__}: {exc}"[:2000])
            raise
    finally:
        con.close()
    (sdir / PENDING).unlink(missing_ok=True)
    wm.write_state(home, state)
    log.info("Warehouse %s loaded: %s", warehouse_path(home), counts)
    return counts


def build_facts(settings: Settings, as_of: datetime, home: Path) -> dict:
    from ccwatch.warehouse.facts import build_facts as _build

    con = _open_loaded(home, as_of)
    try:
        return _build(con, settings, as_of)
    finally:
        con.close()


def evaluate_controls(settings: Settings, as_of: datetime, home: Path) -> dict:
    from ccwatch.controls.evaluate import evaluate
    from ccwatch.warehouse.population import store_population

    con = _open_loaded(home, as_of)
    try:
        # the date's population (for auditor samples) in the transaction of its results
        result = evaluate(con, settings, as_of, before_commit=lambda c: store_population(c, as_of))
        # the GX results are complete under their final name before the run says 'evaluated', so
        # write_evidence never reads a half-written file or an earlier evaluation's results
        path = validation_path(home, as_of)
        wm.write_json_atomic(path, result.gx_results)
        _mark_run(con, as_of, "evaluated")
    finally:
        con.close()
    return {"rows": result.rows, "summary": result.summary, "gx_results": str(path)}


def validation_path(home: Path, as_of: datetime) -> Path:
    return Path(home) / "validations" / f"{_evidence_date(as_of)}.json"


def write_evidence(settings: Settings, as_of: datetime, home: Path, endpoints: dict[str, str]) -> dict:
    from ccwatch.publish.evidence.write import write_evidence as _write
    from ccwatch.publish.report.html import render_report

    gx_path = validation_path(home, as_of)
    if not gx_path.is_file():
        raise StageError(f"{gx_path} is missing: evaluate_controls did not complete for {as_of:%Y-%m-%d}")
    gx_results = json.loads(gx_path.read_text(encoding="utf-8"))
    con = _open_loaded(home, as_of, need="evaluated")
    try:
        html = render_report(con, settings, as_of, gx_results)
        safe = {k: redact_url(v) for k, v in endpoints.items()}
        res = _write(con, settings, as_of, Path(home), gx_results, html, safe)
        _mark_run(con, as_of, "archived", f"{res.archive}")
    finally:
        con.close()
    if res.numbered:
        log.warning("An archive for %s already existed; wrote the new numbered archive %s", as_of.date(), res.archive)
    return {"directory": str(res.directory), "archive": str(res.archive), "numbered": res.numbered,
            "files": res.files, "report": str(Path(res.directory) / "report.html"), "pruned": list(res.pruned)}


def alert_slack(settings: Settings, as_of: datetime, home: Path, endpoint: Endpoint, report_location: str) -> dict:
    from ccwatch.publish import slack as notify

    con = _open_loaded(home, as_of, need="evaluated")
    try:
        message = notify.build_slack_message(con, settings, as_of, report_location)
        if message is None:
            log.info("Slack: no new failures and nothing resolved since the last alert; nothing sent")
            return {"sent": False}
        notify.send_slack(endpoint, settings.slack.channel, message)
        notify.mark_alerted(con, as_of, message)
    finally:
        con.close()
    log.info("Slack: alert posted to %s", settings.slack.channel)
    return {"sent": True}


def summary_table(home: Path, as_of: datetime) -> str:
    """Per-control counts of this date's results, as printed at the end of the demo."""
    con = schema.connect(warehouse_path(home), read_only=True)
    try:
        rows = con.execute(
            """
            SELECT control_id,
                   count(*) FILTER (WHERE status = 'pass'),
                   count(*) FILTER (WHERE status = 'fail'),
                   count(*) FILTER (WHERE status = 'pending'),
                   count(*) FILTER (WHERE status = 'not_applicable')
            FROM control_results WHERE CAST(as_of AS DATE) = ?
            GROUP BY control_id ORDER BY control_id
            """,
            [as_of.date()],
        ).fetchall()
    finally:
        con.close()
    lines = [f"{'control':<10} {'pass':>6} {'fail':>6} {'pending':>8} {'n/a':>6}"]
    for cid, p, f, pe, na in sorted(rows, key=lambda r: int(r[0].rsplit("-", 1)[1])):
        lines.append(f"{cid:<10} {p:>6} {f:>6} {pe:>8} {na:>6}")
    return "\n".join(lines)


# --- bookkeeping ----------------------------------------------------------------------

_STAGES = ("loaded", "evaluated", "archived")


def _mark_run(con, as_of: datetime, stage: str, detail: str | None = None) -> None:
    ts = as_of.replace(tzinfo=None)
    # one statement: a process killed here leaves the previous row or the new one, never none
    # (a missing row of the state's basis would make the next incremental load refuse)
    con.execute(
        "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)",
        [ts, stage, None, datetime.now(UTC).replace(tzinfo=None), detail],
    )


def _record_failed_ingests(con, home: Path) -> None:
    """Bring fetch failures (marker files: fetch stages never write DuckDB) into ``runs``."""
    for marker in sorted((Path(home) / "staging").glob("*/*.failed.json")):
        try:
            as_of = parse_as_of(json.loads(marker.read_text(encoding="utf-8"))["as_of"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        row = con.execute("SELECT stage FROM runs WHERE as_of = ?", [as_of.replace(tzinfo=None)]).fetchone()
        if not row or row[0] != "failed":
            _mark_run(con, as_of, "failed", "; ".join(failed_ingest(home, as_of))[:2000])


def _open_loaded(home: Path, as_of: datetime, need: str = "loaded"):
    path = warehouse_path(home)
    if not path.is_file():
        raise StageError(f"{path} does not exist: load_warehouse has not run for {as_of:%Y-%m-%d}")
    failed = failed_ingest(home, as_of)
    if failed:
        con = schema.connect(path)
        try:
            _mark_run(con, as_of, "failed", "; ".join(failed)[:2000])
        finally:
            con.close()
        raise StageError(f"the ingest of {as_of:%Y-%m-%d} failed ({'; '.join(failed)}): the run is marked failed")
    if (staging_dir(home, as_of) / PENDING).exists():
        raise StageError(f"an ingest of {as_of:%Y-%m-%d} started and was not loaded: refusing to read the warehouse")
    con = schema.connect(path)
    row = con.execute("SELECT stage FROM runs WHERE as_of = ?", [as_of.replace(tzinfo=None)]).fetchone()
    stage = row[0] if row else None
    if stage not in _STAGES or _STAGES.index(stage) < _STAGES.index(need):
        con.close()
        got = stage or "nothing"
        raise StageError(f"{path}: the run of {as_of:%Y-%m-%d} is at '{got}', stage needs '{need}'")
    return con
