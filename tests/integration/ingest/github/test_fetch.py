"""The GitHub fetch of each repository through the real PyGithub client against the API double."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import UTC, datetime

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest.errors import SourceError
from ccwatch.sandbox import SandboxResponse, SandboxServer
from ccwatch.settings import GithubConfig, RepoConfig, load_settings
from ccwatch.warehouse.connection import connect
from ccwatch.warehouse.store import load_records
from github import GithubRetry

from tests.helpers.github_fetch import fetch_github
from tests.helpers.paths import CONFIG

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)  # window (30 days): from 2026-10-26T00:00Z
TOKEN = "ghp_sandbox_secret_123"
PAY, WEB = "acme/payments-api", "acme/web-frontend"
A, B, C, D, E = ("a" * 40, "b" * 40, "c" * 40, "d" * 40, "e" * 40)


def scenario():
    old_prs = [{"number": 100 + i, "title": f"old {i}", "user": "carol-dev", "state": "closed", "base": "main",
                "head_ref": f"old/{i}", "head_sha": f"{i:040x}", "created_at": "2026-06-01T00:00:00Z",
                "closed_at": "2026-06-02T00:00:00Z", "merged_at": "2026-06-02T00:00:00Z", "merged_by": "bob-rev",
                "merge_commit_sha": None} for i in range(150)]
    pay = {
        "id": 5001, "default_branch": "main", "private": True,
        "branches": {"main": {"protected": True}},
        "protection": {},  # main absent -> 404 "Branch not protected"
        "rules": {"main": [{"type": "pull_request", "ruleset_id": 7, "parameters": {
            "required_approving_review_count": 1, "dismiss_stale_reviews_on_push": True,
            "require_code_owner_review": False, "require_last_push_approval": False,
            "required_review_thread_resolution": False}}]},
        "rulesets": {"7": {"id": 7, "name": "protect main", "target": "branch", "enforcement": "active",
                           "bypass_actors": [], "conditions": {"ref_name": {"include": ["~DEFAULT_BRANCH"], "exclude": []}},
                           "rules": [{"type": "pull_request"}]}},
        "environments": {"production": {"protection_rules": [], "deployment_branch_policy": {
            "protected_branches": True, "custom_branch_policies": False}}},
        "commits": [
            {"sha": A, "parents": [], "author": "carol-dev", "committer": "web-flow", "date": "2026-09-01T10:00:00Z",
             "message": "initial"},
            {"sha": B, "parents": [A], "author": "carol-dev", "committer": "carol-dev", "date": "2026-11-01T10:00:00Z",
             "message": "feat: login"},
            {"sha": C, "parents": [A, B], "author": "bob-rev", "committer": "web-flow", "date": "2026-11-02T10:00:00Z",
             "message": "Merge pull request #12"},
            {"sha": D, "parents": [C], "author": "ops-dave", "committer": "ops-dave", "date": "2026-11-03T10:00:00Z",
             "message": "hotfix pushed directly"},
        ],
        "pulls": old_prs + [
            {"number": 12, "title": "FEAT: add login [PAY-7]", "user": "carol-dev", "state": "closed", "labels": [],
             "base": "main", "head_ref": "feat/login", "head_sha": B, "created_at": "2026-10-30T09:00:00Z",
             "closed_at": "2026-11-02T10:00:00Z", "merged_at": "2026-11-02T10:00:00Z", "merged_by": "bob-rev",
             "merge_commit_sha": C},
            {"number": 13, "title": "abandoned", "user": "carol-dev", "state": "closed", "base": "main",
             "head_ref": "x", "head_sha": E, "created_at": "2026-11-01T09:00:00Z", "closed_at": "2026-11-04T10:00:00Z",
             "merged_at": None, "merged_by": None, "merge_commit_sha": None},
        ],
        "reviews": {"12": [
            {"id": 801, "user": "eve", "state": "COMMENTED", "commit_id": B, "submitted_at": "2026-11-01T11:00:00Z"},
            {"id": 802, "user": "bob-rev", "state": "APPROVED", "commit_id": B, "submitted_at": "2026-11-01T12:00:00Z"}]},
        "check_runs": {B: [
            {"id": 9001, "name": "test", "status": "completed", "conclusion": "failure",
             "started_at": "2026-11-01T10:01:00Z", "completed_at": "2026-11-01T10:05:00Z", "app": "github-actions"},
            {"id": 9002, "name": "test", "status": "completed", "conclusion": "success",
             "started_at": "2026-11-01T10:10:00Z", "completed_at": "2026-11-01T10:15:00Z", "app": "github-actions"}]},
        "statuses": {B: [{"id": 7001, "context": "ci/jenkins", "state": "success", "created_at": "2026-11-01T10:20:00Z",
                          "creator": "jenkins-bot"}]},
        "deployments": [
            {"id": 3000, "sha": A, "ref": "main", "environment": "production", "creator": "ops-dave",
             "created_at": "2026-09-02T10:00:00Z", "statuses": [
                 {"id": 4000, "state": "success", "creator": "ops-dave", "created_at": "2026-09-02T10:01:00Z"}]},
            {"id": 3001, "sha": C, "ref": "main", "environment": "staging", "creator": "github-actions[bot]",
             "created_at": "2026-11-02T11:00:00Z", "statuses": [
                 {"id": 4001, "state": "success", "creator": "github-actions[bot]", "created_at": "2026-11-02T11:05:00Z"}]},
            {"id": 3002, "sha": D, "ref": "main", "environment": "production", "creator": "github-actions[bot]",
             "created_at": "2026-11-03T12:00:00Z", "statuses": [
                 {"id": 4002, "state": "in_progress", "creator": "github-actions[bot]", "created_at": "2026-11-03T12:00:10Z"},
                 {"id": 4003, "state": "success", "creator": "github-actions[bot]", "created_at": "2026-11-03T12:05:00Z"}]},
        ],
    }
    web = {"id": 5002, "default_branch": "main", "private": True, "branches": {"main": {"protected": True}},
           "protection": {"main": "forbidden"}, "rules": {}, "rulesets": {}, "environments": {},
           "commits": [{"sha": "f" * 40, "parents": [], "author": "carol-dev", "committer": "web-flow",
                        "date": "2026-11-10T10:00:00Z", "message": "init"}],
           "pulls": [], "reviews": {}, "check_runs": {}, "statuses": {}, "deployments": []}
    return {
        "meta": {"name": "connector test", "as_of": "2026-11-25T00:00:00Z"},
        "auth": {"github_token": TOKEN},
        "github": {"users": {"carol-dev": {"id": 101, "type": "User"}, "bob-rev": {"id": 102, "type": "User"},
                             "github-actions[bot]": {"id": 41898282, "type": "Bot"}},
                   "repos": {PAY: pay, WEB: web}},
    }


@pytest.fixture(scope="module")
def settings():
    base = load_settings(str(CONFIG))
    repos = (RepoConfig(PAY, "main", ("production",), ("staging",), ("test",)),
             RepoConfig(WEB, "main", ("production",)))
    return replace(base, lookback_days=30, github=replace(base.github, repositories=repos))


@pytest.fixture(scope="module")
def server():
    with SandboxServer(scenario()) as srv:
        yield srv


@pytest.fixture(scope="module")
def fetched(server, settings):
    server.clear_recordings()
    records = list(fetch_github(settings, Endpoint(server.url, token=TOKEN), AS_OF))
    return records, list(server.requests)


def gql_requests(requests, op, repo=None):
    return [q for q in requests if (q.get("graphql") or {}).get("operationName") == op
            and (repo is None or q["graphql"].get("name") == repo.split("/")[1])]


def by_kind(records, kind):
    return {r.natural_key: r for r in records if r.kind == kind}


def test_only_prs_merged_in_window_with_their_evidence(fetched):
    records, requests = fetched
    # one PullRequest node with its reviews, head checks and statuses
    pulls = by_kind(records, "gql_pull")
    assert list(pulls) == [f"{PAY}#12"]  # unmerged #13 and the 150 old merges are skipped
    node = pulls[f"{PAY}#12"].payload
    assert node["mergedBy"]["login"] == "bob-rev"
    assert [r["state"] for r in node["reviews"]["nodes"]] == ["COMMENTED", "APPROVED"]
    head = node["commits"]["nodes"][-1]["commit"]
    assert head["oid"] == B
    runs = [r for s in head["checkSuites"]["nodes"] for r in s["checkRuns"]["nodes"]]
    assert sorted(r["conclusion"] for r in runs) == ["FAILURE", "SUCCESS"]  # filterBy ALL keeps the re-run
    assert head["status"]["contexts"][0]["context"] == "ci/jenkins"
    # no REST piece was needed: nothing overflowed
    assert not {"pull", "reviews", "check_runs", "statuses"} & {r.kind for r in records}
    # sorted by update, newest first: paging stops at the window start (152 PRs, 50 a page)
    assert len(gql_requests(requests, "CcwatchMergedPulls", PAY)) == 1
    assert not [q for q in requests if q["path"] == f"/repos/{PAY}/pulls"]


def test_first_parent_commits_and_their_pulls(fetched):
    records, requests = fetched
    commits = by_kind(records, "commits")[f"{PAY}:main"]
    assert [c["sha"] for c in commits.payload] == [D, C, B]  # as listed: since the window start, git-log order
    assert "since=2026-10-26T00%3A00%3A00Z" in commits.url and "sha=main" in commits.url
    keys = {f"{PAY}@{C}", f"{PAY}@{D}", f"{WEB}@{'f' * 40}"}  # B is not first-parent
    cp = by_kind(records, "gql_commit_pulls")
    assert set(cp) == keys and not by_kind(records, "commit_pulls")
    assert [p["number"] for p in cp[f"{PAY}@{C}"].payload["associatedPullRequests"]["nodes"]] == [12]
    assert cp[f"{PAY}@{D}"].payload["associatedPullRequests"]["nodes"] == []
    assert not [q for q in requests if q["path"].endswith("/pulls") and "/commits/" in q["path"]]


def test_deployments_of_both_environments_in_window(fetched):
    from ccwatch.sandbox.render import node_id

    records, requests = fetched
    deps = by_kind(records, "deployments")
    assert [d["id"] for d in deps[f"{PAY}:production"].payload] == [3002]  # 3000 predates the window
    assert [d["id"] for d in deps[f"{PAY}:staging"].payload] == [3001]
    keys = {f"{PAY}/deployments/3001", f"{PAY}/deployments/3002"}
    sts = by_kind(records, "gql_deployment_statuses")
    assert set(sts) == keys and not by_kind(records, "deployment_statuses")
    assert [s["state"] for s in sts[f"{PAY}/deployments/3002"].payload["statuses"]["nodes"]] == [
        "SUCCESS", "IN_PROGRESS"]
    asked = [i for q in gql_requests(requests, "CcwatchDeploymentStatuses") for i in q["graphql"]["ids"]]
    assert sorted(asked) == sorted(node_id("Deployment", i) for i in (3001, 3002))
    assert not any(q["path"].endswith("/statuses") and "/deployments/" in q["path"] for q in requests)


def test_protection_answers_are_evidence(fetched):
    records, _ = fetched
    prot = by_kind(records, "branch_protection")
    assert (prot[f"{PAY}:main"].status_code, prot[f"{PAY}:main"].payload["message"]) == (404, "Branch not protected")
    assert prot[f"{WEB}:main"].status_code == 403
    assert by_kind(records, "branch_rules")[f"{PAY}:main"].payload[0]["ruleset_id"] == 7
    assert by_kind(records, "ruleset")[f"{PAY}/rulesets/7"].payload["bypass_actors"] == []
    envs = by_kind(records, "environment")
    assert envs[f"{PAY}:production"].status_code == 200 and envs[f"{WEB}:production"].status_code == 404
    assert f"{PAY}:main" not in by_kind(records, "branch")  # (stop 31) the tip: the GraphQL node's


def test_records_carry_no_credentials_and_have_etags(fetched):
    records, _ = fetched
    blob = json.dumps([asdict(r) for r in records])
    assert TOKEN not in blob
    assert all(r.url.startswith("http://127.0.0.1:") for r in records)
    assert by_kind(records, "branch_rules")[f"{PAY}:main"].etag


def test_the_repository_settings_come_from_graphql_not_rest(fetched):
    """(issue #15) GitHub answers REST ``GET /repos/{o}/{r}`` 200 after every push (``pushed_at``):
    the settings come from a GraphQL Repository node instead (``gql_repository``, asked alone here,
    org-wide by the pipeline), with the values the REST body gave."""
    records, requests = fetched
    assert not [q for q in requests if q["service"] == "github" and q["path"] in (f"/repos/{PAY}", f"/repos/{WEB}")]
    assert "repo" not in {r.kind for r in records}
    nodes = {k: r.payload for k, r in by_kind(records, "gql_repository").items()}
    assert set(nodes) == {PAY, WEB}
    pay = nodes[PAY]
    assert (pay["nameWithOwner"], pay["visibility"], pay["isPrivate"], pay["isArchived"]) == (PAY, "PRIVATE", True, False)
    assert pay["defaultBranchRef"] == {"name": "main"} and isinstance(pay["id"], str) and pay["id"]
    assert pay["pushedAt"] == "2026-11-03T10:00:00Z"  # the newest commit of any branch, as REST's pushed_at
    assert (pay["mergeCommitAllowed"], pay["squashMergeAllowed"], pay["viewerPermission"]) == (True, True, "ADMIN")
    assert len(gql_requests(requests, "CcwatchRepository")) == 3  # web-frontend's asked again without its flag
    assert by_kind(records, "gql_repository")[PAY].url.endswith("/graphql#CcwatchRepository")


def test_the_branch_tip_and_flag_come_from_graphql_not_rest(fetched):
    """(issue #15, stop 31) The production branch's tip and what REST's ``"protected"`` flag says
    come with the repository's GraphQL node (``productionBranch``): no REST ``GET /branches/{b}``.
    payments-api is protected by a ruleset only (``rules``); web-frontend's token cannot read classic
    protection, so GitHub answers FORBIDDEN for ``branchProtectionRule``: its node is asked again
    without the flag (unknown), and its protection, a 403, needs no REST branch either."""
    records, requests = fetched
    nodes = {k: r.payload for k, r in by_kind(records, "gql_repository").items()}
    assert nodes[PAY]["productionBranch"] == {"name": "main", "target": {"oid": D}, "branchProtectionRule": None,
                                             "rules": {"totalCount": 1}}
    assert nodes[WEB]["productionBranch"] == {"name": "main", "target": {"oid": "f" * 40}}
    assert not [q for q in requests if q["service"] == "github"
                and q["path"] in (f"/repos/{PAY}/branches/main", f"/repos/{WEB}/branches/main")]
    assert "branch" not in {r.kind for r in records}
    assert len(gql_requests(requests, "CcwatchRepository", WEB)) == 2


def test_fetched_records_load_into_the_warehouse(fetched, settings, tmp_path):
    con = connect(str(tmp_path / "wh.duckdb"))
    load_records(con, fetched[0], settings)
    assert con.execute("SELECT sha, position, pr_numbers FROM commits WHERE repo = ? ORDER BY position",
                       [PAY]).fetchall() == [(C, 0, [12]), (D, 1, [])]
    assert con.execute("SELECT rule_type, source FROM branch_rules WHERE repo = ? ORDER BY all",
                       [PAY]).fetchall() == [("not_protected", "classic"), ("pull_request", "ruleset")]
    assert con.execute("SELECT rule_type FROM branch_rules WHERE repo = ?", [WEB]).fetchall() == [("unreadable",)]
    # no REST branch for web-frontend (stop 31): its line starts at the GraphQL node's tip
    assert con.execute("SELECT sha, position FROM commits WHERE repo = ?", [WEB]).fetchall() == [("f" * 40, 0)]
    assert con.execute("SELECT count(*) FROM checks").fetchone() == (3,)
    con.close()


# --- errors: a partial fetch must never look complete ---------------------------------


def drain(settings, endpoint, **kw):
    return list(fetch_github(settings, endpoint, AS_OF, **kw))


def test_bad_token_raises_without_leaking_it(server, settings):
    with pytest.raises(SourceError) as err:
        drain(settings, Endpoint(server.url, token="ghp_wrong_token_456"))
    # the first request of a repository's fetch: its settings (GraphQL, issue #15)
    assert "401" in str(err.value) and PAY in str(err.value) and "(CcwatchRepository)" in str(err.value)
    assert "ghp_wrong_token_456" not in str(err.value)


def test_unknown_repository_raises(server, settings):
    s = replace(settings, github=GithubConfig(repositories=(RepoConfig("acme/nope", "main", ("production",)),)))
    with pytest.raises(SourceError, match=r"GitHub acme/nope: .*NOT_FOUND: Could not resolve to a Repository.*"
                                          r"acme/nope does not exist or the token cannot see it"):
        drain(s, Endpoint(server.url, token=TOKEN))


def test_a_production_branch_that_does_not_exist_raises_naming_it(server, settings):
    """(stop 31) GitHub answers ``ref: null`` for a branch that does not exist (REST's branch was a 404)."""
    s = replace(settings, github=GithubConfig(repositories=(RepoConfig(PAY, "mian", ("production",)),)))
    with pytest.raises(SourceError, match=r"GitHub acme/payments-api: the production branch mian was not found "
                                          r".*refs/heads/mian.*production_branch"):
        drain(s, Endpoint(server.url, token=TOKEN))


def fault(server, predicate, response):
    def hook(service, req, resp):
        return response() if service == "github" and predicate(req) else None
    server.fault_hook = hook


def test_server_error_after_retries_raises(server, settings):
    # the PR evidence: GraphQL's PR batch
    fault(server, lambda req: req.path.endswith("/graphql") and b"CcwatchMergedPulls" in req.body,
          lambda: SandboxResponse(status=502, data={"message": "Server Error"}))
    try:
        server.clear_recordings()
        with pytest.raises(SourceError, match=r"acme/payments-api.*graphql \(CcwatchMergedPulls\).*HTTP 502"):
            drain(settings, Endpoint(server.url, token=TOKEN),
                  retry=GithubRetry(total=2, backoff_factor=0, status_forcelist=[502], raise_on_status=False,
                                    allowed_methods=None))
        assert len(gql_requests(server.requests, "CcwatchMergedPulls", PAY)) == 3  # first try + 2 retries
    finally:
        server.fault_hook = None


def test_unexpected_status_on_data_endpoint_and_bad_json_raise(server, settings):
    fault(server, lambda req: req.path.endswith("/protection"),
          lambda: SandboxResponse(status=500, data={"message": "boom"}))
    try:
        with pytest.raises(SourceError, match=r"protection answered HTTP 500"):
            drain(settings, Endpoint(server.url, token=TOKEN), retry=None)
        fault(server, lambda req: req.path.endswith("/deployments"),
              lambda: SandboxResponse(status=200, raw=b"<html>proxy</html>", content_type="text/html"))
        with pytest.raises(SourceError, match=r"deployments.*not JSON"):
            drain(settings, Endpoint(server.url, token=TOKEN), retry=None)
    finally:
        server.fault_hook = None


def test_enterprise_base_url_with_api_prefix(server, settings, fetched):
    server.clear_recordings()
    records = drain(settings, Endpoint(server.url + "/api/v3", token=TOKEN))
    assert sorted((r.kind, r.natural_key) for r in records) == sorted((r.kind, r.natural_key) for r in fetched[0])
    # REST under the Enterprise root /api/v3, GraphQL at Enterprise's /api/graphql
    assert all(q["path"].startswith("/api/v3/") or q["path"] == "/api/graphql" for q in server.requests)
    assert any(q["path"] == "/api/graphql" for q in server.requests)
