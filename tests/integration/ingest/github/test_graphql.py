"""The GraphQL requests and the merged PRs of the GitHub fetch (ingest/github/graphql.py).

Canned answers in GitHub's GraphQL shapes (``{"data": ...}``; errors as HTTP 200 with an
``errors`` array) are served by a fake PyGithub requester (REST and GraphQL through the real
``RepoClient``), and by a local HTTP server for the client's own retry of POSTs.  Against the API
double, the demo org's evidence through GraphQL equals the REST crawl's (tests/helpers/rest_crawl.py).
"""

from __future__ import annotations

import json
import threading
from contextlib import nullcontext
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github import fetch
from ccwatch.ingest.github import graphql as gql
from ccwatch.ingest.github.client import RepoClient, make_client
from ccwatch.ingest.github.pieces import pull_incomplete
from ccwatch.ingest.github.queries import DEPLOYMENT_NODES, HISTORY_PAGE, PULLS_PAGE
from ccwatch.ingest.http.retry import RetryPolicy, github_retry

from tests.helpers.github_fetch import fetch_github
from tests.helpers.github_graphql_fake import (
    AS_OF,
    GQL,
    H1,
    H2,
    RATE,
    REPO,
    START,
    FakeRequester,
    cursor,
    rc,
    repo_of,
)
from tests.helpers.paths import CONFIG, DEMO_SCENARIO
from tests.helpers.rest_crawl import rest_reference


def commit_node(oid: str, *, suites_more=False, runs_more=False, ctx_at="2026-11-01T10:20:00Z") -> dict:
    return {"commit": {
        "oid": oid,
        "checkSuites": {"pageInfo": {"hasNextPage": suites_more}, "nodes": [{
            "id": "CS_kwDOsuite", "app": {"id": "A_kwHOAAA8CA", "databaseId": 15368, "slug": "github-actions"},
            "checkRuns": {"pageInfo": {"hasNextPage": runs_more}, "nodes": [
                {"id": "CR_kwDOrun1", "url": f"https://github.com/{REPO}/runs/23456789001", "detailsUrl": None,
                 "name": "test", "status": "COMPLETED", "conclusion": "FAILURE",
                 "startedAt": "2026-11-01T10:01:00Z", "completedAt": "2026-11-01T10:05:00Z"},
                {"id": "CR_kwDOrun2", "url": f"https://github.com/{REPO}/runs/23456789002", "detailsUrl": None,
                 "name": "test", "status": "COMPLETED", "conclusion": "SUCCESS",
                 "startedAt": "2026-11-01T10:10:00Z", "completedAt": "2026-11-01T10:15:00Z"}]}}]},
        "status": {"contexts": [{"id": "SC_kwDOctx", "context": "ci/jenkins", "state": "SUCCESS", "createdAt": ctx_at,
                                 "targetUrl": None, "creator": {"__typename": "Bot", "login": "jenkins-bot",
                                                                "id": "BOT_kwDOjenkins"}}]}}}


def pr(n: int, merged: str | None, updated: str, *, head: str = H1, last: str | None = None, author=None,
       reviews_more=False, labels_more=False, **commit_kw) -> dict:
    commit_kw.setdefault("ctx_at", merged or "2026-10-01T00:00:00Z")  # the status a merge saw
    return {
        "id": f"PR_kwDO{n}", "fullDatabaseId": str(2_987_650_000 + n), "number": n, "title": f"change {n}",
        "url": f"https://github.com/{REPO}/pull/{n}",
        "state": "MERGED", "createdAt": "2026-10-30T09:00:00Z", "updatedAt": updated, "mergedAt": merged,
        "closedAt": merged, "baseRefName": "main", "headRefName": f"feat/{n}", "headRefOid": head,
        "author": author or {"__typename": "User", "login": "carol-dev", "id": "U_kgDOcarol"},
        "mergedBy": {"__typename": "User", "login": "bob-rev", "id": "U_kgDObob"}, "mergeCommit": {"oid": "c" * 40},
        "labels": {"pageInfo": {"hasNextPage": labels_more}, "nodes": [{"name": "feature"}]},
        "reviews": {"pageInfo": {"hasNextPage": reviews_more, "endCursor": cursor(99)}, "nodes": [
            {"id": "PRR_kwDO802", "fullDatabaseId": "12345678802", "state": "APPROVED",
             "submittedAt": "2026-11-01T12:00:00Z",
             "author": {"__typename": "User", "login": "bob-rev", "id": "U_kgDObob"}, "commit": {"oid": head}}]},
        "timelineItems": {"pageInfo": {"hasPreviousPage": False}, "nodes": []},
        "commits": {"nodes": [commit_node(last or head, **commit_kw)]},
    }


