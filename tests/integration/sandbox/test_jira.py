"""The Jira side of the sandbox, driven only through the `jira` client library."""

from __future__ import annotations

import pytest
from ccwatch.sandbox import SandboxServer
from jira import JIRA, JIRAError

USER, TOKEN = "ccwatch@acme.example", "jira-test-token"


def scenario(deployment_type: str) -> dict:
    issues = {}
    for n in range(1, 121):
        issues[f"PAY-{n}"] = {
            "project": "PAY", "summary": f"change {n}", "issuetype": "Story", "status": "Done" if n % 2 else "In Progress",
            "priority": "Medium", "labels": ["emergency"] if n == 3 else [], "reporter": "carol@acme.example",
            "created": "2026-10-01T10:00:00Z", "updated": f"2026-11-{1 + n % 20:02d}T10:{n % 60:02d}:00Z",
            "fields": {"Business Justification": f"why {n}\n\nsecond paragraph", "Risk Assessment": None},
        }
    issues["OPS-1"] = {"project": "OPS", "summary": "ops", "issuetype": "Task", "status": "To Do",
                       "reporter": "dave@acme.example", "created": "2026-08-01T10:00:00Z", "updated": "2026-08-01T10:00:00Z"}
    issues["PAY-7"]["changelog"] = [
        {"id": str(50000 + i), "author": "alice@acme.example", "created": f"2026-10-{1 + i // 24:02d}T{i % 24:02d}:00:00Z",
         "items": [{"field": "status", "fromString": "In Review", "toString": "Approved"}] if i == 129 else
                  [{"field": "Business Justification", "fromString": None, "toString": f"v{i}"}]}
        for i in range(130)
    ]
    return {
        "meta": {"as_of": "2026-11-25T00:00:00Z"},
        "auth": {"jira_user": USER, "jira_token": TOKEN},
        "jira": {
            "deployment_type": deployment_type,
            "users": {"carol@acme.example": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Carol Dev", "name": "carol"},
                      "alice@acme.example": {"accountId": "5b10ac8d82e05b22cc7d4ef6", "displayName": "Alice Approver"},
                      "dave@acme.example": {"accountId": "5b10ac8d82e05b22cc7d4ef7", "displayName": "Dave", "email_visible": False}},
            "fields": [{"id": "customfield_10010", "name": "Business Justification", "type": "textarea"},
                       {"id": "customfield_10011", "name": "Risk Assessment", "type": "textarea"}],
            "statuses": {"To Do": "new", "In Progress": "indeterminate", "In Review": "indeterminate",
                         "Approved": "indeterminate", "Done": "done"},
            "issues": issues,
        },
    }


@pytest.fixture(scope="module")
def cloud():
    with SandboxServer(scenario("Cloud")) as srv:
        yield srv


@pytest.fixture(scope="module")
def server_dc():
    with SandboxServer(scenario("Server")) as srv:
        yield srv


def client(srv, version: str = "2", token: str = TOKEN) -> JIRA:
    return JIRA(server=srv.url, basic_auth=(USER, token), options={"rest_api_version": version}, max_retries=0)


def test_cloud_initialises_and_enhanced_search_pages_with_tokens(cloud):
    j = client(cloud)
    assert j.deploymentType == "Cloud" and j.server_info()["deploymentType"] == "Cloud"
    first = j.enhanced_search_issues("project = PAY ORDER BY key ASC", maxResults=50)
    assert [i.key for i in first][:3] == ["PAY-1", "PAY-2", "PAY-3"] and len(first) == 50
    assert first.nextPageToken
    raw = j.enhanced_search_issues("project = PAY ORDER BY key ASC", maxResults=50, json_result=True)
    assert raw["isLast"] is False and "total" not in raw
    everything = j.enhanced_search_issues("project in (PAY, OPS) ORDER BY key ASC", maxResults=0)
    assert len(everything) == 121 and len({i.key for i in everything}) == 121
    pages = [r for r in cloud.requests if r["path"] == "/rest/api/2/search/jql" and r["query"].get("jql", "").startswith("project in")]
    assert len(pages) == 2 and "nextPageToken" in pages[1]["query"]
    # search_issues on Cloud goes to the enhanced endpoint too
    assert {i.key for i in j.search_issues("key in (PAY-1, PAY-2)")} == {"PAY-1", "PAY-2"}


def test_cloud_legacy_search_is_gone(cloud):
    j = client(cloud)
    for version in ("2", "3"):
        with pytest.raises(JIRAError) as exc:
            j._session.get(f"{cloud.url}/rest/api/{version}/search", params={"jql": "project = PAY"})  # noqa: SLF001
        assert exc.value.status_code == 410
        assert "migrate to the /rest/api/3/search/jql API" in exc.value.text


def test_server_legacy_search_pages_with_start_at_and_total(server_dc):
    j = client(server_dc)
    assert j.deploymentType == "Server"
    page = j.search_issues("project = PAY ORDER BY key DESC", maxResults=10, startAt=5)
    assert page.total == 120 and page.startAt == 5 and [i.key for i in page][:2] == ["PAY-115", "PAY-114"]
    allpay = j.search_issues("project = PAY", maxResults=0)
    assert len(allpay) == 120
    starts = [r["query"].get("startAt") for r in server_dc.requests if r["path"] == "/rest/api/2/search"][-2:]
    assert starts == ["0", "100"]
    with pytest.raises(JIRAError) as exc:
        j._session.get(f"{server_dc.url}/rest/api/2/search/jql", params={"jql": "project = PAY"})  # noqa: SLF001
    assert exc.value.status_code == 404


