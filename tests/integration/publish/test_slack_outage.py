"""Slack down: the alert stage fails after bounded retries, the evidence already written stays
byte-identical, nothing is remembered as alerted, and the next attempt alerts again.

Drives ``pipeline.alert_slack`` (what the DAG task calls) through the real slack_sdk against the
API double with its fault modes (503, persistent 429, connection reset)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from ccwatch import pipeline
from ccwatch.common.endpoints import Endpoint
from ccwatch.common.paths import validation_path, warehouse_path
from ccwatch.publish import slack as notify
from ccwatch.publish.slack import SlackSendError
from ccwatch.sandbox import SandboxServer
from ccwatch.warehouse import connection
from ccwatch.warehouse.runs import mark_run

from tests.helpers import outputs_world as D
from tests.helpers.clock import record_waits

TOKEN = "xoxb-outage-SECRET-0123456789"
SCENARIO = {"meta": {"name": "slack outage", "as_of": "2026-11-25T00:00:00Z"}, "auth": {"slack_token": TOKEN},
            "slack": {"channels": {"compliance-alerts": "C0CCWATCH1"}}}
POST = "chat.postMessage"


def _home(tmp_path: Path) -> tuple[Path, dict]:
    """A home whose run of D.AS_OF is evaluated and archived, as before the alert_slack task."""
    home = tmp_path / "home"
    home.mkdir()
    con = connection.connect(warehouse_path(home))
    try:
        D.build(con)
        mark_run(con, D.AS_OF, "evaluated")
    finally:
        con.close()
    gx = validation_path(home, D.AS_OF)
    gx.parent.mkdir(parents=True)
    gx.write_text(json.dumps(D.gx_results()), encoding="utf-8")
    evidence = pipeline.write_evidence(D.settings(), D.AS_OF, home, {"github": "https://api.github.com"})
    return home, evidence


def _snapshot(home: Path) -> dict[str, str]:
    """sha256 of every file under evidence/ (the folder and the archives)."""
    base = home / "evidence"
    return {p.relative_to(base).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*")) if p.is_file()}


def _alerts(home: Path) -> int:
    con = connection.connect(warehouse_path(home), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM slack_alerts").fetchone()[0]
    finally:
        con.close()


def _failures(home: Path) -> int:
    con = connection.connect(warehouse_path(home), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM control_results WHERE status = 'fail' "
                           "AND CAST(as_of AS DATE) = ?", [D.AS_OF.date()]).fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("fault", [
    {"service": "slack", "path": POST, "mode": "status", "status": 503},
    {"service": "slack", "path": POST, "mode": "rate_limit", "retry_after": 0},  # persistent 429
], ids=["503", "persistent-429"])
def test_outage_fails_the_stage_keeps_evidence_and_alerts_next_time(tmp_path, fault):
    home, evidence = _home(tmp_path)
    before = _snapshot(home)
    assert any(k.endswith(".tar.gz") for k in before) and "2026-11-25/oscal-assessment-results.json" in before
    with SandboxServer(SCENARIO) as sb:
        endpoint = Endpoint(base_url=f"{sb.url}/api/", token=TOKEN)
        sb.add_fault(fault)
        with pytest.raises(SlackSendError) as exc:
            pipeline.alert_slack(D.settings(), D.AS_OF, home, endpoint, evidence["report"])
        posts = [r for r in sb.requests if r["path"] == f"/api/{POST}"]
        assert len(posts) == 1 + notify.MAX_RETRIES  # retried, and bounded
        assert {r["status"] for r in posts} == {fault.get("status", 429)}
        assert sb.slack_messages == []
        assert TOKEN not in str(exc.value) and "SECRET" not in str(exc.value)
        assert str(fault.get("status", 429)) in str(exc.value)

        # the outage changed nothing already written and remembered nothing
        assert _snapshot(home) == before
        assert _alerts(home) == 0

        # Slack is back: the next attempt (task retry or next night) alerts the same failures
        sb.clear_faults()
        sent = pipeline.alert_slack(D.settings(), D.AS_OF, home, endpoint, evidence["report"])
        assert sent == {"sent": True} and len(sb.slack_messages) == 1
    assert _alerts(home) == _failures(home) > 0
    assert _snapshot(home) == before


def test_connection_reset_is_retried_then_fails(tmp_path):
    home, evidence = _home(tmp_path)
    before = _snapshot(home)
    with SandboxServer(SCENARIO) as sb:
        sb.add_fault({"service": "slack", "path": POST, "mode": "reset"})
        with pytest.raises(SlackSendError):
            pipeline.alert_slack(D.settings(), D.AS_OF, home, Endpoint(base_url=f"{sb.url}/api/", token=TOKEN),
                                 evidence["report"])
        assert len([r for r in sb.requests if r["path"] == f"/api/{POST}"]) == 1 + notify.MAX_RETRIES
        assert sb.slack_messages == []
    assert _snapshot(home) == before and _alerts(home) == 0


def test_transient_5xx_is_delivered_once(tmp_path):
    home, evidence = _home(tmp_path)
    with SandboxServer(SCENARIO) as sb:
        sb.add_fault({"service": "slack", "path": POST, "mode": "status", "status": 502, "times": 1,
                      "body": "<html><body>502 Bad Gateway</body></html>"})
        sent = pipeline.alert_slack(D.settings(), D.AS_OF, home, Endpoint(base_url=f"{sb.url}/api/", token=TOKEN),
                                    evidence["report"])
        assert sent == {"sent": True}
        assert [r["status"] for r in sb.requests if r["path"] == f"/api/{POST}"] == [502, 200]
        assert len(sb.slack_messages) == 1
    assert _alerts(home) == _failures(home)


def test_a_long_retry_after_fails_at_once_instead_of_sleeping(tmp_path, monkeypatch):
    home, evidence = _home(tmp_path)
    with SandboxServer(SCENARIO) as sb:
        sb.add_fault({"service": "slack", "path": POST, "mode": "rate_limit",
                      "retry_after": notify.MAX_RETRY_AFTER + 3600})
        waits = record_waits(monkeypatch, 10.0)
        with pytest.raises(SlackSendError, match="ratelimited"):
            pipeline.alert_slack(D.settings(), D.AS_OF, home, Endpoint(base_url=f"{sb.url}/api/", token=TOKEN),
                                 evidence["report"])
        assert waits == []  # the hour-long Retry-After is not waited for
        assert len([r for r in sb.requests if r["path"] == f"/api/{POST}"]) == 1
    assert _alerts(home) == 0