def pulls_answer(nodes: list[dict], more: bool, end: str | None) -> dict:
    return {"data": {"rateLimit": RATE, "repository": {"pullRequests": {
        "pageInfo": {"hasNextPage": more, "endCursor": end}, "nodes": nodes}}}}


def run_pulls(req: FakeRequester, since: datetime | None = None) -> list:
    return list(gql.fetch_pulls(repo_of(req), rc(), START, AS_OF, since))


def test_queries_use_the_document_page_sizes():
    assert PULLS_PAGE <= 100 and HISTORY_PAGE <= 100 and DEPLOYMENT_NODES <= 100


# ---------------------------------------------------------------------------------------- PRs
def test_pages_newest_first_and_stops_at_since():
    since = datetime(2026, 11, 10, tzinfo=UTC)
    pages = {
        None: pulls_answer([pr(30, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"),
                            pr(29, "2026-11-15T00:00:00Z", "2026-11-15T00:00:00Z")], True, cursor(1)),
        cursor(1): pulls_answer([pr(28, "2026-11-12T00:00:00Z", "2026-11-12T00:00:00Z"),
                                 pr(27, "2026-11-01T00:00:00Z", "2026-11-05T00:00:00Z")], True, cursor(2)),
        cursor(2): pulls_answer([pr(26, "2026-10-30T00:00:00Z", "2026-10-30T00:00:00Z")], False, None),
    }
    req = FakeRequester(lambda op, v: (200, {}, pages[v["after"]]))
    recs = run_pulls(req, since)
    assert [r.natural_key for r in recs] == [f"{REPO}#30", f"{REPO}#29", f"{REPO}#28"]  # 27: updated before since
    assert {r.kind for r in recs} == {"gql_pull"} and req.gets() == []  # no REST at all
    posts = req.posts("CcwatchMergedPulls")
    assert [p["after"] for p in posts] == [None, cursor(1)]  # page 3 is past `since`: never asked
    assert posts[0] == {"owner": "acme", "name": "payments-api", "base": "main", "first": PULLS_PAGE, "after": None}
    assert recs[0].url == GQL + "#CcwatchMergedPulls" and recs[0].payload["number"] == 30


def test_full_plan_pages_to_the_end_and_keeps_only_merges_in_the_window():
    nodes = [pr(40, "2026-11-26T00:00:00Z", "2026-11-26T00:00:00Z"),   # merged after as_of
             pr(39, "2026-11-25T00:00:00Z", "2026-11-25T00:00:00Z"),   # at as_of: kept
             pr(38, "2026-10-26T00:00:00Z", "2026-11-24T00:00:00Z"),   # at the window start: kept
             pr(37, "2026-10-25T23:59:59Z", "2026-11-23T00:00:00Z"),   # merged before the window
             pr(36, None, "2026-11-22T00:00:00Z"),  # MERGED without mergedAt: kept, the load fails on it
             {**pr(35, None, "2026-11-21T00:00:00Z"), "state": "CLOSED"}]  # not merged (filter ignored)
    pages = {None: pulls_answer(nodes[:3], True, cursor(1)), cursor(1): pulls_answer(nodes[3:], False, None)}
    req = FakeRequester(lambda op, v: (200, {}, pages[v["after"]]))
    assert [r.natural_key.split("#")[1] for r in run_pulls(req)] == ["39", "38", "36"]
    assert len(req.posts()) == 2


def test_a_repeated_cursor_is_a_paging_loop():
    req = FakeRequester(lambda op, v: (200, {}, pulls_answer(
        [pr(5, "2026-11-20T00:00:00Z", "2026-11-20T00:00:00Z")], True, cursor(1))))
    with pytest.raises(SourceError, match="paging loop"):
        run_pulls(req)


def test_bot_author_is_kept_as_graphql_returns_it():
    bot = {"__typename": "Bot", "login": "dependabot", "id": "MDM6Qm90NDk2OTkzMzM="}
    req = FakeRequester(lambda op, v: (200, {}, pulls_answer(
        [pr(7, "2026-11-20T00:00:00Z", "2026-11-20T00:00:00Z", author=bot)], False, None)))
    (rec,) = run_pulls(req)
    assert rec.payload["author"] == bot  # the normaliser appends [bot], not the connector


REST_PULL = {"number": 12, "head": {"sha": H2, "ref": "feat/12"}, "labels": [{"name": f"l{i}"} for i in range(25)]}


def rest_for_12(head: str = H1) -> dict[str, Any]:
    return {f"/repos/{REPO}/pulls/12": REST_PULL, f"/repos/{REPO}/pulls/12/reviews": [{"id": 1, "state": "APPROVED"}],
            f"/repos/{REPO}/commits/{head}/check-runs": {"total_count": 1, "check_runs": [{"id": 9}]},
            f"/repos/{REPO}/commits/{head}/statuses": [{"id": 7, "state": "success"}]}


@pytest.mark.parametrize("kw, expect", [
    ({}, []),
    ({"reviews_more": True}, [("reviews", "#12")]),
    ({"labels_more": True}, [("pull", "#12")]),
    ({"runs_more": True}, [("check_runs", "@" + H1)]),
    ({"suites_more": True}, [("check_runs", "@" + H1)]),
    ({"ctx_at": "2026-11-02T10:00:01Z"}, [("statuses", "@" + H1)]),  # latest status came after the merge
    ({"ctx_at": "2026-11-02T10:00:00Z"}, []),                        # at the merge: it is the one before
])
def test_each_overflow_is_fetched_through_rest(kw, expect):
    node = pr(12, "2026-11-02T10:00:00Z", "2026-11-03T00:00:00Z", **kw)
    req = FakeRequester(lambda op, v: (200, {}, pulls_answer([node], False, None)), rest_for_12())
    recs = run_pulls(req)
    assert recs[0].kind == "gql_pull"
    assert [(r.kind, r.natural_key[len(REPO):]) for r in recs[1:]] == expect
    assert len(req.gets()) == len(expect)
    if expect and expect[0][0] == "check_runs":
        assert req.calls[-1][2] == {"filter": "all", "per_page": 100}


def test_head_commit_other_than_head_ref_oid_refetches_pull_and_checks_of_the_rest_head():
    node = pr(12, "2026-11-02T10:00:00Z", "2026-11-03T00:00:00Z", head=H1, last="9" * 40)
    req = FakeRequester(lambda op, v: (200, {}, pulls_answer([node], False, None)), rest_for_12(H2))
    recs = run_pulls(req)
    assert [(r.kind, r.natural_key) for r in recs] == [
        ("gql_pull", f"{REPO}#12"), ("pull", f"{REPO}#12"),
        ("check_runs", f"{REPO}@{H2}"), ("statuses", f"{REPO}@{H2}")]  # REST pull's head.sha
    assert pull_incomplete({**node, "commits": {"nodes": []}}).keys() == {"pull", "check_runs", "statuses"}


# ------------------------------------------------------------------------------------- errors
def test_errors_with_http_200_fail_naming_repo_operation_and_message():
    body = {"data": None, "errors": [{"type": "NOT_FOUND", "path": ["repository"], "locations": [
        {"line": 4, "column": 3}], "message": "Could not resolve to a Repository with the name 'acme/payments-api'."}]}
    req = FakeRequester(lambda op, v: (200, {}, body))
    with pytest.raises(SourceError) as exc:
        run_pulls(req)
    text = str(exc.value)
    assert REPO in text and "CcwatchMergedPulls" in text and "Could not resolve" in text and "NOT_FOUND" in text
    assert "ghp_secret" not in text


def test_partial_data_with_errors_is_not_evidence():
    body = pulls_answer([pr(1, "2026-11-20T00:00:00Z", "2026-11-20T00:00:00Z")], False, None)
    body["errors"] = [{"type": "SERVICE_UNAVAILABLE", "message": "Something went wrong", "path": ["repository"]}]
    with pytest.raises(SourceError, match="Something went wrong"):
        run_pulls(FakeRequester(lambda op, v: (200, {}, body)))


def test_rate_limited_answer_uses_the_rate_limit_wording():
    body = {"data": None, "errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}]}
    hdrs = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1795568400", "X-RateLimit-Resource": "graphql"}
    with pytest.raises(SourceError) as exc:
        run_pulls(FakeRequester(lambda op, v: (200, hdrs, body)))
    assert "rate limit exceeded" in str(exc.value) and "resets at 2026-" in str(exc.value)
    assert "CcwatchMergedPulls" in str(exc.value)


@pytest.mark.parametrize("status, body, words", [
    (401, {"message": "Bad credentials"}, "token is invalid"),
    (403, {"message": "Resource not accessible by personal access token"}, "Pull requests: read"),
    (502, {"message": "Server Error"}, "still failing after the retries"),
    (200, "<html>", "not JSON"),
])
def test_http_errors_are_source_errors(status, body, words):
    req = FakeRequester(lambda op, v: (status, {}, body))
    req_json = req.requestJson

    def raw(verb, url, **kw):  # a non-JSON body is sent as is
        s, h, b = req_json(verb, url, **kw)
        return s, h, (body if isinstance(body, str) else b)
    req.requestJson = raw
    with pytest.raises(SourceError, match=words) as exc:
        run_pulls(req)
    assert REPO in str(exc.value)


def test_incremental_plan_skips_the_query_when_the_pulls_list_is_unchanged(monkeypatch):
    asked = []  # the fetch's PR step (fetch._pulls): the change detector first, then the batches
    monkeypatch.setattr(fetch, "pulls_changed", lambda r, c, plan: asked.append(plan.mode) or False)
    req = FakeRequester(lambda op, v: pytest.fail("no GraphQL query after a 304"))
    plan = SimpleNamespace(incremental=True, mode="incremental")
    assert list(fetch._pulls(repo_of(req), rc(), START, AS_OF, START, plan)) == [] and asked == ["incremental"]
    # a full plan asks too (for the next ETag) but queries whatever the answer
    full = SimpleNamespace(incremental=False, mode="full")
    req = FakeRequester(lambda op, v: (200, {}, pulls_answer([], False, None)))
    assert list(fetch._pulls(repo_of(req), rc(), START, AS_OF, START, full)) == [] and len(req.posts()) == 1


# ------------------------------------------------------------ the real client: POST is retried
class _Script(BaseHTTPRequestHandler):
    answers: list[tuple[int, dict]] = []
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        status, data = type(self).answers.pop(0)
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *a):
        pass


@pytest.fixture
def script_server():
    _Script.answers, _Script.seen = [], []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Script)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_real_client_retries_a_5xx_post_and_sends_the_document(script_server):
    _Script.answers = [(502, {"message": "Server Error"}), (200, pulls_answer([], False, None))]
    ep = Endpoint(f"http://127.0.0.1:{script_server.server_port}", token="ghp_secret")
    gh = make_client(ep, retry=github_retry(RetryPolicy(backoff=0.01, backoff_max=0.02)))
    try:
        recs = list(gql.fetch_pulls(RepoClient(gh, ep, REPO), rc(), START, AS_OF))
    finally:
        gh.close()
    assert recs == [] and len(_Script.seen) == 2
    assert _Script.seen[1]["path"] == "/graphql" and _Script.seen[1]["auth"] == "token ghp_secret"
    assert _Script.seen[1]["body"]["operationName"] == "CcwatchMergedPulls"


