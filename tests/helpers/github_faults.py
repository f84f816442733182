"""The shared world of the connector fault tests (tests/integration/ingest/test_faults_*.py): one
repository with two merged PRs and a Jira project of three tickets in the API double, the
``settings``, ``server`` and ``waits`` fixtures, a fast retry policy and the fetch helpers.

The fixtures are shared by assignment (``settings, server, waits = github_faults.settings,
github_faults.server, github_faults.waits``), which pytest collects as the module's own fixtures.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest.http.retry import RetryPolicy, github_retry
from ccwatch.ingest.jira import fetch_jira
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import RepoConfig, load_settings

from tests.helpers.clock import record_waits
from tests.helpers.github_fetch import fetch_github
from tests.helpers.paths import CONFIG

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
            "reviews": {"1": reviews, "2": [{"id": 900, "user": "bob-rev", "state": "COMMENTED",
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
    base = load_settings(str(CONFIG))
    return replace(base, lookback_days=30,
                   github=replace(base.github, repositories=(RepoConfig(REPO, "main", ("production",)),)),
                   jira=replace(base.jira, project_keys=("PAY",)))


@pytest.fixture()
def server():
    with SandboxServer(scenario()) as srv:
        yield srv


def github(server, settings, token=GH_TOKEN, policy=FAST):
    return list(fetch_github(settings, Endpoint(server.url, token=token), AS_OF, retry=github_retry(policy)))


def jira(server, settings):
    return list(fetch_jira(settings, Endpoint(server.url, login=JIRA_USER, token=JIRA_TOKEN), AS_OF))


def statuses(server, pattern):
    return [q["status"] for q in server.requests if re.search(pattern, q["path"])]


def kinds(records, kind):
    return {r.natural_key: r.payload for r in records if r.kind == kind}


@pytest.fixture()
def waits(monkeypatch):
    """Every retry wait of the test, in seconds (recorded, never timed with the wall clock)."""
    return record_waits(monkeypatch, FAST.max_wait)
