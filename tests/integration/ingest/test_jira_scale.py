"""Jira at scale: embedded changelogs when provably complete, the rest paged concurrently (issue #7)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest import jira as jc
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.http.retry import RetryPolicy
from ccwatch.ingest.jira import embedded_histories, fetch_jira
from ccwatch.sandbox import SandboxResponse, SandboxServer
from ccwatch.settings import load_settings

from tests.helpers.paths import CONFIG

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)
USER, TOKEN = "ccwatch@acme.example", "jira-secret-789"
# histories per issue: Cloud's enhanced search embeds 40, Server's legacy search 100
LONG = {"PAY-3": 45, "PAY-5": 130, "PAY-8": 40, "PAY-9": 39, "PAY-11": 100, "PAY-12": 99}


def history(key: str, i: int) -> dict:
    n = int(key.split("-")[1])
    item = ({"field": "status", "fromString": "In Review", "toString": "Done"} if i % 7 == 6 else
            {"field": "Testing Plan", "fromString": f"v{i}", "toString": f"v{i + 1}"})
    return {"id": str(n * 1000 + i), "author": "carol@acme.example",
            "created": (datetime(2026, 10, 1, tzinfo=UTC) + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "items": [item]}


def scenario(deployment_type: str) -> dict:
    issues = {}
    for n in range(1, 141):  # two search pages; most issues have a short history, some none
        key = f"PAY-{n}"
        issues[key] = {"project": "PAY", "summary": f"change {n}", "issuetype": "Story", "status": "Done",
                       "reporter": "carol@acme.example", "created": "2026-10-01T09:00:00Z",
                       "updated": "2026-11-01T00:00:00Z", "fields": {"Business Justification": f"why {n}"},
                       "changelog": [history(key, i) for i in range(LONG.get(key, n % 4))]}
    return {
        "meta": {"name": "jira scale test", "as_of": "2026-11-25T00:00:00Z"},
        "auth": {"jira_user": USER, "jira_token": TOKEN},
        "jira": {"deployment_type": deployment_type, "projects": ["PAY", "WEB", "OPS"],
                 "users": {"carol@acme.example": {"accountId": "5b10ac8d82e05b22cc7d4ef5"}},
                 "fields": [{"id": "customfield_10010", "name": "Business Justification", "type": "textarea"},
                            {"id": "customfield_10011", "name": "Risk Assessment", "type": "textarea"},
                            {"id": "customfield_10012", "name": "Testing Plan", "type": "textarea"},
                            {"id": "customfield_10013", "name": "Post-Mortem", "type": "textarea"}],
                 "statuses": {"To Do": "new", "In Review": "indeterminate", "Done": "done"},
                 "issues": issues},
    }


@pytest.fixture(scope="module")
def settings():
    return replace(load_settings(str(CONFIG)), lookback_days=30)


@pytest.fixture(scope="module", params=["Cloud", "Server"])
def server(request):
    with SandboxServer(scenario(request.param)) as srv:
        srv.cloud = request.param == "Cloud"
        yield srv


def fetch(server, settings, **kw):
    server.clear_recordings()
    return list(fetch_jira(settings, Endpoint(server.url, login=USER, token=TOKEN), AS_OF, **kw))


def changelog_paths(server) -> list[str]:
    return sorted({q["path"].split("/")[-2] for q in server.requests if q["path"].endswith("/changelog")})


def snapshot(records) -> list[tuple]:
    return [(r.kind, r.natural_key, r.payload) for r in records]


def test_only_issues_whose_embedded_changelog_is_not_provably_complete_are_paged(server, settings):
    records = fetch(server, settings)
    cap = 40 if server.cloud else 100
    paged = sorted(k for k, n in LONG.items() if n >= cap)  # Cloud: PAY-3 (45), PAY-5, PAY-8 (40 = cap), PAY-11, PAY-12
    assert changelog_paths(server) == paged
    searches = [q for q in server.requests if "search" in q["path"]]
    assert len(searches) == 2 and all(q["query"]["expand"] == "changelog" for q in searches)
    # serverInfo, field, status; the client's own field lookup; 2 search pages; the pagings (PAY-5: 2 pages)
    assert len(server.requests) == 3 + 1 + 2 + len(paged) + 1
    logs = {r.natural_key: r for r in records if r.kind == "changelog"}
    assert len(logs) == 140 and [r.kind for r in records[3:7]] == ["issue", "changelog", "issue", "changelog"]
    version = "3" if server.cloud else "2"
    for key, rec in logs.items():
        want = [history(key, i)["id"] for i in range(LONG.get(key, int(key.split("-")[1]) % 4))]
        assert [h["id"] for h in rec.payload] == want, key  # every history, oldest first
        if key in paged:
            assert rec.url.endswith(f"/rest/api/{version}/issue/{key}/changelog")
        else:
            assert f"/rest/api/{version}/search" in rec.url and "expand=changelog" in rec.url
            assert rec.url.endswith(f"#{key}")
    # the 130-history issue pages twice (100 a page) on both deployments
    assert sum(q["path"].endswith("/PAY-5/changelog") for q in server.requests) == 2


def test_embedded_changelog_equals_the_paged_one(server, settings, monkeypatch):
    embedded = fetch(server, settings)
    monkeypatch.setattr(jc, "EMBED_CAP", {"cloud": 0, "server": 0})  # nothing provable: page every issue
    paged = fetch(server, settings)
    assert len(changelog_paths(server)) == 140
    assert snapshot(embedded) == snapshot(paged)


def test_concurrent_paging_gives_the_serial_records(server, settings, monkeypatch):
    monkeypatch.setattr(jc, "EMBED_CAP", {"cloud": 0, "server": 0})
    concurrent = fetch(server, settings)
    monkeypatch.setattr(jc, "CHANGELOG_WORKERS", 1)
    serial = fetch(server, settings)
    assert snapshot(concurrent) == snapshot(serial)
    assert [r.url for r in concurrent] == [r.url for r in serial]


def test_named_keys_use_the_embedded_changelog_too(server, settings):
    records = fetch(server, settings, keys=["PAY-2", "PAY-3", "PAY-404"])
    assert changelog_paths(server) == (["PAY-3"] if server.cloud else [])
    logs = {r.natural_key: r.payload for r in records if r.kind == "changelog"}
    assert [len(logs["PAY-2"]), len(logs["PAY-3"])] == [2, 45]
    assert [r.natural_key for r in records if r.kind == "issue_missing"] == ["PAY-404"]


def test_a_failed_paging_raises_naming_the_ticket_and_stops_the_queue(server, settings, monkeypatch):
    monkeypatch.setattr(jc, "RETRY_POLICY", RetryPolicy(retries=1, backoff=0.01))
    monkeypatch.setattr(jc, "EMBED_CAP", {"cloud": 0, "server": 0})
    monkeypatch.setattr(jc, "CHANGELOG_WORKERS", 2)

    def hook(service, req, resp):
        if service == "jira" and req.path.endswith("/PAY-1/changelog"):
            return SandboxResponse(status=500, data={"errorMessages": ["Internal server error"], "errors": {}})
        if service == "jira" and req.path.endswith("/changelog"):
            time.sleep(0.3)  # the other worker's paging is still in flight when PAY-1 fails
        return None

    server.clear_recordings()
    server.fault_hook = hook
    records = []
    try:
        with pytest.raises(SourceError, match=r"projects PAY.*issue/PAY-1/changelog.*HTTP 500") as err:
            for rec in fetch_jira(settings, Endpoint(server.url, login=USER, token=TOKEN), AS_OF):
                records.append(rec)
    finally:
        server.fault_hook = None
    assert TOKEN not in str(err.value)
    # as a serial fetch: PAY-1's issue record, then the failure (no changelog record)
    assert [(r.kind, r.natural_key) for r in records][3:] == [("issue", "PAY-1")]
    # PAY-1 tried twice; the other worker's one paging (PAY-2) was in flight; the queued 98 were not sent
    sent = [q["path"].split("/")[-2] for q in server.requests if q["path"].endswith("/changelog")]
    assert sorted(sent) == ["PAY-1", "PAY-1", "PAY-2"]


@pytest.mark.parametrize(("changelog", "complete"), [
    ({"startAt": 0, "maxResults": 2, "total": 2, "histories": [{"id": "1"}, {"id": "2"}]}, True),
    ({"startAt": 0, "maxResults": 0, "total": 0, "histories": []}, True),
    ({"startAt": 0, "maxResults": 2, "histories": [{"id": "1"}, {"id": "2"}]}, False),  # no total: unprovable
    ({"startAt": 0, "maxResults": 2, "total": 3, "histories": [{"id": "1"}, {"id": "2"}]}, False),
    ({"startAt": 1, "maxResults": 2, "total": 2, "histories": [{"id": "1"}, {"id": "2"}]}, False),
    ({"maxResults": 2, "total": 2, "histories": [{"id": "1"}, {"id": "2"}]}, False),
    ({"startAt": 0, "maxResults": 2, "total": "2", "histories": [{"id": "1"}, {"id": "2"}]}, False),
    ({"startAt": 0, "maxResults": 3, "total": 3, "histories": [{"id": str(i)} for i in range(3)]}, False),  # = cap
    ({"startAt": 0, "total": 1, "histories": [{"items": []}]}, False),  # a history without an id
    (None, False),
])
def test_embedded_histories_is_trusted_only_when_provably_complete(changelog, complete):
    issue = {"key": "PAY-1", "fields": {}} | ({"changelog": changelog} if changelog is not None else {})
    got = embedded_histories(issue, cap=3)
    assert (got is not None) == complete and (got is None or got == changelog["histories"])
