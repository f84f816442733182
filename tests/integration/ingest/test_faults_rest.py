"""The connectors under the API double's fault modes, through the real PyGithub and jira clients:
GitHub's REST endpoints (protection, rules, the commits and deployments
listings, environments) and Jira.  tests/integration/ingest/test_faults_graphql.py proves the same
on GitHub's GraphQL batches (PRs, commit links, deployment statuses).

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

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.jira import fetch_jira

from tests.helpers import github_faults
from tests.helpers.github_faults import (
    AS_OF,
    FAST,
    GH_TOKEN,
    JIRA_TOKEN,
    JIRA_USER,
    REPO,
    A,
    B,
    C,
    github,
    jira,
    kinds,
    statuses,
)

settings, server, waits = github_faults.settings, github_faults.server, github_faults.waits  # shared fixtures


@pytest.fixture(autouse=True)
def fast_jira(monkeypatch):
    monkeypatch.setattr("ccwatch.ingest.jira.RETRY_POLICY", FAST)
    monkeypatch.setattr("ccwatch.ingest.jira.TIMEOUT_SECONDS", 0.5)
    # every changelog paged one at a time (the faults target /changelog; a search embeds short ones)
    monkeypatch.setattr("ccwatch.ingest.jira.EMBED_CAP", {"cloud": 0, "server": 0})
    monkeypatch.setattr("ccwatch.ingest.jira.CHANGELOG_WORKERS", 1)


# --- GitHub: survived ------------------------------------------------------------------


def test_primary_rate_limit_waits_for_the_reset_then_continues(server, settings, waits):
    server.add_fault({"service": "github", "path": rf"{REPO}/commits$", "mode": "rate_limit", "reset_in": 1,
                      "times": 1})
    records = github(server, settings)
    assert statuses(server, rf"{REPO}/commits$") == [403, 200]
    assert [c["sha"] for c in kinds(records, "commits")[f"{REPO}:main"]] == [C, B, A]
    assert len(waits) == 1 and 1.0 <= waits[0] <= 3.0, waits  # until X-RateLimit-Reset (+1 s), not a backoff


def test_secondary_limit_honours_retry_after(server, settings, waits):
    server.add_fault({"service": "github", "path": r"/deployments$", "mode": "secondary_limit", "retry_after": 1,
                      "times": 1})
    records = github(server, settings)
    assert statuses(server, r"/deployments$") == [403, 200]
    assert [d["id"] for d in kinds(records, "deployments")[f"{REPO}:production"]] == [31]
    assert waits == [1.0]  # Retry-After honoured, exactly


def test_502_then_success(server, settings, waits):
    server.add_fault({"service": "github", "path": rf"{REPO}/branches/main/protection$", "mode": "status",
                      "status": 502, "times": 2})
    records = github(server, settings)
    assert statuses(server, rf"{REPO}/branches/main/protection$") == [502, 502, 200]
    assert kinds(records, "branch_protection")[f"{REPO}:main"]["required_pull_request_reviews"]
    assert len(waits) == 2 and all(w <= FAST.backoff_max for w in waits), waits  # two short backoffs


def test_timeout_then_success(server, settings, monkeypatch, waits):
    monkeypatch.setattr("ccwatch.ingest.github.client.TIMEOUT_SECONDS", 1)  # PyGithub: whole seconds
    server.add_fault({"service": "github", "path": r"/branches/main/protection$", "mode": "slow", "seconds": 1.5,
                      "times": 1})
    records = github(server, settings)
    assert kinds(records, "branch_protection")[f"{REPO}:main"]["required_pull_request_reviews"]
    for _ in range(60):  # the double records the slow answer once it is written, after the client gave up on it
        if len(statuses(server, r"/branches/main/protection$")) == 2:
            break
        time.sleep(0.05)
    assert statuses(server, r"/branches/main/protection$") == [200, 200]  # the first answer came too late: asked again
    assert len(waits) == 1 and waits[0] <= FAST.backoff_max, waits  # one timed-out try, a short backoff


def test_connection_reset_then_success(server, settings):
    server.add_fault({"service": "github", "path": rf"/repos/{REPO}/branches/main/protection$", "mode": "reset",
                      "times": 2})
    records = github(server, settings)
    assert statuses(server, rf"/repos/{REPO}/branches/main/protection$") == [0, 0, 200]
    assert kinds(records, "branch_protection")[f"{REPO}:main"]["required_pull_request_reviews"]


def test_duplicate_page_items_are_deduplicated_by_natural_key(server, settings, monkeypatch):
    monkeypatch.setattr("ccwatch.ingest.github.client.PER_PAGE", 2)
    clean = kinds(github(server, settings), "commits")[f"{REPO}:main"]
    server.add_fault({"service": "github", "path": r"/commits$", "mode": "duplicate_page"})
    records = github(server, settings)
    assert len(statuses(server, r"/commits$")) > 2, "the listing has more than one page"
    assert [c["sha"] for c in kinds(records, "commits")[f"{REPO}:main"]] == [c["sha"] for c in clean] == [C, B, A]


# --- GitHub: fails loudly --------------------------------------------------------------


def test_rate_limit_beyond_the_budget_fails_at_once(server, settings, waits):
    server.add_fault({"service": "github", "path": rf"{REPO}/commits$", "mode": "rate_limit", "reset_in": 3600})
    with pytest.raises(SourceError) as err:
        github(server, settings)
    msg = str(err.value)
    assert REPO in msg and f"/repos/{REPO}/commits" in msg and "rate limit" in msg and "resets at" in msg
    assert statuses(server, rf"{REPO}/commits$") == [403] and waits == []  # the hour-long wait is never started
    server.clear_faults()
    server.add_fault({"service": "github", "path": r"/deployments$", "mode": "secondary_limit", "retry_after": 60})
    with pytest.raises(SourceError, match=r"acme/pay.*/deployments.*rate limit.*retry after 60s"):
        github(server, settings)
    assert waits == []  # a Retry-After beyond the budget: failed at once, nothing waited for


def test_secondary_limit_without_retry_after_is_bounded_in_count(server, settings, waits):
    # no Retry-After and quota left: only the body says "secondary rate limit"; wait, retry, give up
    server.add_fault({"service": "github", "path": r"/branches/main/protection$", "mode": "secondary_limit",
                      "retry_after": None})
    with pytest.raises(SourceError, match=r"protection: rate limit exceeded.*secondary rate limit"):
        github(server, settings)
    assert statuses(server, r"/protection$") == [403] * 4  # 1 + 3 retries; never stored as "unreadable"
    assert waits == [FAST.secondary_wait] * 3, waits  # three waits of secondary_wait, no backoff of its own


def test_persistent_5xx_timeout_and_reset_raise_after_bounded_retries(server, settings, monkeypatch, waits):
    server.add_fault({"service": "github", "path": rf"{REPO}/branches/main/protection$", "mode": "status",
                      "status": 503})
    with pytest.raises(SourceError,
                       match=r"acme/pay: GET .*/branches/main/protection answered HTTP 503.*after the retries"):
        github(server, settings)
    assert statuses(server, rf"{REPO}/branches/main/protection$") == [503] * 4
    assert len(waits) == 3 and all(w <= FAST.backoff_max for w in waits), waits  # short backoffs, then loud
    del waits[:]
    server.clear_faults()
    monkeypatch.setattr("ccwatch.ingest.github.client.TIMEOUT_SECONDS", 1)
    server.add_fault({"service": "github", "path": r"/environments/production$", "mode": "slow", "seconds": 1.2})
    with pytest.raises(SourceError, match=r"acme/pay: GET .*/environments/production failed.*(?i:timed out)"):
        github(server, settings, policy=replace(FAST, retries=1))
    # two tries, each given up at the 1 s timeout (a 1.2 s answer), one short backoff between them
    assert len(waits) == 1 and waits[0] <= FAST.backoff_max, waits
    server.clear_faults()
    server.clear_recordings()
    server.add_fault({"service": "github", "path": r"/deployments$", "mode": "reset"})
    with pytest.raises(SourceError, match=r"acme/pay: GET .*/deployments.*failed.*after the retries"):
        github(server, settings)
    assert statuses(server, r"/deployments$") == [0] * 4


def test_truncated_and_invalid_json_raise(server, settings):
    server.add_fault({"service": "github", "path": rf"{REPO}/branches/main/protection$", "mode": "truncated_json"})
    with pytest.raises(SourceError, match=r"acme/pay: GET .*/branches/main/protection: HTTP 200, body is not JSON"):
        github(server, settings)
    server.clear_faults()
    server.add_fault({"service": "github", "path": r"/rules/branches/main$", "mode": "invalid_json"})
    with pytest.raises(SourceError, match=r"rules/branches/main.*not JSON"):
        github(server, settings)


def test_link_loop_raises(server, settings):
    server.add_fault({"service": "github", "path": r"/commits$", "mode": "link_loop"})
    with pytest.raises(SourceError, match=r"acme/pay: GET .*/commits.*paging loop"):
        github(server, settings)
    assert len(statuses(server, r"/commits$")) == 1


@pytest.mark.parametrize(("status", "body", "said"), [
    (403, {"message": "Resource not accessible by personal access token"}, "HTTP 403"),
    # GitHub's GraphQL answer for a repository the token cannot see (or that does not exist)
    (200, {"data": {"repository": None}, "errors": [
        {"type": "NOT_FOUND", "path": ["repository"], "locations": [{"line": 4, "column": 3}],
         "message": f"Could not resolve to a Repository with the name '{REPO}'."}]}, "does not exist or the token cannot see it"),
])
def test_repository_without_access_is_a_configuration_error(server, settings, status, body, said):
    """The first request of a repository's fetch is its settings (GraphQL ``CcwatchRepository`` since
    stop 29; the pipeline asks them org-wide, tests/integration/pipeline/test_fault_matrix.py)."""
    server.add_fault({"service": "github", "path": r"/graphql$", "graphql": {"operationName": "CcwatchRepository"},
                      "mode": "status", "status": status, "body": body})
    with pytest.raises(SourceError) as err:
        github(server, settings)
    msg = str(err.value)
    assert REPO in msg and said in msg and "token" in msg and "Metadata: read" in msg and "'repo' scope" in msg
    asked = [q for q in server.requests if (q.get("graphql") or {}).get("operationName") == "CcwatchRepository"]
    assert len(asked) == 1  # not retried, never an empty repository
    assert not [q for q in server.requests if q["service"] == "github" and "/repos/" in q["path"]]  # nothing after it


def test_403_on_a_data_endpoint_names_the_permission_and_401_the_token(server, settings):
    server.add_fault({"service": "github", "path": rf"{REPO}/deployments$", "mode": "status", "status": 403,
                      "body": {"message": "Resource not accessible by personal access token"}})
    with pytest.raises(SourceError, match=r"lacks access to acme/pay: it needs the 'Deployments: read'"):
        github(server, settings)
    with pytest.raises(SourceError) as err:
        github(server, settings, token="ghp_wrong_token_77")
    assert REPO in str(err.value) and "HTTP 401" in str(err.value) and "token is invalid" in str(err.value)
    assert "ghp_wrong_token_77" not in str(err.value)


def test_tokens_never_reach_logs_errors_or_records(server, settings, caplog):
    caplog.set_level(logging.DEBUG)
    server.add_fault({"service": "github", "path": rf"{REPO}/branches/main/protection$", "mode": "status",
                      "status": 502, "times": 1})
    server.add_fault({"service": "github", "path": r"/commits$", "mode": "reset", "times": 1})
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


def test_jira_429_then_success(server, settings, waits):
    server.add_fault({"service": "jira", "path": r"/search$", "mode": "rate_limit", "retry_after": 1, "times": 1})
    records = jira(server, settings)
    assert statuses(server, r"/search$") == [429, 200]
    assert set(kinds(records, "issue")) == {"PAY-1", "PAY-2", "PAY-3"}
    assert waits == [1.0]  # Retry-After honoured, exactly


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


def test_jira_short_burst_timeout_and_broken_json(server, settings, waits):
    server.add_fault({"service": "jira", "path": r"/search$", "mode": "status", "status": 502, "times": 2})
    server.add_fault({"service": "jira", "path": r"/serverInfo$", "mode": "slow", "seconds": 0.8, "times": 1})
    server.add_fault({"service": "jira", "path": r"/field$", "mode": "reset", "times": 1})
    records = jira(server, settings)
    assert statuses(server, r"/search$") == [502, 502, 200] and len(kinds(records, "issue")) == 3
    assert len(waits) == 4 and all(w <= FAST.backoff_max for w in waits), waits  # 2 x 502, a timeout, a reset
    server.clear_faults()
    server.add_fault({"service": "jira", "path": r"/PAY-2/changelog$", "mode": "truncated_json"})
    with pytest.raises(SourceError, match=r"projects PAY: GET .*PAY-2/changelog failed \(the answer is not JSON"):
        jira(server, settings)


def test_jira_401_is_not_retried(server, settings):
    with pytest.raises(SourceError, match=r"HTTP 401.*login or API token"):
        list(fetch_jira(settings, Endpoint(server.url, login=JIRA_USER, token="wrong"), AS_OF))
    assert statuses(server, r"/field$") == [401]  # serverInfo is anonymous; the first 401 ends the run
