"""Run every stage of a nightly run in-process, in the DAG's order, against the API double.

Shared by the fault matrix, the hostile-data and the secrets tests: it stops at the first
failed task as Airflow would (the two fetch tasks run in parallel, so both are attempted).
GitHub is fetched by ``pipeline.ingest_github`` with ``github_workers`` threads: 1 by default,
so a fault that matches every repository is met in the first one only and the fault matrix
can bound the requests to it exactly (tests/integration/ingest/github/test_fanout.py covers the
concurrent pool).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from ccwatch import pipeline as p
from ccwatch.common.endpoints import Endpoint
from ccwatch.common.paths import warehouse_path
from ccwatch.demo_env import DEMO_AUTH
from ccwatch.sandbox import SandboxServer


@dataclass
class Run:
    failed_stage: str | None = None
    error: BaseException | None = None
    completed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    evidence: dict = field(default_factory=dict)  # write_evidence's summary (directory, archive, report)
    alert: dict | None = None  # alert_slack's summary


def endpoints(server: SandboxServer, tokens: dict | None = None) -> dict[str, Endpoint]:
    auth = {**DEMO_AUTH, **(tokens or {})}
    return {"github": Endpoint(server.url + "/api/v3", token=auth["github_token"]),
            "jira": Endpoint(server.url, login=auth["jira_user"], token=auth["jira_token"]),
            "slack": Endpoint(server.url + "/api/", token=auth["slack_token"])}


def run_pipeline(settings, server: SandboxServer, as_of, home: Path, tokens: dict | None = None,
                 until: str | None = None, github_workers: int | None = 1, signing_key=None,
                 run_info: dict | None = None) -> Run:
    """All stages for ``as_of`` (up to and without ``until``), in the DAG's order; stop at the first failed task.
    ``signing_key`` / ``run_info``: what the Airflow glue hands write_evidence."""
    ep = endpoints(server, tokens)
    run = Run()
    t0 = time.monotonic()
    evidence = run.evidence

    def fetch():
        errors = []
        gh = lambda: p.ingest_github(settings, ep["github"], as_of, home, max_workers=github_workers)  # noqa: E731
        for name, fn in (("ingest_github", gh),
                         ("ingest_jira", lambda: p.ingest_jira(settings, ep["jira"], as_of, home))):
            try:  # the two fetch tasks run in parallel: both are attempted
                fn()
            except Exception as exc:  # noqa: BLE001 - recorded, then the run stops
                errors.append((name, exc))
        if errors:
            run.failed_stage, run.error = errors[0]
            raise errors[0][1]

    steps = [
        ("ingest", fetch),
        ("resolve_tickets", lambda: p.resolve_tickets(settings, ep["jira"], as_of, home)),
        ("load_warehouse", lambda: p.load_warehouse(settings, as_of, home)),
        ("build_facts", lambda: p.build_facts(settings, as_of, home)),
        ("evaluate_controls", lambda: p.evaluate_controls(settings, as_of, home)),
        ("write_evidence", lambda: evidence.update(p.write_evidence(
            settings, as_of, home, {"github": ep["github"].base_url, "jira": ep["jira"].base_url},
            signing_key=signing_key, run_info=run_info))),
        ("alert_slack", lambda: setattr(run, "alert", p.alert_slack(settings, as_of, home, ep["slack"],
                                                                    evidence["report"]))),
    ]
    for name, fn in steps:
        if name == until:
            break
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - Airflow fails the task and runs nothing downstream
            if run.error is None:
                run.failed_stage, run.error = name, exc
            break
        run.completed.append(name)
    run.seconds = time.monotonic() - t0
    return run


def run_scenario_until(settings, scenario: dict, as_of, home: Path, until: str, fault_hook=None) -> None:
    """Run ``scenario`` through the double up to (and without) the stage ``until``; fail the test if a stage fails."""
    with SandboxServer(scenario) as server:
        if fault_hook:
            server.fault_hook = fault_hook
        run = run_pipeline(settings, server, as_of, home, until=until)
    assert run.error is None, f"{run.failed_stage}: {run.error}"


def query(home: Path, sql: str, params=None) -> list[tuple]:
    """Rows of a read-only query on the warehouse under ``home``."""
    con = duckdb.connect(str(warehouse_path(home)), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
