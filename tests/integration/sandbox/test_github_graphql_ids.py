"""Real id sizes (issue #12): GitHub's review, check-run, deployment, status, PR and user ids are
past 2**31, and GraphQL ``Int`` is 32-bit signed.  The API double enforces the published schema, so
contract revision 1's documents (which selected ``databaseId``) fail against it exactly as against
GitHub ("Int cannot represent non 32-bit signed integer value", the field null, an ``errors``
entry; ccwatch fails a fetch on any error), and the connector's documents get every id whole."""

from __future__ import annotations

import pytest
import requests
from ccwatch.ingest.github import queries as Q
from ccwatch.sandbox import SandboxServer

from tests.helpers.github_schema import revision1
from tests.helpers.paths import CONFIG, DEMO_SCENARIO

TOKEN = {"Authorization": "token ghp_demo"}
PR_ID, REVIEW_ID, RUN_ID, SUITE_ID = 2_987_654_321, 12_345_678_901, 23_456_789_012, 19_876_543_210
STATUS_ID, DEPLOY_ID, DSTATUS_ID = 34_567_890_123, 4_100_000_007, 45_678_901_234
DEV_ID, LEAD_ID = 3_000_000_001, 3_000_000_002
HEAD, MERGE = "a" * 40, "b" * 40


def scenario() -> dict:
    t = "2026-11-02T10:00:00Z"
    return {"github": {
        "users": {"dev": {"id": DEV_ID, "type": "User"}, "lead": {"id": LEAD_ID, "type": "User"}},
        "repos": {"o/r": {
            "commits": [{"sha": MERGE, "parents": [], "author": "dev", "committer": "web-flow", "date": t}],
            "pulls": [{"id": PR_ID, "number": 7, "title": "change", "user": "dev", "base": "main", "head_sha": HEAD,
                       "created_at": "2026-11-01T10:00:00Z", "closed_at": t, "merged_at": t, "merged_by": "lead",
                       "merge_commit_sha": MERGE}],
            "reviews": {"7": [{"id": REVIEW_ID, "user": "lead", "state": "APPROVED", "commit_id": HEAD,
                               "submitted_at": "2026-11-02T09:00:00Z"}]},
            "check_runs": {HEAD: [{"id": RUN_ID, "check_suite_id": SUITE_ID, "name": "test", "status": "completed",
                                   "conclusion": "success", "started_at": "2026-11-01T11:00:00Z",
                                   "completed_at": "2026-11-01T11:05:00Z", "app": "github-actions"}]},
            "statuses": {HEAD: [{"id": STATUS_ID, "context": "ci/jenkins", "state": "success",
                                 "created_at": "2026-11-01T11:06:00Z", "creator": "dev"}]},
            "deployments": [{"id": DEPLOY_ID, "sha": MERGE, "ref": "main", "environment": "production",
                             "creator": "lead", "created_at": "2026-11-02T11:00:00Z",
                             "statuses": [{"id": DSTATUS_ID, "state": "success", "creator": "lead",
                                           "created_at": "2026-11-02T11:05:00Z"}]}],
        }}}}


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(scenario()) as sb:
        yield sb


def post(sb, query: str, op: str, variables: dict) -> dict:
    r = requests.post(sb.url + "/graphql", json={"query": query, "operationName": op, "variables": variables},
                      headers=TOKEN, timeout=10)
    assert r.status_code == 200
    return r.json()


