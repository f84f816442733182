"""The reconciliation counts asked org-wide and staged for the repositories' fetches (ingest/github/counts.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.common.times import parse_as_of
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github import counts as C
from ccwatch.settings import RepoConfig

from tests.helpers.graphql_client import CannedClient

AS_OF = parse_as_of("2026-11-25")
START = AS_OF - timedelta(days=90)
RC = RepoConfig(repo="acme/api", production_branch="main", production_environments=("production",))


def staged(home, entry: dict | None = None, **top) -> None:
    q = C.count_query(RC, START, AS_OF)
    body = {"as_of": "2026-11-25T00:00:00Z", "url": "https://api.github.com/graphql#CcwatchMergedCounts",
            "repos": {RC.repo: entry if entry is not None else
                      {"q": q, "search": {"issueCount": 12}, "fetched_at": "2026-11-25T02:00:01Z"}}}
    body.update(top)
    path = C.counts_path(home, AS_OF)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body), encoding="utf-8")


def test_a_staged_count_is_the_record_the_repository_would_have_fetched(tmp_path):
    staged(tmp_path)
    rec = C.staged_count(tmp_path, AS_OF, RC, START)
    assert rec is not None and rec.kind == "merged_count" and rec.natural_key == "acme/api:main"
    assert rec.payload == {"variables": {"q": C.count_query(RC, START, AS_OF)}, "data": {"search": {"issueCount": 12}}}
    assert rec.status_code == 200 and rec.fetched_at == "2026-11-25T02:00:01Z"
    assert rec.url.endswith("#CcwatchMergedCounts")


@pytest.mark.parametrize("entry", [
    {"q": "repo:acme/api is:pr is:merged base:main merged:2026-08-01..2026-11-24", "search": {"issueCount": 1},
     "fetched_at": "x"},                                                     # another window
    {"q": None, "search": {"issueCount": 1}, "fetched_at": "x"},
    {"search": {"issueCount": 1}, "fetched_at": "x"},
    "not an object",
])
def test_a_count_staged_for_another_search_is_not_taken(tmp_path, entry):
    staged(tmp_path, entry)
    assert C.staged_count(tmp_path, AS_OF, RC, START) is None


@pytest.mark.parametrize("n", [None, -1, True, "12"])
def test_a_staged_answer_without_an_integer_count_is_not_taken(tmp_path, n):
    q = C.count_query(RC, START, AS_OF)
    staged(tmp_path, {"q": q, "search": {"issueCount": n}, "fetched_at": "2026-11-25T02:00:01Z"})
    assert C.staged_count(tmp_path, AS_OF, RC, START) is None


def test_no_file_an_unreadable_file_or_another_branch_asks_alone(tmp_path):
    assert C.staged_count(tmp_path, AS_OF, RC, START) is None
    staged(tmp_path)
    assert C.staged_count(tmp_path, AS_OF, RepoConfig(repo="acme/api", production_branch="release", production_environments=("production",)), START) is None
    assert C.staged_count(tmp_path, AS_OF, RepoConfig(repo="acme/web", production_branch="main", production_environments=("production",)), START) is None
    C.counts_path(tmp_path, AS_OF).write_text("{truncated", encoding="utf-8")
    assert C.staged_count(tmp_path, AS_OF, RC, START) is None


def repos(n: int) -> list[RepoConfig]:
    return [RepoConfig(repo=f"acme/r{i:03}", production_branch="main", production_environments=("production",)) for i in range(n)]


def test_fetch_counts_asks_fifty_repositories_a_request():
    from ccwatch.ingest.github.queries import COUNTS_BATCH

    rcs = repos(COUNTS_BATCH + 3)
    client = CannedClient([{"data": {f"c{i}": {"issueCount": i} for i in range(COUNTS_BATCH)}},
                      {"data": {f"c{i}": {"issueCount": 100 + i} for i in range(3)}}])
    out = C.fetch_counts(Endpoint("https://api.github.com", token="t"), rcs, START, AS_OF, client=client)
    sent = client.requester.sent
    assert [s["operationName"] for s in sent] == ["CcwatchMergedCounts"] * 2
    assert len(sent[0]["variables"]) == COUNTS_BATCH and len(sent[1]["variables"]) == 3
    assert sent[1]["variables"]["q2"] == C.count_query(rcs[-1], START, AS_OF)
    assert out["repos"][rcs[-1].repo]["search"] == {"issueCount": 102}
    assert out["repos"][rcs[0].repo]["q"] == C.count_query(rcs[0], START, AS_OF)
    assert out["url"] == "https://api.github.com/graphql#CcwatchMergedCounts"


@pytest.mark.parametrize("answer, said", [
    ({"data": {"c0": {"issueCount": 1}, "c1": None}}, "acme/r001"),
    ({"data": {"c0": {"issueCount": 1}, "c1": {"issueCount": 2}},
      "errors": [{"type": "FORBIDDEN", "message": "Resource not accessible", "path": ["c1"]}]}, "FORBIDDEN"),
    ({"data": {"c0": {"issueCount": 1}}}, "acme/r001"),
])
def test_a_batch_with_an_error_or_a_missing_count_fails_naming_it(answer, said):
    with pytest.raises(SourceError, match=said) as err:
        C.fetch_counts(Endpoint("https://api.github.com", token="t"), repos(2), START, AS_OF, client=CannedClient([answer]))
    assert "CcwatchMergedCounts" in str(err.value)
