"""The PRs of first-parent commits from the branch's GraphQL history (ingest/github/commit_links.py):
paging, overflow to REST, and the org-wide batch of several repositories' pages (issue #15).
Canned answers through a fake requester (tests/helpers/github_graphql_fake.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest.github import commit_links as cl
from ccwatch.ingest.github import graphql as gql
from ccwatch.ingest.github.client import RepoClient

from tests.helpers.github_graphql_fake import BASE, GQL, RATE, REPO, START, FakeRequester, cursor, rc, repo_of


# ------------------------------------------------------------------------------------ history
def rest_commit(sha: str, date: str) -> dict:
    return {"sha": sha, "commit": {"committer": {"date": date}, "author": {"date": date}}, "parents": []}


def hist_node(oid: str, prs: list[int]) -> dict:
    return {"oid": oid, "committedDate": "2026-11-02T10:00:00Z", "parents": {"nodes": [{"oid": "0" * 40}]},
            "associatedPullRequests": {"pageInfo": {"hasNextPage": len(prs) > 5}, "nodes": [
                {"number": n, "fullDatabaseId": str(2_987_650_000 + n), "baseRefName": "main",
                 "mergedAt": "2026-11-02T10:00:00Z"} for n in prs[:5]]}}


def history_answer(nodes: list[dict], more: bool, end: str | None) -> dict:
    return {"data": {"rateLimit": RATE, "repository": {"ref": {"target": {"history": {
        "pageInfo": {"hasNextPage": more, "endCursor": end}, "nodes": nodes}}}}}}


def test_history_pages_until_every_first_parent_commit_is_found_rest_for_the_rest():
    a, b, c, d = "a" * 40, "b" * 40, "c" * 40, "d" * 40
    fp = [rest_commit(a, "2026-11-01T10:00:00Z"), rest_commit(b, "2026-11-02T10:00:00Z"),
          rest_commit(c, "2026-11-03T10:00:00Z"), rest_commit(d, "2026-11-04T10:00:00Z")]
    pages = {None: history_answer([hist_node(d, []), hist_node("e" * 40, [3])], True, cursor(1)),
             cursor(1): history_answer([hist_node(c, [1, 2, 3, 4, 5, 6]), hist_node(a, [12])], False, None)}
    rest = {f"/repos/{REPO}/commits/{b}/pulls": [], f"/repos/{REPO}/commits/{c}/pulls": [{"number": 1}]}
    req = FakeRequester(lambda op, v: (200, {}, pages[v["after"]]), rest)
    recs = list(cl.fetch_commit_pulls(repo_of(req), rc(), fp, START))
    assert [(r.kind, r.natural_key[-40:]) for r in recs] == [
        ("gql_commit_pulls", a), ("commit_pulls", b), ("commit_pulls", c), ("gql_commit_pulls", d)]
    posts = req.posts("CcwatchBranchHistory")
    assert len(posts) == 2  # b is not in the history (e.g. rewritten since the REST list): REST
    assert posts[0]["qualifiedName"] == "refs/heads/main" and posts[0]["since"] == "2026-11-01T09:59:59Z"
    assert recs[0].payload["associatedPullRequests"]["nodes"][0]["number"] == 12


@pytest.mark.parametrize("prs, page_info, kind", [
    ([1, 2, 3, 4, 5], {"hasNextPage": False}, "gql_commit_pulls"),  # a full page that says it is all
    ([1, 2, 3, 4, 5, 6], {"hasNextPage": True}, "commit_pulls"),
    ([1, 2, 3, 4, 5], None, "commit_pulls"),                          # no pageInfo: a full page may hide more
    ([1, 2, 3, 4], None, "gql_commit_pulls"),
])
def test_associated_prs_overflow_by_page_info(prs, page_info, kind):
    a = "a" * 40
    node = hist_node(a, prs)
    if page_info is None:
        del node["associatedPullRequests"]["pageInfo"]
    else:
        node["associatedPullRequests"]["pageInfo"] = page_info
    req = FakeRequester(lambda op, v: (200, {}, history_answer([node], False, None)),
                        {f"/repos/{REPO}/commits/{a}/pulls": [{"number": n} for n in prs]})
    recs = list(cl.fetch_commit_pulls(repo_of(req), rc(), [rest_commit(a, "2026-11-01T10:00:00Z")], START))
    assert [r.kind for r in recs] == [kind]


def test_history_stops_as_soon_as_all_are_found():
    a = "a" * 40
    req = FakeRequester(lambda op, v: (200, {}, history_answer([hist_node(a, [1])], True, cursor(1))))
    recs = list(cl.fetch_commit_pulls(repo_of(req), rc(), [rest_commit(a, "2026-11-01T10:00:00Z")], START))
    assert [r.kind for r in recs] == ["gql_commit_pulls"] and len(req.posts()) == 1
    assert list(cl.fetch_commit_pulls(repo_of(req), rc(), [], START)) == [] and len(req.posts()) == 1


def test_one_request_holds_the_history_pages_of_several_repositories_round_after_round():
    """(issue #15) CcwatchBranchHistories: every repository's first page in one request; a
    repository with more pages goes on alone in the next round; one without the branch gets REST
    from ITS repository; each repository's records come in the order of its commits, the same
    whatever the pool."""
    from concurrent.futures import ThreadPoolExecutor

    a, b, c, d = "a" * 40, "b" * 40, "c" * 40, "d" * 40
    other, third = "acme/web-frontend", "acme/ops"

    def hist(nodes, more, end):
        return {"ref": {"target": {"history": {"pageInfo": {"hasNextPage": more, "endCursor": end}, "nodes": nodes}}}}

    def answer(op, v):
        assert op == "CcwatchBranchHistories"
        out = {"rateLimit": RATE}
        for i in range(20):
            repo = f"{v.get(f'o{i}')}/{v.get(f'n{i}')}"
            if v.get(f"o{i}") is None:
                break
            if repo == REPO:
                out[f"r{i}"] = (hist([hist_node(b, [2])], True, cursor(1)) if v[f"after{i}"] is None
                                else hist([hist_node(a, [1])], False, None))
            elif repo == other:
                out[f"r{i}"] = hist([hist_node(c, [3])], False, None)
            else:
                out[f"r{i}"] = {"ref": None}
        return 200, {}, {"data": out}

    rest = {f"/repos/{third}/commits/{d}/pulls": []}
    asked = [cl.links(REPO, "main", [rest_commit(a, "2026-11-01T10:00:00Z"), rest_commit(b, "2026-11-02T10:00:00Z")], START),
             cl.links(other, "main", [rest_commit(c, "2026-11-03T10:00:00Z")], START),
             cl.links(third, "main", [rest_commit(d, "2026-11-03T10:00:00Z")], START)]
    runs = []
    for pool in (None, ThreadPoolExecutor(max_workers=2)):
        req = FakeRequester(answer, rest)
        clients = {name: RepoClient(SimpleNamespace(requester=req), Endpoint(BASE, token="ghp_secret"), name)
                   for name in (REPO, other, third)}
        recs = list(cl.commit_pulls(lambda name, req=req: gql.GraphQL(gql.Named(req, None, name)), clients, asked,
                                     pool=pool))
        if pool is not None:
            pool.shutdown()
        posts = req.posts("CcwatchBranchHistories")
        assert [sorted(k for k in p if k.startswith("o")) for p in posts] == [["o0", "o1", "o2"], ["o0"]]
        assert posts[0]["since0"] == "2026-11-01T09:59:59Z" and posts[1]["after0"] == cursor(1)
        assert req.gets() == [f"/repos/{third}/commits/{d}/pulls"]
        runs.append([(r.kind, r.natural_key, r.url) for r in recs])
    assert runs[0] == runs[1]
    assert [(k, key) for k, key, _ in runs[0]] == [
        ("gql_commit_pulls", f"{other}@{c}"), ("commit_pulls", f"{third}@{d}"),
        ("gql_commit_pulls", f"{REPO}@{a}"), ("gql_commit_pulls", f"{REPO}@{b}")]
    assert runs[0][0][2] == f"{GQL}#CcwatchBranchHistories"


def test_missing_branch_falls_back_to_rest():
    a = "a" * 40
    body = {"data": {"rateLimit": RATE, "repository": {"ref": None}}}
    req = FakeRequester(lambda op, v: (200, {}, body), {f"/repos/{REPO}/commits/{a}/pulls": []})
    recs = list(cl.fetch_commit_pulls(repo_of(req), rc(), [rest_commit(a, "2026-11-01T10:00:00Z")], START))
    assert [r.kind for r in recs] == ["commit_pulls"]