def rest(sb, path: str, **params):
    r = requests.get(sb.url + path, params=params, headers=TOKEN, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


PULLS = {"owner": "o", "name": "r", "base": "main", "first": 50}
INT_ERROR = "Int cannot represent non 32-bit signed integer value: {}"


def test_revision1_merged_pulls_fails_on_every_int_id(sandbox):
    body = post(sandbox, revision1(), "CcwatchMergedPulls", PULLS)
    node = "repository", "pullRequests", "nodes", 0
    run = (*node, "commits", "nodes", 0, "commit", "checkSuites", "nodes", 0, "checkRuns", "nodes", 0)
    assert sorted((tuple(e["path"]), e["message"]) for e in body["errors"]) == sorted([
        ((*node, "databaseId"), INT_ERROR.format(PR_ID)),
        ((*node, "author", "databaseId"), INT_ERROR.format(DEV_ID)),
        ((*node, "reviews", "nodes", 0, "databaseId"), INT_ERROR.format(REVIEW_ID)),
        ((*run, "databaseId"), INT_ERROR.format(RUN_ID))])
    pr = body["data"]["repository"]["pullRequests"]["nodes"][0]  # data is kept, the ids are null
    assert pr["databaseId"] is None and pr["reviews"]["nodes"][0]["databaseId"] is None
    assert pr["number"] == 7 and pr["reviews"]["nodes"][0]["state"] == "APPROVED"


def test_revision1_deployment_statuses_fails_on_the_deployment_id(sandbox):
    (dep,) = rest(sandbox, "/repos/o/r/deployments")
    body = post(sandbox, revision1(), "CcwatchDeploymentStatuses", {"ids": [dep["node_id"]], "first": 50})
    assert body["errors"] == [{"path": ["nodes", 0, "databaseId"], "locations": body["errors"][0]["locations"],
                               "message": INT_ERROR.format(DEPLOY_ID)}]
    assert body["data"]["nodes"][0]["databaseId"] is None and body["data"]["nodes"][0]["id"] == dep["node_id"]


def test_the_connectors_documents_get_every_id_whole(sandbox):
    body = post(sandbox, Q.MERGED_PULLS, "CcwatchMergedPulls", PULLS)
    assert "errors" not in body
    pr = body["data"]["repository"]["pullRequests"]["nodes"][0]
    rest_pr = rest(sandbox, "/repos/o/r/pulls/7")
    (review,) = rest(sandbox, "/repos/o/r/pulls/7/reviews")
    (run,) = rest(sandbox, f"/repos/o/r/commits/{HEAD}/check-runs", filter="all")["check_runs"]
    (status,) = rest(sandbox, f"/repos/o/r/commits/{HEAD}/statuses")
    assert pr["fullDatabaseId"] == str(PR_ID) == str(rest_pr["id"]) and pr["id"] == rest_pr["node_id"]
    gql_review = pr["reviews"]["nodes"][0]
    assert gql_review["fullDatabaseId"] == str(REVIEW_ID) == str(review["id"])  # BigInt: a string
    assert gql_review["id"] == review["node_id"]
    suite = pr["commits"]["nodes"][0]["commit"]["checkSuites"]["nodes"][0]
    assert suite["checkRuns"]["nodes"][0]["id"] == run["node_id"] and run["id"] == RUN_ID
    assert suite["checkRuns"]["nodes"][0]["url"] == run["html_url"]
    assert suite["app"]["databaseId"] == run["app"]["id"] == 15368 and suite["app"]["slug"] == run["app"]["slug"]
    (ctx,) = pr["commits"]["nodes"][0]["commit"]["status"]["contexts"]
    assert ctx["id"] == status["node_id"] and ctx["creator"]["login"] == status["creator"]["login"] == "dev"
    assert status["id"] == STATUS_ID and status["creator"]["id"] == DEV_ID
    (dep,) = rest(sandbox, "/repos/o/r/deployments")
    body = post(sandbox, Q.DEPLOYMENT_STATUSES, "CcwatchDeploymentStatuses", {"ids": [dep["node_id"]], "first": 50})
    assert "errors" not in body and dep["id"] == DEPLOY_ID
    node = body["data"]["nodes"][0]
    assert (node["id"], node["commitOid"], node["environment"], node["createdAt"]) == (
        dep["node_id"], dep["sha"], dep["environment"], dep["created_at"])
    (ds,) = rest(sandbox, f"/repos/o/r/deployments/{DEPLOY_ID}/statuses")
    assert node["statuses"]["nodes"][0]["id"] == ds["node_id"] and ds["id"] == DSTATUS_ID


def test_revision1_documents_fail_on_the_demo_org_too():
    """The demo now serves realistic ids (include/demo/generate.py): revision 1 could not fetch it."""
    with SandboxServer(DEMO_SCENARIO) as sb:
        body = post(sb, revision1(), "CcwatchMergedPulls", {**PULLS, "owner": "acme", "name": "payments-api"})
    assert body["errors"] and all(e["message"].startswith("Int cannot represent non 32-bit signed integer value: ")
                                  for e in body["errors"])


def test_the_fetch_and_load_keep_every_id(tmp_path):
    """The product's fetch (GraphQL batches) and load: rows keyed by the REST ids where GraphQL has
    them whole, derived keys where it has only node ids, and who reported each check."""
    from datetime import UTC, datetime

    from ccwatch.common.endpoints import Endpoint
    from ccwatch.ingest.github.fetch import fetch_github_repo
    from ccwatch.settings import RepoConfig, load_settings
    from ccwatch.warehouse.connection import connect
    from ccwatch.warehouse.normalize.graphql import DERIVED_BASE
    from ccwatch.warehouse.store import load_records

    settings = load_settings(CONFIG)
    with SandboxServer(scenario()) as sb:
        records = list(fetch_github_repo(settings, Endpoint(sb.url, token="ghp_demo"), datetime(2026, 11, 25, tzinfo=UTC),
                                         RepoConfig(repo="o/r", production_branch="main",
                                                    production_environments=("production",))))
    kinds = {r.kind for r in records}
    assert {"gql_pull", "gql_commit_pulls", "gql_deployment_statuses"} <= kinds
    assert not kinds & {"pull", "reviews", "check_runs", "statuses", "deployment_statuses"}  # no REST fallback
    con = connect(str(tmp_path / "w.duckdb"))
    load_records(con, records, settings)
    assert con.execute("SELECT review_id FROM reviews").fetchall() == [(REVIEW_ID,)]
    runs = con.execute("SELECT kind, check_id, app_id, app_slug, creator_login FROM checks ORDER BY kind").fetchall()
    assert [(k, a, s, c) for k, _, a, s, c in runs] == [("check_run", 15368, "github-actions", None),
                                                        ("status", None, None, "dev")]
    assert all(DERIVED_BASE <= cid < 2**63 for _, cid, *_ in runs)
    assert con.execute("SELECT deployment_id, state FROM deployment_statuses").fetchall() == [(DEPLOY_ID, "success")]
    con.close()
