"""The faults of tests/integration/ingest/test_faults_rest.py on GitHub's GraphQL batches.

PRs, their reviews, head checks and statuses come from ``CcwatchMergedPulls`` (one POST per 50
PRs), commit->PR links from ``CcwatchBranchHistory``: a fault on those answers must be survived
or fail loudly exactly as on the REST endpoints (test_faults_rest.py).  The double's faults
select the GraphQL operation with ``graphql: {"operationName": ...}``; field faults walk the
answer's ``nodes`` lists (``nodes[number=1]`` picks one PR).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, replace

import pytest
from ccwatch.ingest.errors import SourceError
from ccwatch.warehouse.connection import connect
from ccwatch.warehouse.store import load_records

from tests.helpers import github_faults
from tests.helpers.github_faults import (
    FAST,
    GH_TOKEN,
    REPO,
    github,
    jira,
    kinds,
)

settings, server, waits = github_faults.settings, github_faults.server, github_faults.waits  # shared fixtures

PULLS_OP, HISTORY_OP = "CcwatchMergedPulls", "CcwatchBranchHistory"
NODES = "data.repository.pullRequests.nodes"


@pytest.fixture(autouse=True)
def fast_jira(monkeypatch):
    monkeypatch.setattr("ccwatch.ingest.jira.RETRY_POLICY", FAST)
    monkeypatch.setattr("ccwatch.ingest.jira.TIMEOUT_SECONDS", 0.5)


def G(op: str, mode: str, **kw) -> dict:
    return {"service": "github", "path": r"/graphql$", "graphql": {"operationName": op}, "mode": mode, **kw}


def gql_statuses(server, op: str) -> list[int]:
    return [q["status"] for q in server.requests if (q.get("graphql") or {}).get("operationName") == op]


def test_primary_rate_limit_waits_for_the_reset_then_continues(server, settings, waits):
    server.add_fault(G(PULLS_OP, "rate_limit", reset_in=1, times=1))
    records = github(server, settings)
    assert gql_statuses(server, PULLS_OP) == [403, 200]
    assert set(kinds(records, "gql_pull")) == {f"{REPO}#1", f"{REPO}#2"}
    assert len(waits) == 1 and 1.0 <= waits[0] <= 3.0, waits  # until X-RateLimit-Reset (+1 s), not a backoff


def test_secondary_limit_honours_retry_after(server, settings, waits):
    server.add_fault(G(PULLS_OP, "secondary_limit", retry_after=1, times=1))
    records = github(server, settings)
    assert gql_statuses(server, PULLS_OP) == [403, 200]
    assert len(kinds(records, "gql_pull")[f"{REPO}#1"]["reviews"]["nodes"]) == 5
    assert waits == [1.0]  # Retry-After honoured, exactly


def test_502_then_success(server, settings, waits):
    server.add_fault(G(PULLS_OP, "status", status=502, times=2))
    records = github(server, settings)
    assert gql_statuses(server, PULLS_OP) == [502, 502, 200]  # a POST of a read-only query is retried
    assert kinds(records, "gql_pull")[f"{REPO}#1"]["number"] == 1
    assert len(waits) == 2 and all(w <= FAST.backoff_max for w in waits), waits  # two short backoffs


def test_duplicate_nodes_are_deduplicated_by_natural_key(server, settings):
    clean = kinds(github(server, settings), "gql_pull")
    server.clear_recordings()
    server.add_fault(G(PULLS_OP, "duplicate_page"))
    server.add_fault({"service": "github", "path": r"/commits$", "mode": "duplicate_page"})
    records = github(server, settings)
    pulls = [r for r in records if r.kind == "gql_pull"]
    assert sorted(r.natural_key for r in pulls) == [f"{REPO}#1", f"{REPO}#2"]  # each PR once
    assert [r["fullDatabaseId"] for r in kinds(records, "gql_pull")[f"{REPO}#1"]["reviews"]["nodes"]] == [
        r["fullDatabaseId"] for r in clean[f"{REPO}#1"]["reviews"]["nodes"]] == ["800", "801", "802", "803", "809"]
    assert [c["sha"] for c in kinds(records, "commits")[f"{REPO}:main"]] == ["c" * 40, "b" * 40, "a" * 40]


def test_rate_limit_beyond_the_budget_fails_at_once(server, settings, waits):
    server.add_fault(G(PULLS_OP, "rate_limit", reset_in=3600))
    with pytest.raises(SourceError) as err:
        github(server, settings)
    msg = str(err.value)
    assert REPO in msg and f"graphql ({PULLS_OP})" in msg and "rate limit" in msg and "resets at" in msg
    assert gql_statuses(server, PULLS_OP) == [403] and waits == []  # the hour-long wait is never started
    server.clear_faults()
    server.add_fault(G(HISTORY_OP, "secondary_limit", retry_after=60))
    with pytest.raises(SourceError, match=rf"acme/pay.*graphql \({HISTORY_OP}\).*rate limit.*retry after 60s"):
        github(server, settings)
    assert waits == []  # a Retry-After beyond the budget: failed at once, nothing waited for


def test_persistent_5xx_raises_after_bounded_retries(server, settings, waits):
    server.add_fault(G(PULLS_OP, "status", status=503))
    with pytest.raises(SourceError, match=rf"acme/pay: POST .*graphql \({PULLS_OP}\) answered HTTP 503.*after the "
                                          r"retries"):
        github(server, settings)
    assert gql_statuses(server, PULLS_OP) == [503] * 4
    assert len(waits) == 3 and all(w <= FAST.backoff_max for w in waits), waits  # short backoffs, then loud
    server.clear_faults()
    server.clear_recordings()
    server.add_fault(G(HISTORY_OP, "reset"))
    with pytest.raises(SourceError, match=rf"acme/pay: POST .*graphql \({HISTORY_OP}\) failed.*after the retries"):
        github(server, settings)
    assert gql_statuses(server, HISTORY_OP) == [0] * 4


def test_truncated_and_invalid_json_raise(server, settings):
    server.add_fault(G(PULLS_OP, "truncated_json"))
    with pytest.raises(SourceError, match=rf"acme/pay: POST .*graphql \({PULLS_OP}\): HTTP 200, body is not JSON"):
        github(server, settings)
    server.clear_faults()
    server.add_fault(G(HISTORY_OP, "invalid_json"))
    with pytest.raises(SourceError, match=rf"{HISTORY_OP}.*not JSON"):
        github(server, settings)


def test_cursor_loop_raises(server, settings, monkeypatch):
    monkeypatch.setattr("ccwatch.ingest.github.graphql.PULLS_PAGE", 1)  # two PRs: a second page is asked
    server.add_fault(G(PULLS_OP, "link_loop"))
    with pytest.raises(SourceError, match=rf"acme/pay: POST .*graphql \({PULLS_OP}\).*paging loop"):
        github(server, settings)
    assert len(gql_statuses(server, PULLS_OP)) == 2  # the page asked again with the same cursor: stop


def test_403_names_the_permission(server, settings):
    server.add_fault(G(PULLS_OP, "status", status=403,
                       body={"message": "Resource not accessible by personal access token"}))
    with pytest.raises(SourceError, match=r"lacks access to acme/pay: it needs the 'Pull requests: read'"):
        github(server, settings)
    assert gql_statuses(server, PULLS_OP) == [403]  # not a rate limit: not retried


def test_deleted_users_unknown_values_and_missing_fields_load_as_nulls(server, settings, tmp_path):
    server.add_fault(G(PULLS_OP, "drop_field", field=f"{NODES}[number=1].author", to="null"))
    server.add_fault(G(PULLS_OP, "drop_field", field=f"{NODES}[number=1].mergedBy", to="ghost"))
    server.add_fault(G(PULLS_OP, "drop_field", field=f"{NODES}[number=2].labels"))
    server.add_fault(G(PULLS_OP, "drop_field", field=f"{NODES}[number=1].reviews.nodes.author", to="ghost"))
    server.add_fault({"service": "github", "path": r"/deployments$", "mode": "drop_field", "field": "creator",
                      "to": "null"})
    # an enum value GitHub added after the schema the double serves (the double itself cannot serve it)
    server.add_fault(G(PULLS_OP, "drop_field", field=f"{NODES}[number=2].reviews.nodes.state", to="value",
                       value="SOME_FUTURE_STATE"))
    records = github(server, settings)
    assert kinds(records, "gql_pull")[f"{REPO}#1"]["mergedBy"]["login"] == "ghost"  # raw: stored as sent
    # a missing connection is never read as empty: #2's labels come from its REST pull
    assert set(kinds(records, "pull")) == {f"{REPO}#2"}
    con = connect(str(tmp_path / "wh.duckdb"))
    load_records(con, records, settings)
    assert con.execute("SELECT number, author_login, author_type, merged_by_login, labels FROM pull_requests "
                       "ORDER BY number").fetchall() == [(1, None, None, None, ["change"]),
                                                         (2, "carol-dev", "User", "bob-rev", ["change"])]
    assert con.execute("SELECT DISTINCT reviewer_login FROM reviews WHERE pr_number = 1").fetchall() == [(None,)]
    assert con.execute("SELECT state FROM reviews WHERE pr_number = 2").fetchall() == [("SOME_FUTURE_STATE",)]
    assert con.execute("SELECT conclusion FROM checks").fetchall() == [("startup_failure",)]
    assert con.execute("SELECT creator_login FROM deployments").fetchall() == [(None,)]
    con.close()


def test_merged_pull_without_merged_at_is_staged_and_fails_the_load(server, settings, tmp_path):
    server.add_fault(G(PULLS_OP, "drop_field", field=f"{NODES}[number=2].mergedAt"))
    records = github(server, settings)
    assert "mergedAt" not in kinds(records, "gql_pull")[f"{REPO}#2"]  # never silently out of the population
    con = connect(str(tmp_path / "wh.duckdb"))
    from ccwatch.warehouse.normalize.base import NormalizeError

    with pytest.raises(NormalizeError, match=rf"github gql_pull {REPO}#2: .*no mergedAt"):
        load_records(con, records, settings)
    con.close()


def test_tokens_never_reach_logs_errors_or_records(server, settings, caplog):
    caplog.set_level(logging.DEBUG)
    server.add_fault(G(PULLS_OP, "status", status=502, times=1))
    server.add_fault(G(HISTORY_OP, "reset", times=1))
    records = github(server, settings) + jira(server, settings)
    server.add_fault(G(PULLS_OP, "status", status=401, body={"message": "Bad credentials"}))
    with pytest.raises(SourceError) as err:
        github(server, settings, policy=replace(FAST, retries=0))
    assert "HTTP 401" in str(err.value) and "token is invalid" in str(err.value)
    blob = json.dumps([asdict(r) for r in records]) + caplog.text + str(err.value) + json.dumps(server.requests)
    assert GH_TOKEN not in blob
    assert re.search(r"Retry", caplog.text) and "graphql" in caplog.text  # the retried POSTs were logged
