"""The night's merged PRs discovered org-wide by search (ingest/github/discovery.py): trusted only complete."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from ccwatch.common.times import iso_z, parse_as_of
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github import discovery as D
from ccwatch.ingest.github.queries import SEARCH_CAP

from tests.helpers.graphql_client import CannedClient

AS_OF = parse_as_of("2026-11-25")
START = AS_OF - timedelta(days=90)
SINCE = AS_OF - timedelta(days=2)


def pr(repo: str, n: int, **more) -> dict:
    return {"number": n, "url": f"https://github.com/{repo}/pull/{n}", "baseRefName": "main", **more}


@pytest.mark.parametrize("node, repo", [
    (pr("acme/api", 7), "acme/api"),
    ({"number": 7, "url": "https://ghe.example.com/acme/api/pull/7"}, "acme/api"),
    ({"number": 7, "url": "https://github.com/acme/api/pull/8"}, None),       # another PR's URL
    ({"number": 7, "url": "https://github.com/acme/api/issues/7"}, None),     # an issue
    ({"number": "7", "url": "https://github.com/acme/api/pull/7"}, None),
    ({"url": "https://github.com/acme/api/pull/7"}, None),
    ({}, None), (None, None),
])
def test_a_node_names_its_repository_by_its_url(node, repo):
    assert D.node_repo(node) == repo


def page(nodes, total, cursor=None):
    return {"data": {"search": {"issueCount": total, "nodes": nodes,
                                "pageInfo": {"hasNextPage": cursor is not None, "endCursor": cursor}}}}


def test_a_complete_search_gives_every_node_page_after_page():
    a, b = [pr("acme/api", i) for i in range(50)], [pr("acme/web", 1)]
    gh = CannedClient([page(a, 51, "c1"), page(b, 51)])
    q, nodes, url = D.search_owner(gh, "acme", SINCE, START, AS_OF, None)
    assert nodes == a + b and url.endswith("#CcwatchMergedPullsSearch")
    assert q == ("org:acme is:pr is:merged updated:>=2026-11-23T00:00:00+00:00 "
                 "merged:2026-08-27T00:00:00+00:00..2026-11-25T00:00:00+00:00 sort:updated-desc")
    sent = gh.requester.sent
    assert [s["operationName"] for s in sent] == ["CcwatchMergedPullsSearch"] * 2
    assert sent[0]["variables"] == {"q": q, "first": 50, "after": None} and sent[1]["variables"]["after"] == "c1"


@pytest.mark.parametrize("answers", [
    [page([], SEARCH_CAP + 1, "c1")],                                 # past the cap: never complete
    [page([pr("acme/api", 1)], 2)],                                   # fewer nodes than issueCount
    [page([pr("acme/api", 1), {"number": 2}], 2)],                    # a node that is no PR with a URL
    [page([pr("acme/api", 1), None], 2)],                             # a null node
])
def test_a_search_that_cannot_be_trusted_complete_gives_no_nodes(answers):
    _, nodes, _ = D.search_owner(CannedClient(answers), "acme", SINCE, START, AS_OF, None)
    assert nodes is None


def test_a_search_error_fails_the_stage():
    answer = {"data": None, "errors": [{"type": "FORBIDDEN", "message": "Resource not accessible by integration"}]}
    with pytest.raises(SourceError, match="acme's merged PRs.*FORBIDDEN"):
        D.search_owner(CannedClient([answer]), "acme", SINCE, START, AS_OF, None)


def stage(home, **over) -> None:
    body = {"as_of": iso_z(AS_OF), "window_from": iso_z(START), "since": iso_z(SINCE),
            "url": "https://api.github.com/graphql#CcwatchMergedPullsSearch", "fetched_at": "2026-11-25T02:00:00Z",
            "queries": ["q"], "repos": {"acme/api": [pr("acme/api", 1)], "acme/web": []}}
    body.update(over)
    path = D.pulls_path(home, AS_OF)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body), encoding="utf-8")


def test_a_covered_repository_takes_its_staged_nodes_even_none(tmp_path):
    stage(tmp_path)
    nodes, url = D.staged_pulls(tmp_path, AS_OF, "acme/api", START, SINCE)
    assert nodes == [pr("acme/api", 1)] and url.endswith("#CcwatchMergedPullsSearch")
    assert D.staged_pulls(tmp_path, AS_OF, "acme/web", START, SINCE + timedelta(hours=1)) == ([], url)


@pytest.mark.parametrize("over, repo, since", [
    ({}, "acme/other", SINCE),                                        # not covered (a full plan)
    ({}, "acme/api", SINCE - timedelta(seconds=1)),                   # its since is older than the search's
    ({"window_from": iso_z(START + timedelta(days=1))}, "acme/api", SINCE),
    ({"as_of": iso_z(AS_OF - timedelta(days=1))}, "acme/api", SINCE),
    ({"since": None}, "acme/api", SINCE),
    ({"url": ""}, "acme/api", SINCE),
    ({"repos": {"acme/api": "nodes"}}, "acme/api", SINCE),
])
def test_a_repository_the_discovery_did_not_cover_asks_alone(tmp_path, over, repo, since):
    stage(tmp_path, **over)
    assert D.staged_pulls(tmp_path, AS_OF, repo, START, since) is None


def test_no_file_or_an_unreadable_one_asks_alone(tmp_path):
    assert D.staged_pulls(tmp_path, AS_OF, "acme/api", START, SINCE) is None
    stage(tmp_path)
    D.pulls_path(tmp_path, AS_OF).write_text("{", encoding="utf-8")
    assert D.staged_pulls(tmp_path, AS_OF, "acme/api", START, SINCE) is None
