"""The double's repository activity log and commit comparison, through PyGithub's requester (the
connector's transport), shaped as GitHub's published OpenAPI description says."""

from __future__ import annotations

import copy

import pytest
from ccwatch.sandbox import SandboxServer
from github import Auth, Github

from tests.integration.sandbox.test_github import TOKEN, scenario, sha

REPO = "acme/payments-api"
NULL = "0" * 40
ACTIVITY_KEYS = {"id", "node_id", "before", "after", "ref", "timestamp", "activity_type", "actor"}  # all required


@pytest.fixture(scope="module")
def server():
    s = scenario()
    other = copy.deepcopy(s["github"]["repos"][REPO])
    other["activity"] = [
        {"id": 31000000001, "activity_type": "push", "ref": "refs/heads/main", "timestamp": "2026-11-20T10:00:00Z",
         "actor": "mallory", "before": sha(3), "after": sha(4)},
        {"id": 31000000002, "activity_type": "force_push", "ref": "refs/heads/main",
         "timestamp": "2026-11-21T10:00:00Z", "actor": None, "before": sha(4), "after": sha(2)},
        {"id": 31000000003, "activity_type": "push", "ref": "refs/heads/dev", "timestamp": "2026-11-22T10:00:00Z",
         "actor": "carol-dev", "before": sha(1), "after": sha(10)},
    ]
    locked = copy.deepcopy(s["github"]["repos"][REPO])
    locked["activity_status"] = 403
    s["github"]["repos"].update({"acme/given": other, "acme/locked": locked})
    with SandboxServer(s) as srv:
        yield srv


@pytest.fixture
def req(server):
    return Github(auth=Auth.Token(TOKEN), base_url=server.url, per_page=100).requester


def get(req, path, **params):
    status, headers, data = req.requestJson("GET", path, parameters=params or None)
    import json

    return status, {k.lower(): v for k, v in headers.items()}, json.loads(data) if data else None


def test_derived_log_follows_the_first_parent_history(req):
    # main: c1 (created) <- c2 (dave-ops pushed) <- m3 (merge of PR 1) <- c4 (squash of PR 2)
    status, _, items = get(req, f"/repos/{REPO}/activity", ref="main")
    assert status == 200 and all(set(i) == ACTIVITY_KEYS for i in items)
    got = [(i["activity_type"], i["before"], i["after"], i["timestamp"], (i["actor"] or {}).get("login"))
           for i in items]
    assert got == [
        ("pr_merge", sha(3), sha(4), "2026-11-03T10:00:00Z", "bob-rev"),
        ("pr_merge", sha(2), sha(3), "2026-11-03T10:00:00Z", "bob-rev"),
        ("push", sha(1), sha(2), "2026-11-02T10:00:00Z", "dave-ops"),
        ("branch_creation", NULL, sha(1), "2026-11-01T10:00:00Z", "carol-dev"),
    ]
    assert {i["ref"] for i in items} == {"refs/heads/main"}
    assert all(i["id"] > 2**31 for i in items), "realistic ids: past the 32-bit range"
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
    assert items[0]["actor"]["type"] == "User" and items[0]["actor"]["id"] == 102
    _, _, same = get(req, f"/repos/{REPO}/activity", ref="refs/heads/main")
    assert same == items
    _, _, asc = get(req, f"/repos/{REPO}/activity", ref="main", direction="asc")
    assert asc == items[::-1]


def test_cursor_paging_with_link_after(req, server):
    server.clear_recordings()
    status, headers, first = get(req, f"/repos/{REPO}/activity", ref="main", per_page=1)
    pages, link = [first], headers.get("link", "")
    while 'rel="next"' in link:
        url = next(p.split(";")[0].strip().strip("<>") for p in link.split(",") if 'rel="next"' in p)
        assert "after=" in url and "page=" not in url.replace("per_page=", "")
        status, headers, page = get(req, url)
        pages.append(page)
        link = headers.get("link", "")
    assert [len(p) for p in pages] == [1, 1, 1, 1]
    _, _, whole = get(req, f"/repos/{REPO}/activity", ref="main")
    assert [p[0] for p in pages] == whole


def test_filters_and_a_given_log(req):
    _, _, pushes = get(req, f"/repos/{REPO}/activity", ref="main", activity_type="push")
    assert [i["after"] for i in pushes] == [sha(2)]
    _, _, given = get(req, "/repos/acme/given/activity", ref="main")
    assert [(i["id"], i["activity_type"], i["actor"]) for i in given] == [
        (31000000002, "force_push", None), (31000000001, "push", given[1]["actor"])]
    assert given[1]["actor"]["login"] == "mallory"
    _, _, dev = get(req, "/repos/acme/given/activity", ref="refs/heads/dev")
    assert [i["after"] for i in dev] == [sha(10)]
    _, _, week = get(req, "/repos/acme/given/activity", time_period="day")  # as_of 11-25: nothing since 11-24
    assert week == []


def test_unreadable_log_answers_403(req):
    from github import GithubException

    with pytest.raises(GithubException) as err:  # GithubRetry raises the plain API error for a 403 that is no rate limit
        get(req, "/repos/acme/locked/activity", ref="main")
    assert err.value.status == 403 and err.value.data["message"] == "Resource not accessible by integration"


@pytest.mark.parametrize("base,head,status,ahead,behind,merge_base", [
    (sha(2), sha(4), "ahead", 3, 0, sha(2)),        # m3, the side commit s10 and c4
    (sha(4), sha(2), "behind", 0, 3, sha(2)),
    (sha(10), sha(2), "diverged", 1, 1, sha(1)),     # a side branch and a direct push share c1
    (sha(4), sha(4), "identical", 0, 0, sha(4)),
    ("main", sha(3), "behind", 0, 1, sha(3)),
])
def test_compare_gives_status_and_merge_base(req, base, head, status, ahead, behind, merge_base):
    code, _, body = get(req, f"/repos/{REPO}/compare/{base}...{head}")
    assert code == 200
    assert (body["status"], body["ahead_by"], body["behind_by"], body["merge_base_commit"]["sha"]) == (
        status, ahead, behind, merge_base)
    assert body["total_commits"] == ahead == len(body["commits"]) and body["files"] == []
    assert {"url", "html_url", "permalink_url", "diff_url", "patch_url", "base_commit"} <= set(body)


def test_compare_of_an_unknown_commit_is_404(req):
    code, _, body = get(req, f"/repos/{REPO}/compare/{'9' * 40}...{sha(4)}")
    assert code == 404 and body["message"] == "Not Found"
