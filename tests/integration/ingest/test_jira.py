"""fetch_jira through the real `jira` client against the sandbox API double (Cloud and Server)."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.http.retry import RetryPolicy
from ccwatch.ingest.jira import fetch_jira
from ccwatch.sandbox import SandboxResponse, SandboxServer
from ccwatch.settings import load_settings
from ccwatch.warehouse.connection import connect
from ccwatch.warehouse.store import load_records

from tests.helpers.paths import CONFIG

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)  # 30-day window from 2026-10-26
USER, TOKEN = "ccwatch@acme.example", "jira-secret-789"


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def scenario(deployment_type):
    issues = {}
    for n in range(1, 121):  # more than one search page
        issues[f"PAY-{n}"] = {"project": "PAY", "summary": f"change {n}", "issuetype": "Story", "status": "Done",
                              "priority": "Medium", "labels": [], "reporter": "carol@acme.example",
                              "created": "2026-10-01T09:00:00Z", "updated": iso(datetime(2026, 11, 1, tzinfo=UTC)),
                              "fields": {"Business Justification": f"why {n}", "Rollback Plan": "revert"},
                              "changelog": []}
    long_history = [{"id": str(50000 + i), "author": "carol@acme.example",
                     "created": iso(datetime(2026, 10, 1, tzinfo=UTC) + timedelta(hours=i)),
                     "items": [{"field": "Testing Plan", "fromString": f"v{i}", "toString": f"v{i + 1}"}]}
                    for i in range(130)]
    long_history.append({"id": "60000", "author": "alice@acme.example", "created": "2026-11-10T10:00:00Z",
                         "items": [{"field": "status", "fromString": "In Review", "toString": "Approved"}]})
    issues["PAY-7"]["changelog"] = long_history
    issues["OPS-1"] = {"project": "OPS", "summary": "old", "issuetype": "Task", "status": "To Do",
                       "created": "2026-01-01T00:00:00Z", "updated": "2026-02-01T00:00:00Z", "fields": {}}
    return {
        "meta": {"name": "jira connector test", "as_of": "2026-11-25T00:00:00Z"},
        "auth": {"jira_user": USER, "jira_token": TOKEN},
        "jira": {
            "deployment_type": deployment_type, "projects": ["PAY", "WEB", "OPS"],
            "users": {"carol@acme.example": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Carol Dev"},
                      "alice@acme.example": {"accountId": "557058:alice", "displayName": "Alice",
                                             "email_visible": False}},
            "fields": [{"id": "customfield_10010", "name": "Business Justification", "type": "textarea"},
                       {"id": "customfield_10011", "name": "Risk Assessment", "type": "textarea"},
                       {"id": "customfield_10012", "name": "Testing Plan", "type": "textarea"},
                       {"id": "customfield_10013", "name": "Post-Mortem", "type": "textarea"},
                       {"id": "customfield_10014", "name": "Rollback Plan", "type": "textarea"}],
            "statuses": {"To Do": "new", "In Review": "indeterminate", "Approved": "indeterminate", "Done": "done"},
            "issues": issues,
        },
    }


@pytest.fixture(scope="module")
def settings():
    return replace(load_settings(str(CONFIG)), lookback_days=30)


@pytest.fixture(scope="module", params=["Cloud", "Server"])
def server(request):
    with SandboxServer(scenario(request.param)) as srv:
        srv.deployment_type = request.param
        yield srv


def endpoint(server, token=TOKEN):
    return Endpoint(server.url, login=USER, token=token)


def by_kind(records, kind):
    return {r.natural_key: r for r in records if r.kind == kind}


def test_window_search_pages_and_full_changelogs(server, settings):
    server.clear_recordings()
    records = list(fetch_jira(settings, endpoint(server), AS_OF))
    assert [r.kind for r in records[:3]] == ["server_info", "fields", "statuses"]
    assert {st["name"]: st["statusCategory"]["key"] for st in records[2].payload}["Approved"] == "indeterminate"
    assert records[0].payload["deploymentType"] == server.deployment_type
    issues = by_kind(records, "issue")
    assert len(issues) == 120 and "OPS-1" not in issues  # OPS-1 was last updated before the window
    assert issues["PAY-7"].payload["fields"]["customfield_10010"] is not None  # fields by id
    cl = by_kind(records, "changelog")["PAY-7"].payload
    assert len(cl) == 131 and cl[0]["id"] == "50000" and cl[-1]["items"][0]["toString"] == "Approved"
    searches = [q for q in server.requests if "search" in q["path"]]
    if server.deployment_type == "Cloud":
        assert {q["path"] for q in searches} == {"/rest/api/3/search/jql"}
        assert len(searches) == 2 and "nextPageToken" in searches[1]["query"]
    else:
        assert {q["path"] for q in searches} == {"/rest/api/2/search"}
        assert [q["query"]["startAt"] for q in searches] == ["0", "100"]
    jql = searches[0]["query"]["jql"]
    assert jql.startswith('project in ("PAY", "WEB", "OPS") AND updated >= "2026-10-25 00:00"')
    version = "3" if server.deployment_type == "Cloud" else "2"
    pages = [q for q in server.requests if q["path"] == f"/rest/api/{version}/issue/PAY-7/changelog"]
    assert [q["query"]["startAt"] for q in pages] == ["0", "100"]
    assert TOKEN not in json.dumps([asdict(r) for r in records])


def test_named_keys_drop_missing_ones_and_record_them(server, settings):
    server.clear_recordings()
    records = list(fetch_jira(settings, endpoint(server), AS_OF, keys=["PAY-3", "PAY-999", "OPS-1", "WEB-5"]))
    assert sorted(by_kind(records, "issue")) == ["OPS-1", "PAY-3"]
    missing = by_kind(records, "issue_missing")
    assert sorted(missing) == ["PAY-999", "WEB-5"] and missing["PAY-999"].status_code == 400
    assert "PAY-999" in json.dumps(missing["PAY-999"].payload)
    jqls = [q["query"].get("jql") for q in server.requests if "search" in q["path"]]
    assert jqls == ["key in (OPS-1, PAY-3, PAY-999, WEB-5) ORDER BY key ASC", "key in (OPS-1, PAY-3) ORDER BY key ASC"]


def test_records_load_with_fields_resolved_by_name(server, settings, tmp_path):
    records = list(fetch_jira(settings, endpoint(server), AS_OF, keys=["PAY-7", "PAY-404"]))
    con = connect(str(tmp_path / "wh.duckdb"))
    load_records(con, records, settings)
    row = con.execute("SELECT business_justification, required_fields, status_category FROM tickets "
                      "WHERE key = 'PAY-7'").fetchone()
    assert row[0] == "why 7" and json.loads(row[1]) == {"Rollback Plan": "revert"} and row[2] == "done"
    assert con.execute("""SELECT to_status, to_category, author FROM ticket_transitions""").fetchall() == [
        ("Approved", "indeterminate", "557058:alice" if server.deployment_type == "Cloud" else "alice")]
    assert con.execute("SELECT count(*) FROM ticket_field_changes WHERE key = 'PAY-7'").fetchone() == (130,)
    assert con.execute("SELECT ticket_exists FROM tickets WHERE key = 'PAY-404'").fetchone() == (False,)
    con.close()


def test_bad_credentials_raise_without_the_token(server, settings):
    with pytest.raises(SourceError) as err:
        list(fetch_jira(settings, endpoint(server, token="wrong-token-000"), AS_OF))
    assert "401" in str(err.value) and "PAY" in str(err.value) and "wrong-token-000" not in str(err.value)


def test_server_error_mid_fetch_raises(server, settings, monkeypatch):
    # 5xx answers are retried with backoff (connectors/resilience.py): keep the waits tiny here
    monkeypatch.setattr("ccwatch.ingest.jira.RETRY_POLICY", RetryPolicy(retries=2, backoff=0.01))

    def hook(service, req, resp):
        if service == "jira" and req.path.endswith("/PAY-7/changelog") and req.arg("startAt") == "100":
            return SandboxResponse(status=500, data={"errorMessages": ["Internal server error"], "errors": {}})
        return None

    server.fault_hook = hook
    try:
        with pytest.raises(SourceError, match=r"PAY-7/changelog.*HTTP 500: Internal server error"):
            list(fetch_jira(settings, endpoint(server), AS_OF))
    finally:
        server.fault_hook = None


def test_unknown_project_fails_loudly(server, settings):
    s = replace(settings, jira=replace(settings.jira, project_keys=("PAY", "NOPE")))
    with pytest.raises(SourceError, match=r"NOPE.*HTTP 400"):
        list(fetch_jira(s, endpoint(server), AS_OF))


def test_an_error_page_echoing_the_authorization_header_loses_the_credential(server, settings):
    # a proxy or Jira Server error page that prints the request headers back (seen on real 403 pages)
    def hook(service, req, resp):
        if service == "jira" and "search" in req.path:
            page = f"<html><body><h1>403 Forbidden</h1><pre>Authorization: {req.headers.get('Authorization')}\n" \
                   f"Host: jira</pre></body></html>"
            return SandboxResponse(status=403, raw=page.encode(), content_type="text/html")
        return None

    server.fault_hook = hook
    try:
        with pytest.raises(SourceError) as err:
            list(fetch_jira(settings, endpoint(server), AS_OF))
    finally:
        server.fault_hook = None
    basic = base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    text = str(err.value)
    assert "403" in text and "Authorization: Basic ***" in text
    assert basic not in text and TOKEN not in text