def test_real_client_gives_up_after_the_retries_without_the_token(script_server):
    _Script.answers = [(503, {"message": "unavailable"})] * 3
    ep = Endpoint(f"http://127.0.0.1:{script_server.server_port}/api/v3", token="ghp_secret")
    gh = make_client(ep, retry=github_retry(RetryPolicy(retries=2, backoff=0.01, backoff_max=0.02)))
    try:
        with pytest.raises(SourceError, match="still failing after the retries") as exc:
            list(gql.fetch_pulls(RepoClient(gh, ep, REPO), rc(), START, AS_OF))
    finally:
        gh.close()
    assert len(_Script.seen) == 3 and _Script.seen[0]["path"] == "/api/graphql"  # Enterprise path
    assert "ghp_secret" not in str(exc.value)


def test_status_null_means_no_statuses_not_an_overflow():
    node = pr(12, "2026-11-02T10:00:00Z", "2026-11-03T00:00:00Z")
    node["commits"]["nodes"][0]["commit"]["status"] = None  # GitHub: the commit has no statuses
    req = FakeRequester(lambda op, v: (200, {}, pulls_answer([node], False, None)), rest_for_12())
    assert [r.kind for r in run_pulls(req)] == ["gql_pull"] and req.gets() == []


# ------------------------------------------------- the API double: GraphQL gives what REST gives
def _demo_fetch(rest: bool) -> tuple[list, list[dict]]:
    """The demo org's records (through the GraphQL batches, or the REST reference crawl) and requests."""
    from ccwatch.demo_env import DEMO_AUTH
    from ccwatch.sandbox import SandboxServer
    from ccwatch.settings import load_settings

    settings = load_settings(CONFIG)
    with SandboxServer(DEMO_SCENARIO) as server, (rest_reference() if rest else nullcontext()):
        ep = Endpoint(server.url + "/api/v3", token=DEMO_AUTH["github_token"])  # GraphQL: /api/graphql
        recs = list(fetch_github(settings, ep, datetime(2026, 11, 25, tzinfo=UTC)))
        return recs, [r for r in server.requests if r["service"] == "github"]


