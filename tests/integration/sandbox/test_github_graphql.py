"""The API double's GraphQL endpoint: the connector's operations executed over GitHub's published
schema (graphql-core) from the same scenario as the REST routes, in GitHub's shapes, errors, paging
and point accounting."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from ccwatch.ingest.github import queries as Q
from ccwatch.sandbox import SandboxServer
from ccwatch.sandbox.github_graphql_exec import document_cost, point_cost
from github import Auth, Github, UnknownObjectException

from tests.helpers.paths import DEMO_SCENARIO

DEMO = DEMO_SCENARIO
TOKEN = {"Authorization": "token ghp_demo"}
REPOS = ("acme/payments-api", "acme/web-frontend")


@pytest.fixture(scope="module")
def scenario() -> dict:
    return json.loads(DEMO.read_text(encoding="utf-8"))


@pytest.fixture()
def sandbox(scenario):
    with SandboxServer(scenario) as sb:
        yield sb


def gql(sb, op, variables, *, path="/graphql", name=True, headers=TOKEN, query=None):
    body = {"query": query or Q.OPERATIONS[op], "variables": variables}
    if name:
        body["operationName"] = op
    return requests.post(sb.url + path, json=body, headers=headers, timeout=10)


def rest(sb, path, **params):
    out, page = [], 1
    while True:
        r = requests.get(f"{sb.url}{path}", params={**params, "per_page": 100, "page": page}, headers=TOKEN, timeout=10)
        assert r.status_code == 200, (path, r.text)
        data = r.json()
        if isinstance(data, dict):
            return data
        out += data
        if 'rel="next"' not in r.headers.get("Link", ""):
            return out
        page += 1


def all_merged_pulls(sb, full, base, first=Q.PULLS_PAGE):
    owner, name = full.split("/")
    nodes, after, pages = [], None, 0
    while True:
        r = gql(sb, "CcwatchMergedPulls", {"owner": owner, "name": name, "base": base, "first": first, "after": after})
        assert r.status_code == 200 and "errors" not in r.json(), r.text
        conn = r.json()["data"]["repository"]["pullRequests"]
        nodes += conn["nodes"]
        pages += 1
        if not conn["pageInfo"]["hasNextPage"]:
            return nodes, pages
        after = conn["pageInfo"]["endCursor"]


# ---------------------------------------------------------------------------------- operations vs REST
@pytest.mark.parametrize("full", REPOS)
def test_merged_pulls_describe_the_same_prs_as_rest(sandbox, scenario, full):
    bases = {p.get("base", "main") for p in scenario["github"]["repos"][full]["pulls"]}
    for base in bases:
        nodes, _ = all_merged_pulls(sandbox, full, base)
        listed = [p for p in rest(sandbox, f"/repos/{full}/pulls", state="closed", base=base, sort="updated",
                                  direction="desc") if p["merged_at"]]
        assert [n["number"] for n in nodes] == [p["number"] for p in listed]  # UPDATED_AT DESC, merged only
        for node, p in zip(nodes, listed, strict=True):
            n = p["number"]
            single = rest(sandbox, f"/repos/{full}/pulls/{n}")
            assert node["fullDatabaseId"] == str(p["id"]) and node["id"] == p["node_id"] and node["state"] == "MERGED"
            assert (node["mergedAt"], node["createdAt"], node["baseRefName"], node["headRefOid"]) == (
                p["merged_at"], p["created_at"], base, p["head"]["sha"])
            assert node["mergeCommit"] == {"oid": p["merge_commit_sha"]}
            assert node["author"]["login"] == p["user"]["login"] and node["author"]["id"] == p["user"]["node_id"]
            merger = single["merged_by"]  # GraphQL spells a Bot's login without REST's "[bot]" (a merge queue)
            bot = merger["type"] == "Bot"
            assert node["mergedBy"] == {"__typename": "Bot" if bot else "User", "id": merger["node_id"],
                                        "login": merger["login"].removesuffix("[bot]") if bot else merger["login"]}
            assert [lb["name"] for lb in node["labels"]["nodes"]] == [lb["name"] for lb in p["labels"]]
            reviews = rest(sandbox, f"/repos/{full}/pulls/{n}/reviews")
            assert [(r["fullDatabaseId"], r["id"], r["state"], r["submittedAt"], r["commit"]["oid"])
                    for r in node["reviews"]["nodes"]] == [
                (str(r["id"]), r["node_id"], r["state"], r["submitted_at"], r["commit_id"]) for r in reviews]
            for gr, rr in zip(node["reviews"]["nodes"], reviews, strict=True):
                assert gr["author"]["__typename"] == rr["user"]["type"]
                assert gr["author"]["login"] == rr["user"]["login"].removesuffix("[bot]")
            (last,) = node["commits"]["nodes"]
            head = last["commit"]
            assert head["oid"] == p["head"]["sha"]
            runs = rest(sandbox, f"/repos/{full}/commits/{head['oid']}/check-runs", filter="all")["check_runs"]
            got = [(r["id"], r["url"], r["name"], r["status"], r["conclusion"], r["startedAt"], r["completedAt"])
                   for s in head["checkSuites"]["nodes"] for r in s["checkRuns"]["nodes"]]
            assert sorted(got) == sorted((r["node_id"], r["html_url"], r["name"], r["status"].upper(),
                                          (r["conclusion"] or "").upper() or None, r["started_at"], r["completed_at"])
                                         for r in runs)
            apps = {(r["app"]["node_id"], r["app"]["id"], r["app"]["slug"]) for r in runs}
            assert {tuple(s["app"].values()) for s in head["checkSuites"]["nodes"]} == apps
            combined = rest(sandbox, f"/repos/{full}/commits/{head['oid']}/status")
            if combined["total_count"] == 0:
                assert head["status"] is None
            else:
                assert sorted((c["id"], c["context"], c["state"], c["createdAt"], c["creator"]["login"])
                              for c in head["status"]["contexts"]) == sorted(
                    (s["node_id"], s["context"], s["state"].upper(), s["created_at"],
                     s["creator"]["login"].removesuffix("[bot]")) for s in combined["statuses"])


def test_rerun_check_runs_are_all_returned(sandbox):
    nodes, _ = all_merged_pulls(sandbox, "acme/payments-api", "main")
    by_head = {n["headRefOid"]: n for n in nodes}
    head = by_head["bfec2737d6ec9d767f5341deb2ff2aafe169d2b0"]["commits"]["nodes"][0]["commit"]
    names = sorted((r["name"], r["conclusion"]) for s in head["checkSuites"]["nodes"] for r in s["checkRuns"]["nodes"])
    assert names == [("build", "SUCCESS"), ("lint", "SUCCESS"), ("test", "FAILURE"), ("test", "SUCCESS")]


def test_bot_review_author_is_a_bot_without_suffix(sandbox):
    nodes, _ = all_merged_pulls(sandbox, "acme/web-frontend", "main")
    bots = [r["author"] for n in nodes for r in n["reviews"]["nodes"] if r["author"]["__typename"] == "Bot"]
    assert bots and all(b["login"] == "acme-review-bot" for b in bots)


def test_status_contexts_are_only_the_latest_per_context(sandbox, scenario):
    (sha, statuses), = scenario["github"]["repos"]["acme/web-frontend"]["statuses"].items()
    nodes, _ = all_merged_pulls(sandbox, "acme/web-frontend", "main")
    commit = next(n for n in nodes if n["headRefOid"] == sha)["commits"]["nodes"][0]["commit"]
    contexts = commit["status"]["contexts"]
    assert sorted(c["context"] for c in contexts) == sorted({s["context"] for s in statuses})
    for c in contexts:
        newest = max((s for s in statuses if s["context"] == c["context"]), key=lambda s: s["created_at"])
        assert (c["state"], c["createdAt"]) == (newest["state"].upper(), newest["created_at"])


@pytest.mark.parametrize("full", REPOS)
def test_branch_history_matches_rest_commits_and_commit_pulls(sandbox, full):
    owner, name = full.split("/")
    since = "2026-09-01T00:00:00Z"
    rows, after = [], None
    while True:
        r = gql(sandbox, "CcwatchBranchHistory", {"owner": owner, "name": name, "qualifiedName": "refs/heads/main",
                                                   "since": since, "first": 10, "after": after}).json()
        hist = r["data"]["repository"]["ref"]["target"]["history"]
        rows += hist["nodes"]
        if not hist["pageInfo"]["hasNextPage"]:
            break
        after = hist["pageInfo"]["endCursor"]
    commits = rest(sandbox, f"/repos/{full}/commits", sha="main", since=since)
    assert [c["oid"] for c in rows] == [c["sha"] for c in commits]  # git-log order, all parents
    assert rows and all(c["committedDate"] >= since for c in rows)
    for node, c in zip(rows, commits, strict=True):
        assert node["committedDate"] == c["commit"]["committer"]["date"]
        assert [p["oid"] for p in node["parents"]["nodes"]] == [p["sha"] for p in c["parents"]][:1]
        pulls = rest(sandbox, f"/repos/{full}/commits/{c['sha']}/pulls")
        assert sorted(p["number"] for p in node["associatedPullRequests"]["nodes"]) == sorted(p["number"] for p in pulls)


def test_rebase_merge_commits_each_list_their_pr(sandbox, scenario):
    r = scenario["github"]["repos"]["acme/payments-api"]
    p = next(p for p in r["pulls"] if len(p.get("commit_shas", [])) > 1)
    res = gql(sandbox, "CcwatchBranchHistory", {"owner": "acme", "name": "payments-api", "qualifiedName": "main",
                                                "first": 100}).json()
    nodes = {n["oid"]: n for n in res["data"]["repository"]["ref"]["target"]["history"]["nodes"]}
    for sha in p["commit_shas"]:
        if sha in nodes:
            assert p["number"] in [x["number"] for x in nodes[sha]["associatedPullRequests"]["nodes"]]


def test_deployment_statuses_by_rest_node_ids(sandbox):
    full = "acme/payments-api"
    deployments = rest(sandbox, f"/repos/{full}/deployments")
    ids = [d["node_id"] for d in deployments[:Q.DEPLOYMENT_NODES]]
    data = gql(sandbox, "CcwatchDeploymentStatuses", {"ids": ids, "first": Q.DEPLOYMENT_STATUSES_PAGE}).json()["data"]
    assert [n["id"] for n in data["nodes"]] == ids
    for node, d in zip(data["nodes"], deployments, strict=False):
        statuses = rest(sandbox, f"/repos/{full}/deployments/{d['id']}/statuses")
        assert (node["commitOid"], node["environment"], node["createdAt"]) == (d["sha"], d["environment"], d["created_at"])
        assert [(s["id"], s["state"], s["createdAt"], s["creator"]["login"]) for s in node["statuses"]["nodes"]] == [
            (s["node_id"], s["state"].upper(), s["created_at"], s["creator"]["login"].removesuffix("[bot]"))
            for s in statuses]
        assert {s["creator"]["__typename"] for s in node["statuses"]["nodes"]} <= {"Bot", "User"}


# ---------------------------------------------------------------------------------- paging and recognition
def test_small_pages_walk_every_pr_once_with_opaque_cursors(sandbox):
    full_set, _ = all_merged_pulls(sandbox, "acme/payments-api", "main")
    paged, pages = all_merged_pulls(sandbox, "acme/payments-api", "main", first=7)
    assert [n["number"] for n in paged] == [n["number"] for n in full_set]
    assert pages == -(-len(full_set) // 7)
    r = gql(sandbox, "CcwatchMergedPulls", {"owner": "acme", "name": "payments-api", "base": "main", "first": 7}).json()
    cursor = r["data"]["repository"]["pullRequests"]["pageInfo"]["endCursor"]
    base64.b64decode(cursor, validate=True)  # opaque base64, not a page number
    assert not cursor.isdigit()


def test_operation_recognised_from_query_text_and_on_enterprise_path(sandbox):
    v = {"owner": "acme", "name": "web-frontend", "base": "main", "first": 5}
    a = gql(sandbox, "CcwatchMergedPulls", v, name=False).json()
    b = gql(sandbox, "CcwatchMergedPulls", v, path="/api/graphql").json()
    assert a["data"]["repository"] == b["data"]["repository"]
    assert len(a["data"]["repository"]["pullRequests"]["nodes"]) == 5


def test_pygithub_requester_graphql_query(sandbox):
    gh = Github(auth=Auth.Token("ghp_demo"), base_url=sandbox.url + "/api/v3")
    headers, data = gh.requester.graphql_query(Q.BRANCH_HISTORY, {"owner": "acme", "name": "payments-api",
                                                                  "qualifiedName": "refs/heads/main", "first": 3})
    assert headers["x-ratelimit-resource"] == "graphql"
    assert len(data["data"]["repository"]["ref"]["target"]["history"]["nodes"]) == 3
    with pytest.raises(UnknownObjectException):
        gh.requester.graphql_query(Q.BRANCH_HISTORY, {"owner": "acme", "name": "nope", "qualifiedName": "main",
                                                      "first": 3})


# ---------------------------------------------------------------------------------- errors
def test_first_over_100_is_githubs_excessive_pagination(sandbox):
    r = gql(sandbox, "CcwatchMergedPulls", {"owner": "acme", "name": "payments-api", "base": "main", "first": 101})
    body = r.json()
    assert r.status_code == 200 and "data" not in body  # checked before execution: GitHub needs it for the cost
    (err,) = body["errors"]
    assert err["type"] == "EXCESSIVE_PAGINATION" and err["path"] == ["repository", "pullRequests"]
    assert err["message"] == "Requesting 101 records on the `pullRequests` connection exceeds the `first` limit of 100 records."
    assert err["locations"][0]["line"] == 5
    assert r.headers["X-RateLimit-Used"] == "0"  # not charged


def test_missing_repository_is_not_found_with_null_repository(sandbox):
    body = gql(sandbox, "CcwatchMergedPulls", {"owner": "acme", "name": "gone", "base": "main", "first": 5}).json()
    assert body["data"]["repository"] is None and body["data"]["rateLimit"]["cost"] >= 1
    assert body["errors"] == [{"type": "NOT_FOUND", "path": ["repository"], "locations": [{"line": 4, "column": 3}],
                               "message": "Could not resolve to a Repository with the name 'acme/gone'."}]


def test_unknown_operation_missing_variable_bad_cursor_and_unknown_node(sandbox):
    r = gql(sandbox, "Other", {}, query="query Other { viewer { login } }")
    assert r.status_code == 200 and "data" not in r.json() and r.json()["errors"][0]["message"]
    r = gql(sandbox, "CcwatchMergedPulls", {"owner": "acme", "name": "payments-api", "first": 5}).json()
    assert r["errors"][0]["message"] == "Variable $base of type String! was provided invalid value" and "data" not in r
    r = gql(sandbox, "CcwatchMergedPulls", {"owner": "acme", "name": "payments-api", "base": "main", "first": 5,
                                            "after": "bm9wZQ=="}).json()
    assert r["errors"][0]["type"] == "INVALID_CURSOR_ARGUMENTS" and r["data"]["repository"] is None
    r = gql(sandbox, "CcwatchDeploymentStatuses", {"ids": ["D_nope"], "first": 5}).json()
    assert r["data"]["nodes"] == [None] and r["errors"][0]["type"] == "NOT_FOUND"
    assert r["errors"][0]["path"] == ["nodes", 0]
    r = gql(sandbox, "CcwatchBranchHistory", {"owner": "acme", "name": "payments-api", "qualifiedName": "main",
                                              "first": 1}, query=Q.BRANCH_HISTORY.replace("oid committedDate", "oid bogus"))
    assert "data" not in r.json() and r.json()["errors"][0]["extensions"]["code"] == "undefinedField"


def test_auth_like_rest(scenario):
    sc = {**scenario, "auth": {"github_token": "ghp_demo"}}
    v = {"owner": "acme", "name": "payments-api", "base": "main", "first": 1}
    with SandboxServer(sc) as sb:
        r = gql(sb, "CcwatchMergedPulls", v, headers={"Authorization": "token wrong"})
        assert r.status_code == 401 and r.json()["message"] == "Bad credentials"
        assert r.headers["X-RateLimit-Resource"] == "graphql"
        r = gql(sb, "CcwatchMergedPulls", v, headers={})
        assert r.status_code == 401 and r.json()["message"] == "This endpoint requires you to be authenticated."
        r = gql(sb, "CcwatchMergedPulls", v, headers={"Authorization": "bearer ghp_demo"})
        assert r.status_code == 200 and r.json()["data"]["rateLimit"]["used"] == 1  # 401s were not charged


# ---------------------------------------------------------------------------------- points
def test_point_cost_is_githubs_published_formula():
    # GitHub's worked example: 1 + 100 + 100*50 = 5,101 requests -> 51 points
    doc = "query { viewer { login repositories(first: 100) { edges { node { id issues(first: 50) " \
          "{ edges { node { id labels(first: 60) { edges { node { id name } } } } } } } } } } }"
    assert document_cost(doc, {}) == (51, 5101)
    # pullRequests 1 + per PR (labels, reviews, timelineItems, commits, checkSuites) 5*50 + checkRuns 50*SUITES_PAGE
    assert Q.SUITES_PAGE == 5  # the page sizes this worked example is written for (queries.py)
    assert document_cost(Q.MERGED_PULLS, {"first": 50}) == (5, 1 + 5 * 50 + 50 * Q.SUITES_PAGE) == (5, 501)
    assert point_cost(0) == 1 and point_cost(149) == 1 and point_cost(150) == 2


def test_graphql_is_its_own_rate_limit_resource(sandbox):
    core_before = int(requests.get(sandbox.url + "/user", headers=TOKEN, timeout=10).headers["X-RateLimit-Used"])
    r = gql(sandbox, "CcwatchMergedPulls", {"owner": "acme", "name": "payments-api", "base": "main", "first": 50})
    h, rate = r.headers, r.json()["data"]["rateLimit"]
    assert h["X-RateLimit-Resource"] == "graphql" and "ETag" not in h
    assert rate["cost"] == 5 and int(h["X-RateLimit-Used"]) == rate["used"] == 5  # 501 requests (see above)
    assert int(h["X-RateLimit-Remaining"]) == rate["remaining"] == 5000 - 5 and rate["limit"] == 5000
    r = gql(sandbox, "CcwatchBranchHistory", {"owner": "acme", "name": "payments-api", "qualifiedName": "main",
                                              "first": 100})
    assert r.json()["data"]["rateLimit"]["cost"] == 2 and r.headers["X-RateLimit-Used"] == "7"
    core_after = requests.get(sandbox.url + "/user", headers=TOKEN, timeout=10)
    assert int(core_after.headers["X-RateLimit-Used"]) == core_before + 1  # only the REST call itself
    limits = requests.get(sandbox.url + "/rate_limit", headers=TOKEN, timeout=10).json()["resources"]
    assert limits["graphql"]["used"] == 7


def test_exhausted_points_answer_rate_limited(scenario):
    sc = copy.deepcopy(scenario)
    sc["github"]["graphql_rate_limit"] = {"limit": 5000, "used": 4996}  # 4 left, a 50-PR page costs 5
    with SandboxServer(sc) as sb:
        v = {"owner": "acme", "name": "payments-api", "base": "main", "first": 50}
        r = gql(sb, "CcwatchMergedPulls", v)
        body = r.json()
        assert r.status_code == 200 and body["data"] is None and body["errors"][0]["type"] == "RATE_LIMITED"
        assert r.headers["X-RateLimit-Remaining"] == "4"  # refused, not charged
        ok = gql(sb, "CcwatchMergedPulls", {**v, "first": 1})
        assert ok.json()["data"]["rateLimit"]["remaining"] == 3


def test_fault_modes_apply_to_graphql(sandbox):
    sandbox.add_fault({"service": "github", "path": "^/graphql$", "mode": "status", "status": 502, "times": 1})
    v = {"owner": "acme", "name": "payments-api", "base": "main", "first": 1}
    assert gql(sandbox, "CcwatchMergedPulls", v).status_code == 502
    assert gql(sandbox, "CcwatchMergedPulls", v).status_code == 200
    assert [q["status"] for q in sandbox.requests if q["path"] == "/graphql"] == [502, 200]


# ---------------------------------------------------------------------------------- indexes
def _big_repo(n: int) -> dict:
    commits, pulls, reviews, runs, prev = [], [], {}, {}, None
    for i in range(n):
        ts = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=37 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        head, merge = f"{i:040x}", f"{i + 10**9:040x}"
        commits.append({"sha": merge, "parents": [prev] if prev else [], "author": "dev", "date": ts})
        prev = merge
        pulls.append({"number": i + 1, "user": "dev", "base": "main", "head_sha": head, "created_at": ts,
                      "closed_at": ts, "merged_at": ts, "merged_by": "lead", "merge_commit_sha": merge})
        reviews[str(i + 1)] = [{"id": 10**6 + i, "user": "lead", "state": "APPROVED", "commit_id": head,
                                "submitted_at": ts}]
        runs[head] = [{"id": 2 * 10**6 + i, "name": "test", "status": "completed", "conclusion": "success",
                       "started_at": ts, "completed_at": ts}]
    return {"github": {"repos": {"o/big": {"commits": commits, "pulls": pulls, "reviews": reviews, "check_runs": runs}}}}


def test_indexes_are_built_once_and_rebuilt_when_the_scenario_changes():
    sc = _big_repo(3000)
    with SandboxServer(sc, copy_scenario=False) as sb:
        v = {"owner": "o", "name": "big", "base": "main", "first": 100}
        first = gql(sb, "CcwatchMergedPulls", v).json()["data"]["repository"]["pullRequests"]
        ix = sb.github.graphql.index("o/big")
        cached = dict(ix._cache)
        second = gql(sb, "CcwatchMergedPulls", {**v, "after": first["pageInfo"]["endCursor"]}).json()
        assert sb.github.graphql.index("o/big") is ix and all(ix._cache[k] is cached[k] for k in cached)
        numbers = [n["number"] for n in first["nodes"] + second["data"]["repository"]["pullRequests"]["nodes"]]
        assert numbers == list(range(3000, 2800, -1))
        sc["github"]["repos"]["o/big"]["pulls"].append({**sc["github"]["repos"]["o/big"]["pulls"][-1], "number": 3001,
                                                        "updated_at": "2027-01-01T00:00:00Z"})
        again = gql(sb, "CcwatchMergedPulls", {**v, "first": 1}).json()["data"]["repository"]["pullRequests"]
        assert again["nodes"][0]["number"] == 3001 and sb.github.graphql.index("o/big") is not ix


# ---------------------------------------------------------------------------------- schema, revision 2 data
def test_validation_is_static_once_per_place_and_free(sandbox):
    """An undefined field is reported once, even where no object of its type is reached (an empty page)."""
    bad = Q.MERGED_PULLS.replace("nodes { id url detailsUrl", "nodes { databaseId bogus id url detailsUrl")
    r = gql(sandbox, "CcwatchMergedPulls", {"owner": "acme", "name": "payments-api", "base": "no-such-base",
                                            "first": 50}, query=bad)
    body = r.json()
    assert "data" not in body and r.headers["X-RateLimit-Used"] == "0"
    (err,) = body["errors"]  # CheckRun.databaseId exists (an Int); bogus does not
    assert err["message"] == "Field 'bogus' doesn't exist on type 'CheckRun'"
    assert err["extensions"] == {"code": "undefinedField", "typeName": "CheckRun", "fieldName": "bogus"}
    assert err["path"][:3] == ["query CcwatchMergedPulls", "repository", "pullRequests"] and err["path"][-1] == "bogus"


@pytest.mark.parametrize("args, type_, message", [
    ("", "MISSING_PAGINATION_BOUNDARIES",
     "You must provide a `first` or `last` value to properly paginate the `search` connection."),
    ("first: 1, last: 1", "INVALID_PAGINATION_ARGUMENTS",
     "Passing both `first` and `last` to paginate the `search` connection is not supported."),
    ("first: 0", "INVALID_PAGINATION_ARGUMENTS", "`first` on the `search` connection must be between 1 and 100."),
])
def test_pagination_bounds_are_checked_before_execution(sandbox, args, type_, message):
    doc = Q.MERGED_COUNT.replace("first: 1", args)
    body = gql(sandbox, "CcwatchMergedCount", {"q": "x"}, query=doc).json()
    assert "data" not in body and [(e["type"], e["message"], e["path"]) for e in body["errors"]] == [
        (type_, message, ["search"])]


def merged_count(sb, q: str) -> dict:
    return gql(sb, "CcwatchMergedCount", {"q": q}).json()


def test_merged_count_is_the_search_issue_count(sandbox, scenario):
    pulls = scenario["github"]["repos"]["acme/payments-api"]["pulls"]
    merged = [p["merged_at"] for p in pulls if p.get("merged_at") and p.get("base", "main") == "main"]
    body = merged_count(sandbox, Q.merged_count_query("acme/payments-api", "main", "2026-01-01", "2026-12-31"))
    assert body["data"]["search"] == {"issueCount": len(merged)} and body["data"]["rateLimit"]["cost"] == 1
    oct_ = sum("2026-10-01T00:00:00Z" <= m <= "2026-10-31T23:59:59Z" for m in merged)
    assert 0 < oct_ < len(merged)
    for q in (Q.merged_count_query("acme/payments-api", "main", "2026-10-01", "2026-10-31"),
              "merged:2026-10-01..2026-10-31 base:main is:merged is:pr repo:acme/payments-api",  # any order
              Q.merged_count_query("acme/payments-api", "main", "2026-10-01T00:00:00Z", "2026-10-31T23:59:59Z")):
        assert merged_count(sandbox, q)["data"]["search"]["issueCount"] == oct_, q
    first = min(merged)
    assert merged_count(sandbox, Q.merged_count_query("acme/payments-api", "main", first, first))[
        "data"]["search"]["issueCount"] == merged.count(first)  # both ends inclusive
    assert merged_count(sandbox, Q.merged_count_query("acme/payments-api", "release", "2026-01-01", "2026-12-31"))[
        "data"]["search"]["issueCount"] == 0


@pytest.mark.parametrize("q", ["repo:acme/payments-api is:pr is:merged base:main",          # no merged:
                               "repo:acme/payments-api is:pr is:merged base:main merged:>=2026-01-01",
                               "repo:acme/payments-api is:pr base:main merged:2026-01-01..2026-02-01",
                               "repo:acme/payments-api is:pr is:merged base:main merged:2026-01-01..2026-02-01 fix",
                               "is:pr is:merged"])
def test_any_other_search_is_an_error(sandbox, q):
    body = merged_count(sandbox, q)
    assert body["data"] is None  # search is non-null
    (err,) = body["errors"]
    assert err["path"] == ["search"] and "answers only the search" in err["message"]


def test_merge_queue_events_and_check_suite_apps_come_from_the_scenario(scenario):
    sc = copy.deepcopy(scenario)
    repo = sc["github"]["repos"]["acme/payments-api"]
    pr = next(p for p in repo["pulls"] if p.get("merged_at"))
    pr.update(queued_by="bob-rev", queued_at="2026-11-01T09:00:00Z")
    runs = repo["check_runs"][pr["head_sha"]]
    runs[0]["app"] = {"id": 987654, "slug": "acme-ci", "name": "Acme CI"}
    with SandboxServer(sc) as sb:
        nodes, _ = all_merged_pulls(sb, "acme/payments-api", pr.get("base", "main"))
        node = next(n for n in nodes if n["number"] == pr["number"])
        (event,) = node["timelineItems"]["nodes"]
        bob = rest(sb, "/users/bob-rev")
        assert event["createdAt"] == "2026-11-01T09:00:00Z" and event["id"]
        assert event["actor"] == {"__typename": "User", "login": "bob-rev", "id": bob["node_id"]}
        assert event["enqueuer"] == {"login": "bob-rev", "id": bob["node_id"]}
        assert node["timelineItems"]["pageInfo"] == {"hasPreviousPage": False}
        queued = {p["number"] for p in repo["pulls"] if p.get("queued_by")}  # the demo's own merge-queue PRs
        assert all(n["timelineItems"]["nodes"] == [] for n in nodes if n["number"] not in queued)
        suites = node["commits"]["nodes"][0]["commit"]["checkSuites"]["nodes"]
        assert {(s["app"]["databaseId"], s["app"]["slug"]) for s in suites} == {(987654, "acme-ci"), (15368, "github-actions")}
        rest_runs = rest(sb, f"/repos/acme/payments-api/commits/{pr['head_sha']}/check-runs", filter="all")["check_runs"]
        assert {(r["app"]["id"], r["app"]["slug"], r["app"]["node_id"]) for r in rest_runs} == {
            (s["app"]["databaseId"], s["app"]["slug"], s["app"]["id"]) for s in suites}


# ---------------------------------------------------------------------------------- org-wide search (issue #15)
def search_pages(sb, q: str, first: int = Q.PULLS_PAGE) -> tuple[list[dict], int, int]:
    """(every node, issueCount, pages) of CcwatchMergedPullsSearch paged to its end."""
    nodes, after, pages = [], None, 0
    while True:
        r = gql(sb, "CcwatchMergedPullsSearch", {"q": q, "first": first, "after": after})
        assert r.status_code == 200 and "errors" not in r.json(), r.text
        search = r.json()["data"]["search"]
        nodes += search["nodes"]
        pages += 1
        if not search["pageInfo"]["hasNextPage"]:
            return nodes, search["issueCount"], pages
        after = search["pageInfo"]["endCursor"]


def test_org_search_gives_the_nodes_the_repository_pages_give(sandbox):
    since, lo, hi = "2026-11-01T00:00:00+00:00", "2026-08-01T00:00:00+00:00", "2026-11-25T00:00:00+00:00"
    nodes, count, _ = search_pages(sandbox, Q.pulls_search_query("acme", since, lo, hi), first=7)
    assert count == len(nodes) > 0
    updated = [n["updatedAt"] for n in nodes]
    assert updated == sorted(updated, reverse=True), "sort:updated-desc"
    want = {}
    for full in REPOS:
        for base in {n["baseRefName"] for n in nodes}:
            for n in all_merged_pulls(sandbox, full, base)[0]:
                if n["updatedAt"] >= "2026-11-01T00:00:00Z" and "2026-08-01T00:00:00Z" <= n["mergedAt"] <= hi[:19] + "Z":
                    want[n["url"]] = n
    assert {n["url"]: n for n in nodes} == want, "the same PRs, node for node"
    assert gql(sandbox, "CcwatchMergedPullsSearch", {"q": Q.pulls_search_query("other", since, lo, hi),
                                                     "first": 50}).json()["data"]["search"]["issueCount"] == 0


def test_org_search_answers_the_first_1000_results_and_counts_them_all():
    sc = _big_repo(1100)
    with SandboxServer(sc, copy_scenario=False) as sb:
        q = Q.pulls_search_query("o", "2025-01-01T00:00:00+00:00", "2025-01-01T00:00:00+00:00",
                                 "2027-01-01T00:00:00+00:00")
        body = gql(sb, "CcwatchMergedPullsSearch", {"q": q, "first": 50}).json()
        assert body["data"]["rateLimit"]["cost"] == 5, "the same 5 points per 50 PRs as CcwatchMergedPulls"
        nodes, count, pages = search_pages(sb, q, first=100)
        assert count == 1100 and len(nodes) == Q.SEARCH_CAP and pages == 10
        assert [n["number"] for n in nodes] == list(range(1100, 100, -1))


@pytest.mark.parametrize("q", ["org:acme is:pr is:merged merged:2026-01-01..2026-02-01 sort:updated-desc",  # no updated:
                               "org:acme is:pr is:merged updated:2026-01-01 merged:2026-01-01..2026-02-01 sort:updated-desc",
                               "org:acme is:pr is:merged updated:>=2026-01-01 merged:2026-01-01..2026-02-01",  # no sort
                               "org:acme is:pr updated:>=2026-01-01 merged:2026-01-01..2026-02-01 sort:updated-desc"])
def test_any_other_org_search_is_an_error(sandbox, q):
    body = gql(sandbox, "CcwatchMergedPullsSearch", {"q": q, "first": 10}).json()
    assert body["data"] is None
    (err,) = body["errors"]
    assert err["path"] == ["search"] and "answers only the searches" in err["message"]