@pytest.mark.parametrize("fixture", ["cloud", "server_dc"])
def test_missing_key_fails_strict_search_with_400(fixture, request):
    srv = request.getfixturevalue(fixture)
    j = client(srv)
    with pytest.raises(JIRAError) as exc:
        j.search_issues("key in (PAY-1, PAY-999)")
    assert exc.value.status_code == 400
    assert exc.value.text == "An issue with key 'PAY-999' does not exist for field 'key'."
    with pytest.raises(JIRAError) as proj:
        j.search_issues("project = NOPE")
    assert "The value 'NOPE' does not exist for the field 'project'." in proj.value.text


def test_server_validate_query_warn_drops_missing_keys(server_dc):
    j = client(server_dc)
    res = j.search_issues("key in (PAY-1, PAY-999)", validate_query="warn", json_result=True)
    assert [i["key"] for i in res["issues"]] == ["PAY-1"]
    assert res["warningMessages"] == ["An issue with key 'PAY-999' does not exist for field 'key'."]


def test_issue_changelog_expand_is_capped_newest_first_and_paged_endpoint_is_complete(cloud):
    j = client(cloud)
    issue = j.issue("PAY-7", expand="changelog")
    hist = issue.changelog.histories
    assert issue.changelog.total == 130 and len(hist) == 100
    assert hist[0].id == "50129" and hist[0].items[0].field == "status" and hist[0].items[0].toString == "Approved"
    assert hist[0].author.accountId == "5b10ac8d82e05b22cc7d4ef6"
    values, start = [], 0
    while True:
        page = j._get_json("issue/PAY-7/changelog", params={"startAt": start, "maxResults": 50})  # noqa: SLF001
        values += page["values"]
        if page["isLast"]:
            break
        start += page["maxResults"]
    assert len(values) == 130 and values[0]["id"] == "50000" and values[-1]["id"] == "50129"  # oldest first
    assert values[0]["items"][0]["fieldId"] == "customfield_10010" and values[0]["items"][0]["fieldtype"] == "custom"
    status_item = values[-1]["items"][0]
    assert status_item["fieldId"] == "status" and status_item["from"] and status_item["to"]
    with pytest.raises(JIRAError) as exc:
        j.issue("PAY-999")
    assert exc.value.status_code == 404


def test_fields_users_statuses_and_rich_text(cloud, server_dc):
    v2, v3 = client(cloud), client(cloud, version="3")
    fields = {f["id"]: f for f in v2.fields()}
    assert fields["customfield_10010"]["name"] == "Business Justification" and fields["customfield_10010"]["custom"] is True
    plain = v2.issue("PAY-1")
    assert plain.fields.customfield_10010 == "why 1\n\nsecond paragraph" and plain.fields.customfield_10011 is None
    assert plain.fields.status.name == "Done" and plain.fields.status.statusCategory.key == "done"
    assert v2.issue("PAY-2").fields.status.statusCategory.key == "indeterminate"
    assert plain.fields.reporter.accountId == "5b10ac8d82e05b22cc7d4ef5" and plain.fields.reporter.emailAddress == "carol@acme.example"
    assert not hasattr(v2.issue("OPS-1").fields.reporter, "emailAddress")  # privacy-hidden email
    rich = v3.issue("PAY-1").raw["fields"]["customfield_10010"]
    assert rich["type"] == "doc" and rich["version"] == 1
    assert [p["content"][0]["text"] for p in rich["content"]] == ["why 1", "second paragraph"]
    server_user = client(server_dc).issue("PAY-1").fields.reporter
    assert server_user.name == "carol" and server_user.key and not hasattr(server_user, "accountId")
    assert v2.myself()["emailAddress"] == USER


def test_jql_date_filters_and_order(cloud):
    j = client(cloud)
    recent = j.enhanced_search_issues('project in (PAY, OPS) AND updated >= "2026-11-20 10:00" ORDER BY updated DESC', maxResults=0)
    keys = [i.key for i in recent]
    assert keys and all(i.fields.updated >= "2026-11-20T10:00" for i in recent)
    updated = [i.fields.updated for i in recent]
    assert updated == sorted(updated, reverse=True)
    relative = j.enhanced_search_issues("project = OPS AND updated >= -90d", maxResults=0)
    assert [i.key for i in relative] == []  # OPS-1 was last updated 116 days before as_of
    assert [i.key for i in j.enhanced_search_issues("project = OPS AND updated >= -120d", maxResults=0)] == ["OPS-1"]
    with pytest.raises(JIRAError) as exc:
        j.enhanced_search_issues("assignee = currentUser()")
    assert exc.value.status_code == 400


def test_wrong_credentials_are_401_but_server_info_is_anonymous(cloud):
    j = client(cloud, token="wrong")  # serverInfo answers anonymously, like Jira
    assert j.deploymentType == "Cloud"
    with pytest.raises(JIRAError) as exc:
        j.myself()
    assert exc.value.status_code == 401
    assert "wrong" not in str(cloud.requests) and TOKEN not in str(cloud.requests)
