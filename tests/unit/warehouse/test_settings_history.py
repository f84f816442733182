"""The nightly settings history (migration 10) and the snapshot in force at a merge."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
from ccwatch.settings import load_settings
from ccwatch.warehouse import schema
from ccwatch.warehouse.settings_history import record_settings_history, settings_at

from tests.helpers.paths import CONFIG

REPO = "acme/payments-api"


def _raw(con, kind: str, key: str, payload, fetched: str, status: int = 200) -> None:
    con.execute("INSERT OR REPLACE INTO raw_payloads VALUES ('github', ?, ?, ?, ?, NULL, ?, ?)",
                [kind, key, f"https://api.github.com/repos/{key}", fetched, status, json.dumps(payload)])


def _night(con, settings, day: str, fetched: str, approvals: int) -> None:
    _raw(con, "branch_protection", f"{REPO}:main",
         {"required_pull_request_reviews": {"required_approving_review_count": approvals}}, fetched)
    _raw(con, "branch_rules", f"{REPO}:main", [{"type": "pull_request", "ruleset_id": 7}], fetched)
    _raw(con, "ruleset", f"{REPO}/rulesets/7", {"id": 7, "enforcement": "active"}, fetched)
    _raw(con, "environment", f"{REPO}:production", {"name": "production"}, fetched)
    record_settings_history(con, settings, datetime.fromisoformat(day))


def test_history_is_appended_and_the_snapshot_at_merge_is_the_latest_before_it():
    settings = load_settings(CONFIG)
    con = duckdb.connect()
    schema.migrate(con)
    _night(con, settings, "2026-11-01", "2026-11-01 02:00:00", 1)
    _night(con, settings, "2026-11-02", "2026-11-02 02:00:00", 2)
    first = con.execute("SELECT * FROM settings_history WHERE as_of = '2026-11-01' ORDER BY ALL").fetchall()
    assert {r[2] for r in first} >= {"branch_protection", "branch_rules", "ruleset", "environment"}
    # a rerun of 11-02 replaces 11-02 only; 11-01 is never touched
    _night(con, settings, "2026-11-02", "2026-11-02 03:00:00", 3)
    assert con.execute("SELECT * FROM settings_history WHERE as_of = '2026-11-01' ORDER BY ALL").fetchall() == first
    assert con.execute("SELECT count(DISTINCT as_of) FROM settings_history").fetchone()[0] == 2

    def approvals(doc):
        (rec,) = [r for r in doc["records"] if r["kind"] == "branch_protection"]
        return rec["payload"]["required_pull_request_reviews"]["required_approving_review_count"]

    at = settings_at(con, REPO, datetime(2026, 11, 1, 12))
    assert at["snapshot"]["run_as_of"].startswith("2026-11-01") and approvals(at) == 1
    at = settings_at(con, REPO, datetime(2026, 11, 2, 3))  # at the snapshot time: in force
    assert at["snapshot"]["run_as_of"].startswith("2026-11-02") and approvals(at) == 3
    before = settings_at(con, REPO, datetime(2026, 10, 30))
    assert before["snapshot"] is None and "records" not in before
    assert before["note"].startswith("no snapshot before the merge, earliest is 2026-11-01T02:00:00Z")
    assert settings_at(con, "acme/other", datetime(2026, 11, 5))["note"] == \
        "no settings snapshot is stored for this repository"