def _evidence(recs: list) -> dict[str, dict]:
    """Per PR / commit / deployment: what both paths must agree on, from whichever kind holds it."""
    out: dict[str, dict] = {"prs": {}, "reviews": {}, "runs": {}, "commit_prs": {}, "dep_states": {}}
    heads: dict[str, str] = {}
    for r in recs:
        if r.kind == "pull":
            out["prs"][r.natural_key] = r.payload["head"]["sha"]
        elif r.kind == "gql_pull":
            out["prs"][r.natural_key] = r.payload["headRefOid"]
            heads[r.natural_key] = r.payload["headRefOid"]
            out["reviews"].setdefault(r.natural_key, sorted(int(x["fullDatabaseId"]) for x in r.payload["reviews"]["nodes"]))
            commit = r.payload["commits"]["nodes"][-1]["commit"]
            out["runs"].setdefault(f"{r.natural_key.split('#')[0]}@{commit['oid']}", sorted(
                run["id"] for s in commit["checkSuites"]["nodes"] for run in s["checkRuns"]["nodes"]))
        elif r.kind == "reviews":
            out["reviews"][r.natural_key] = sorted(x["id"] for x in r.payload)
        elif r.kind == "check_runs":  # GraphQL gives a check run's node id only (its databaseId is an Int)
            out["runs"][r.natural_key] = sorted(x["node_id"] for x in r.payload)
        elif r.kind == "commit_pulls":
            out["commit_prs"][r.natural_key] = sorted(p["number"] for p in r.payload)
        elif r.kind == "gql_commit_pulls":
            out["commit_prs"][r.natural_key] = sorted(p["number"] for p in r.payload["associatedPullRequests"]["nodes"])
        elif r.kind == "deployment_statuses":
            out["dep_states"][r.natural_key] = sorted(s["state"] for s in r.payload)
        elif r.kind == "gql_deployment_statuses":
            out["dep_states"][r.natural_key] = sorted(s["state"].lower() for s in r.payload["statuses"]["nodes"])
    return out


def test_demo_org_through_graphql_matches_rest():
    rest_recs, rest_reqs = _demo_fetch(rest=True)
    gql_recs, gql_reqs = _demo_fetch(rest=False)
    rest, got = _evidence(rest_recs), _evidence(gql_recs)
    for part in ("prs", "commit_prs", "dep_states"):
        assert got[part] == rest[part], part
    assert got["reviews"] == rest["reviews"]
    assert {k: v for k, v in got["runs"].items() if k in rest["runs"]} == rest["runs"]
    merged = len(rest["prs"])
    posts = [r for r in gql_reqs if r["method"] == "POST"]
    print(f"\ndemo org: {merged} merged PRs; REST {len(rest_reqs)} requests, GraphQL path "
          f"{len(gql_reqs)} requests ({len(posts)} POST /graphql)")
    assert merged > 0 and posts and len(gql_reqs) < len(rest_reqs)
