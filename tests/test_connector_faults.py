"""The connectors under the API double's fault modes, through the real PyGithub and jira clients.

Each fault either is survived (bounded, jittered retries; Retry-After and rate-limit resets
honoured) or fails loudly with a SourceError that names the repository/project and the
endpoint.  Retry counts come from ``server.requests``; the retry policy is shrunk so that
every test finishes in a few seconds (the waits that are asserted are the real ones).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest.github.rest import fetch_github
from ccwatch.ingest.http.retry import RetryPolicy, github_retry
from ccwatch.ingest.jira import fetch_jira
from ccwatch.ingest.source import SourceError
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import RepoConfig, load_settings
from ccwatch.warehouse.schema import connect
from ccwatch.warehouse.store import load_records

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)
GH_TOKEN, JIRA_USER, JIRA_TOKEN = "ghp_fault_secret_42", "bot@acme.example", "jira-fault-secret-42"
REPO = "acme/pay"
A, B, C = "a" * 40, "b" * 40, "c" * 40
FAST = RetryPolicy(retries=3, max_wait=5.0, backoff=0.05, backoff_max=0.2, secondary_wait=0.2)


def scenario() -> dict:
    def pull(n, sha, merged):
        return {"number": n, "title": f"PAY-{n} change", "user": "carol-dev", "state": "closed", "base": "main",
                "head_ref": f"f/{n}", "head_sha": sha, "created_at": "2026-11-01T00:00:00Z",
                "closed_at": merged, "merged_at": merged, "merged_by": "bob-rev", "merge_commit_sha": C,
                "labels": ["change"]}

    reviews = [{"id": 800 + i, "user": "bob-rev", "state": "COMMENTED", "commit_id": A,
                "submitted_at": f"2026-11-01T1{i}:00:00Z"} for i in range(4)]
    reviews.append({"id": 809, "user": "eve", "state": "APPROVED", "commit_id": A, "submitted_at": "2026-11-01T15:00:00Z"})
    return {
        "meta": {"as_of": "2026-11-25T00:00:00Z"},
        "auth": {"github_token": GH_TOKEN, "jira_user": JIRA_USER, "jira_token": JIRA_TOKEN},
        "github": {"repos": {REPO: {
            "id": 7, "default_branch": "main", "private": True, "branches": {"main": {"protected": True}},
            "protection": {"main": {"required_pull_request_reviews": {"required_approving_review_count": 1}}},
            "commits": [{"sha": A, "parents": [], "author": "carol-dev", "committer": "web-flow",
                         "date": "2026-11-01T10:00:00Z", "message": "feat"},
                        {"sha": B, "parents": [A], "author": "carol-dev", "committer": "web-flow",
                         "date": "2026-11-02T10:00:00Z", "message": "fix"},
                        {"sha": C, "parents": [B], "author": "bob-rev", "committer": "web-flow",
                         "date": "2026-11-03T10:00:00Z", "message": "Merge pull request #1"}],
            "pulls": [pull(1, A, "2026-11-03T10:00:00Z"), pull(2, B, "2026-11-04T10:00:00Z")],
            "reviews": {"1": reviews, "2": [{"id": 900, "user": "bob-rev", "state": "SOME_FUTURE_STATE",
                                             "commit_id": B, "submitted_at": "2026-11-02T11:00:00Z"}]},
            "check_runs": {A: [{"id": 1, "name": "test", "status": "completed", "conclusion": "startup_failure",
                                "started_at": "2026-11-01T10:00:00Z", "completed_at": "2026-11-01T10:01:00Z",
                                "app": "github-actions"}]},
            "deployments": [{"id": 31, "sha": C, "ref": "main", "environment": "production", "creator": "ops-dave",
                             "created_at": "2026-11-03T11:00:00Z",
                             "statuses": [{"id": 41, "state": "success", "creator": "ops-dave",
                                           "created_at": "2026-11-03T11:05:00Z"}]}],
        }}},
        "jira": {"deployment_type": "Server", "statuses": {"Done": "done"},
                 "issues": {f"PAY-{n}": {"project": "PAY", "summary": f"s{n}", "issuetype": "Story", "status": "Done",
                                         "created": "2026-11-01T00:00:00Z", "updated": "2026-11-10T00:00:00Z",
                                         "changelog": [{"id": str(100 + n), "author": JIRA_USER,
                                                        "created": "2026-11-02T00:00:00Z",
                                                        "items": [{"field": "status", "fromString": "To Do",
                                                                   "toString": "Done"}]}]}
                            for n in range(1, 4)}},
    }


@pytest.fixture(scope="module")
def settings():
    base = load_settings("include/config/ccwatch.yaml")
    return replace(base, lookback_days=30,
                   github=replace(base.github, repositories=(RepoConfig(REPO, "main", ("production",)),)),
                   jira=replace(base.jira, project_keys=("PAY",)))


@pytest.fixture()
def server():
    with SandboxServer(scenario()) as srv:
        yield srv


@pytest.fixture()
def rest(monkeypatch):
    """The REST crawl (github_graphql.ENABLED = False, the fallback): the faults below are on REST
    endpoints it requests per PR; tests/test_connector_faults_graphql.py proves the same on GraphQL."""
    monkeypatch.setattr("ccwatch.ingest.github.graphql.ENABLED", False)


@pytest.fixture(autouse=True)
def fast_jira(monkeypatch):
    monkeypatch.setattr("ccwatch.ingest.jira.RETRY_POLICY", FAST)
    monkeypatch.setattr("ccwatch.ingest.jira.TIMEOUT_SECONDS", 0.5)
    # every changelog paged one at a time (the faults target /changelog; a search embeds short ones)
    monkeypatch.setattr("ccwatch.ingest.jira.EMBED_CAP", {"cloud": 0, "server": 0})
    monkeypatch.setattr("ccwatch.ingest.jira.CHANGELOG_WORKERS", 1)


def github(server, settings, token=GH_TOKEN, policy=FAST):
    return list(fetch_github(settings, Endpoint(server.url, token=token), AS_OF, retry=github_retry(policy)))


def jira(server, settings):
    return list(fetch_jira(settings, Endpoint(server.url, login=JIRA_USER, token=JIRA_TOKEN), AS_OF))


def statuses(server, pattern):
    import re

    return [q["status"] for q in server.requests if re.search(pattern, q["path"])]


def kinds(records, kind):
    return {r.natural_key: r.payload for r in records if r.kind == kind}


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    out = fn(*args, **kw)
    return out, time.monotonic() - t0


# --- GitHub: survived ------------------------------------------------------------------


def test_primary_rate_limit_waits_for_the_reset_then_continues(rest, server, settings):
    server.add_fault({"service": "github", "path": rf"{REPO}/pulls$", "mode": "rate_limit", "reset_in": 1, "times": 1})
    records, took = timed(github, server, settings)
    assert statuses(server, rf"{REPO}/pulls$") == [403, 200]
    assert set(kinds(records, "pull")) == {f"{REPO}#1", f"{REPO}#2"}
    assert 1.0 <= took < 4.0  # waited until X-RateLimit-Reset (+1 s), not a blind backoff


def test_secondary_limit_honours_retry_after(rest, server, settings):
    server.add_fault({"service": "github", "path": r"/pulls/1/reviews$", "mode": "secondary_limit", "retry_after": 1,
                      "times": 1})
    records, took = timed(github, server, settings)
    assert statuses(server, r"/pulls/1/reviews$") == [403, 200]
    assert len(kinds(records, "reviews")[f"{REPO}#1"]) == 5
    assert 1.0 <= took < 3.0


def test_502_then_success(rest, server, settings):
    server.add_fault({"service": "github", "path": r"/pulls/1$", "mode": "status", "status": 502, "times": 2})
    records, took = timed(github, server, settings)
    assert statuses(server, r"/pulls/1$") == [502, 502, 200]
    assert kinds(records, "pull")[f"{REPO}#1"]["number"] == 1 and took < 2.0


def test_timeout_then_success(server, settings, monkeypatch):
    monkeypatch.setattr("ccwatch.ingest.github.rest.TIMEOUT_SECONDS", 1)  # PyGithub: whole seconds
    server.add_fault({"service": "github", "path": r"/branches/main$", "mode": "slow", "seconds": 1.5, "times": 1})
    records, took = timed(github, server, settings)
    assert kinds(records, "branch")[f"{REPO}:main"]["name"] == "main"
    assert 1.0 <= took < 3.0  # one timed-out try, then the answer


def test_connection_reset_then_success(server, settings):
    server.add_fault({"service": "github", "path": rf"/repos/{REPO}$", "mode": "reset", "times": 2})
    records = github(server, settings)
    assert statuses(server, rf"/repos/{REPO}$") == [0, 0, 200] and kinds(records, "repo")[REPO]["id"] == 7


def test_duplicate_page_items_are_deduplicated_by_natural_key(rest, server, settings, monkeypatch):
    monkeypatch.setattr("ccwatch.ingest.github.rest.PER_PAGE", 2)
    clean = kinds(github(server, settings), "reviews")[f"{REPO}#1"]
    server.add_fault({"service": "github", "path": r"/pulls/1/reviews$", "mode": "duplicate_page",
                      "query": {"page": "2"}})
    server.add_fault({"service": "github", "path": r"/commits$", "mode": "duplicate_page"})
    records = github(server, settings)
    assert [r["id"] for r in kinds(records, "reviews")[f"{REPO}#1"]] == [r["id"] for r in clean] == [
        800, 801, 802, 803, 809]
    assert [c["sha"] for c in kinds(records, "commits")[f"{REPO}:main"]] == [C, B, A]


# --- GitHub: fails loudly --------------------------------------------------------------


def test_rate_limit_beyond_the_budget_fails_at_once(rest, server, settings):
    server.add_fault({"service": "github", "path": rf"{REPO}/pulls$", "mode": "rate_limit", "reset_in": 3600})
    with pytest.raises(SourceError) as err:
        timed(github, server, settings)
    msg = str(err.value)
    assert REPO in msg and f"/repos/{REPO}/pulls" in msg and "rate limit" in msg and "resets at" in msg
    assert statuses(server, rf"{REPO}/pulls$") == [403]  # the hour-long wait is never started
    server.clear_faults()
    server.add_fault({"service": "github", "path": r"/pulls/1/reviews$", "mode": "secondary_limit", "retry_after": 60})
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"acme/pay.*pulls/1/reviews.*rate limit.*retry after 60s"):
        github(server, settings)
    assert time.monotonic() - t0 < 1.0


def test_secondary_limit_without_retry_after_is_bounded_in_count(server, settings):
    # no Retry-After and quota left: only the body says "secondary rate limit"; wait, retry, give up
    server.add_fault({"service": "github", "path": r"/branches/main/protection$", "mode": "secondary_limit",
                      "retry_after": None})
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"protection: rate limit exceeded.*secondary rate limit"):
        github(server, settings)
    assert statuses(server, r"/protection$") == [403] * 4  # 1 + 3 retries; never stored as "unreadable"
    assert 0.6 <= time.monotonic() - t0 < 2.0  # three waits of secondary_wait (0.2 s)


def test_persistent_5xx_timeout_and_reset_raise_after_bounded_retries(rest, server, settings, monkeypatch):
    server.add_fault({"service": "github", "path": r"/pulls/2$", "mode": "status", "status": 503})
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"acme/pay: GET .*/pulls/2 answered HTTP 503.*after the retries"):
        github(server, settings)
    assert statuses(server, r"/pulls/2$") == [503] * 4 and time.monotonic() - t0 < 2.0
    server.clear_faults()
    monkeypatch.setattr("ccwatch.ingest.github.rest.TIMEOUT_SECONDS", 1)
    server.add_fault({"service": "github", "path": r"/environments/production$", "mode": "slow", "seconds": 1.2})
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"acme/pay: GET .*/environments/production failed.*(?i:timed out)"):
        github(server, settings, policy=replace(FAST, retries=1))
    assert 2.0 <= time.monotonic() - t0 < 4.0  # two tries of one second each
    server.clear_faults()
    server.clear_recordings()
    server.add_fault({"service": "github", "path": r"/deployments$", "mode": "reset"})
    with pytest.raises(SourceError, match=r"acme/pay: GET .*/deployments.*failed.*after the retries"):
        github(server, settings)
    assert statuses(server, r"/deployments$") == [0] * 4


def test_truncated_and_invalid_json_raise(rest, server, settings):
    server.add_fault({"service": "github", "path": r"/pulls/1$", "mode": "truncated_json"})
    with pytest.raises(SourceError, match=r"acme/pay: GET .*/pulls/1: HTTP 200, body is not JSON"):
        github(server, settings)
    server.clear_faults()
    server.add_fault({"service": "github", "path": r"/check-runs$", "mode": "invalid_json"})
    with pytest.raises(SourceError, match=r"check-runs.*not JSON"):
        github(server, settings)


def test_link_loop_raises(rest, server, settings):
    server.add_fault({"service": "github", "path": r"/pulls/1/reviews$", "mode": "link_loop"})
    with pytest.raises(SourceError, match=r"acme/pay: GET .*/pulls/1/reviews.*paging loop"):
        github(server, settings)
    assert len(statuses(server, r"/pulls/1/reviews$")) == 1


@pytest.mark.parametrize(("status", "body", "needs"), [
    (403, {"message": "Resource not accessible by personal access token"}, "Metadata: read"),
    (404, {"message": "Not Found"}, "Metadata: read"),
])
def test_repository_without_access_is_a_configuration_error(server, settings, status, body, needs):
    server.add_fault({"service": "github", "path": rf"/repos/{REPO}$", "mode": "status", "status": status,
                      "body": body})
    with pytest.raises(SourceError) as err:
        github(server, settings)
    msg = str(err.value)
    assert REPO in msg and f"HTTP {status}" in msg and "token" in msg and needs in msg and "'repo' scope" in msg
    assert statuses(server, rf"/repos/{REPO}$") == [status]  # not retried, never an empty repository


def test_403_on_a_data_endpoint_names_the_permission_and_401_the_token(rest, server, settings):
    server.add_fault({"service": "github", "path": rf"{REPO}/pulls$", "mode": "status", "status": 403,
                      "body": {"message": "Resource not accessible by personal access token"}})
    with pytest.raises(SourceError, match=r"lacks access to acme/pay: it needs the 'Pull requests: read'"):
        github(server, settings)
    with pytest.raises(SourceError) as err:
        github(server, settings, token="ghp_wrong_token_77")
    assert REPO in str(err.value) and "HTTP 401" in str(err.value) and "token is invalid" in str(err.value)
    assert "ghp_wrong_token_77" not in str(err.value)


def test_deleted_users_unknown_values_and_missing_fields_load_as_nulls(rest, server, settings, tmp_path):
    server.add_fault({"service": "github", "path": r"/pulls/1$", "mode": "drop_field", "field": "user", "to": "null"})
    server.add_fault({"service": "github", "path": r"/pulls/1$", "mode": "drop_field", "field": "merged_by",
                      "to": "ghost"})
    server.add_fault({"service": "github", "path": r"/pulls/2$", "mode": "drop_field", "field": "labels"})
    server.add_fault({"service": "github", "path": r"/pulls/1/reviews$", "mode": "drop_field", "field": "user",
                      "to": "ghost"})
    server.add_fault({"service": "github", "path": r"/deployments$", "mode": "drop_field", "field": "creator",
                      "to": "null"})
    records = github(server, settings)
    assert kinds(records, "pull")[f"{REPO}#1"]["merged_by"]["login"] == "ghost"  # raw: stored as GitHub sent it
    con = connect(str(tmp_path / "wh.duckdb"))
    load_records(con, records, settings)
    assert con.execute("SELECT number, author_login, author_type, merged_by_login, labels FROM pull_requests "
                       "ORDER BY number").fetchall() == [(1, None, None, None, ["change"]),
                                                         (2, "carol-dev", "User", "bob-rev", [])]
    assert con.execute("SELECT DISTINCT reviewer_login FROM reviews WHERE pr_number = 1").fetchall() == [(None,)]
    assert con.execute("SELECT state FROM reviews WHERE pr_number = 2").fetchall() == [("SOME_FUTURE_STATE",)]
    assert con.execute("SELECT conclusion FROM checks").fetchall() == [("startup_failure",)]
    assert con.execute("SELECT creator_login FROM deployments").fetchall() == [(None,)]
    con.close()


def test_tokens_never_reach_logs_errors_or_records(server, settings, caplog):
    caplog.set_level(logging.DEBUG)
    server.add_fault({"service": "github", "path": r"/pulls/1$", "mode": "status", "status": 502, "times": 1})
    server.add_fault({"service": "github", "path": r"/reviews$", "mode": "reset", "times": 1})
    server.add_fault({"service": "jira", "path": r"/search$", "mode": "rate_limit", "retry_after": 0, "times": 1})
    records = github(server, settings) + jira(server, settings)
    server.add_fault({"service": "jira", "path": r"/field$", "mode": "status", "status": 500})
    with pytest.raises(SourceError) as err:
        jira(server, settings)
    blob = json.dumps([asdict(r) for r in records]) + caplog.text + str(err.value) + json.dumps(server.requests)
    for secret in (GH_TOKEN, JIRA_TOKEN):
        assert secret not in blob
    assert "Retry" in caplog.text  # the retries were logged, without credentials


# --- Jira ------------------------------------------------------------------------------


def test_jira_429_then_success(server, settings):
    server.add_fault({"service": "jira", "path": r"/search$", "mode": "rate_limit", "retry_after": 1, "times": 1})
    records, took = timed(jira, server, settings)
    assert statuses(server, r"/search$") == [429, 200]
    assert set(kinds(records, "issue")) == {"PAY-1", "PAY-2", "PAY-3"}
    assert 1.0 <= took < 3.0  # Retry-After honoured


def test_jira_500_burst_raises_naming_the_project(server, settings):
    server.add_fault({"service": "jira", "path": r"/changelog$", "mode": "status", "status": 500})
    records = []
    with pytest.raises(SourceError) as err:
        for rec in fetch_jira(settings, Endpoint(server.url, login=JIRA_USER, token=JIRA_TOKEN), AS_OF):
            records.append(rec)
    msg = str(err.value)
    assert "projects PAY" in msg and "PAY-1/changelog" in msg and "HTTP 500" in msg and "after the retries" in msg
    assert statuses(server, r"/changelog$") == [500] * 4  # 1 + 3 retries, then loud
    assert not [r for r in records if r.kind == "changelog"]


def test_jira_short_burst_timeout_and_broken_json(server, settings):
    server.add_fault({"service": "jira", "path": r"/search$", "mode": "status", "status": 502, "times": 2})
    server.add_fault({"service": "jira", "path": r"/serverInfo$", "mode": "slow", "seconds": 0.8, "times": 1})
    server.add_fault({"service": "jira", "path": r"/field$", "mode": "reset", "times": 1})
    records, took = timed(jira, server, settings)
    assert statuses(server, r"/search$") == [502, 502, 200] and len(kinds(records, "issue")) == 3
    assert took < 3.0
    server.clear_faults()
    server.add_fault({"service": "jira", "path": r"/PAY-2/changelog$", "mode": "truncated_json"})
    with pytest.raises(SourceError, match=r"projects PAY: GET .*PAY-2/changelog failed \(the answer is not JSON"):
        jira(server, settings)


def test_jira_401_is_not_retried(server, settings):
    with pytest.raises(SourceError, match=r"HTTP 401.*login or API token"):
        list(fetch_jira(settings, Endpoint(server.url, login=JIRA_USER, token="wrong"), AS_OF))
    assert statuses(server, r"/field$") == [401]  # serverInfo is anonymous; the first 401 ends the run
