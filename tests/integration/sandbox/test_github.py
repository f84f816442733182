"""The GitHub side of the sandbox, driven only through PyGithub (and the CLI through a subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

import pytest
from ccwatch.sandbox import SandboxServer, load_scenario
from github import Auth, BadCredentialsException, Github, GithubException, UnknownObjectException

from tests.helpers.paths import ROOT

TOKEN = "ghp_sandbox_test_token"


def sha(i: int) -> str:
    return f"{i:040x}"


def scenario() -> dict:
    # main: c1 <- c2 <- m3 (merge of c2 and side s10) <- c4 ; 150 closed PRs, the first merged by m3
    commits = [
        {"sha": sha(1), "parents": [], "author": "carol-dev", "committer": "carol-dev", "date": "2026-11-01T10:00:00Z", "message": "init"},
        {"sha": sha(10), "parents": [sha(1)], "author": "carol-dev", "committer": "carol-dev", "date": "2026-11-01T12:00:00Z", "message": "side"},
        {"sha": sha(2), "parents": [sha(1)], "author": "dave-ops", "committer": "dave-ops", "date": "2026-11-02T10:00:00Z", "message": "direct push"},
        {"sha": sha(3), "parents": [sha(2), sha(10)], "author": "carol-dev", "committer": "web-flow", "date": "2026-11-03T10:00:00Z", "message": "Merge pull request #1"},
        {"sha": sha(4), "parents": [sha(3)], "author": "carol-dev", "committer": "web-flow", "date": "2026-11-04T10:00:00Z", "message": "PAY-2 (#2)"},
    ]
    pulls = []
    for n in range(1, 151):
        day = 1 + (n % 20)
        pulls.append({
            "number": n, "title": f"change {n} [PAY-{n}]", "user": "carol-dev", "state": "closed",
            "labels": ["emergency"] if n == 1 else [], "base": "main", "head_ref": f"feat/{n}", "head_sha": sha(1000 + n),
            "created_at": f"2026-10-{day:02d}T{n % 24:02d}:00:00Z", "closed_at": "2026-11-03T10:00:00Z",
            "merged_at": "2026-11-03T10:00:00Z" if n <= 2 else None, "merged_by": "bob-rev" if n <= 2 else None,
            "merge_commit_sha": sha(3) if n == 1 else sha(4) if n == 2 else None,
        })
    return {
        "meta": {"name": "gh test", "as_of": "2026-11-25T00:00:00Z"},
        "auth": {"github_token": TOKEN},
        "github": {
            "users": {"carol-dev": {"id": 101, "type": "User"}, "bob-rev": {"id": 102, "type": "User"},
                      "github-actions[bot]": {"id": 41898282, "type": "Bot"}},
            "repos": {
                "acme/payments-api": {
                    "id": 5001, "default_branch": "main", "private": True,
                    "branches": {"main": {"protected": True}, "release": {"protected": True}, "dev": {"protected": False}},
                    "protection": {"main": {
                        "required_pull_request_reviews": {"required_approving_review_count": 1, "dismiss_stale_reviews": True},
                        "required_status_checks": {"strict": True, "contexts": ["test"]},
                        "enforce_admins": {"enabled": True}, "allow_force_pushes": {"enabled": False},
                        "allow_deletions": {"enabled": False}}, "release": "forbidden"},
                    "rules": {"main": [{"type": "pull_request", "ruleset_id": 7, "parameters": {"required_approving_review_count": 1}}]},
                    "rulesets": {"7": {"id": 7, "name": "main rules", "target": "branch", "enforcement": "active",
                                       "bypass_actors": [{"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}],
                                       "conditions": {"ref_name": {"include": ["~DEFAULT_BRANCH"], "exclude": []}},
                                       "rules": [{"type": "deletion"}]}},
                    "environments": {"production": {"protection_rules": [{"type": "required_reviewers", "reviewers": ["bob-rev"]}],
                                                    "deployment_branch_policy": {"protected_branches": True, "custom_branch_policies": False}}},
                    "commits": commits,
                    "pulls": pulls,
                    "reviews": {"1": [
                        {"id": 802, "user": "bob-rev", "state": "APPROVED", "commit_id": sha(1001), "submitted_at": "2026-11-02T12:00:00Z", "body": "ok"},
                        {"id": 801, "user": "bob-rev", "state": "CHANGES_REQUESTED", "commit_id": sha(1001), "submitted_at": "2026-11-02T09:00:00Z", "body": "no"}]},
                    "check_runs": {sha(1001): [
                        {"id": 9001, "name": "test", "status": "completed", "conclusion": "failure", "started_at": "2026-11-02T08:00:00Z", "completed_at": "2026-11-02T08:05:00Z", "app": "github-actions"},
                        {"id": 9002, "name": "test", "status": "completed", "conclusion": "success", "started_at": "2026-11-02T10:00:00Z", "completed_at": "2026-11-02T10:05:00Z", "app": "github-actions"},
                        {"id": 9003, "name": "build", "status": "completed", "conclusion": "success", "started_at": "2026-11-02T10:00:00Z", "completed_at": "2026-11-02T10:03:00Z", "app": "github-actions"}]},
                    "statuses": {sha(1001): [
                        {"id": 7001, "context": "ci/jenkins", "state": "pending", "created_at": "2026-11-02T08:00:00Z", "creator": "jenkins-bot"},
                        {"id": 7002, "context": "ci/jenkins", "state": "success", "created_at": "2026-11-02T09:00:00Z", "creator": "jenkins-bot"}]},
                    "deployments": [
                        {"id": 3001, "sha": sha(3), "ref": "main", "environment": "staging", "creator": "github-actions[bot]", "created_at": "2026-11-03T11:00:00Z",
                         "statuses": [{"id": 4001, "state": "success", "creator": "github-actions[bot]", "created_at": "2026-11-03T11:05:00Z"}]},
                        {"id": 3002, "sha": sha(3), "ref": "main", "environment": "production", "creator": "github-actions[bot]", "created_at": "2026-11-03T12:00:00Z",
                         "statuses": [{"id": 4002, "state": "in_progress", "creator": "github-actions[bot]", "created_at": "2026-11-03T12:01:00Z"},
                                      {"id": 4003, "state": "success", "creator": "github-actions[bot]", "created_at": "2026-11-03T12:05:00Z"}]},
                        {"id": 3003, "sha": sha(4), "ref": "main", "environment": "production", "creator": "dave-ops", "created_at": "2026-11-04T12:00:00Z",
                         "statuses": [{"id": 4004, "state": "failure", "creator": "dave-ops", "created_at": "2026-11-04T12:05:00Z"}]}],
                },
            },
        },
    }


@pytest.fixture(scope="module")
def server():
    with SandboxServer(scenario()) as srv:
        yield srv


@pytest.fixture(params=["root", "enterprise"])
def gh(request, server):
    base = server.url if request.param == "root" else server.url + "/api/v3"
    return Github(auth=Auth.Token(TOKEN), base_url=base, per_page=100, seconds_between_requests=0, seconds_between_writes=0)


def repo_of(gh):
    return gh.get_repo("acme/payments-api")


def test_pulls_paginate_across_pages_with_absolute_links(gh, server):
    server.clear_recordings()
    repo = repo_of(gh)
    pulls = list(repo.get_pulls(state="closed", base="main", sort="created", direction="desc"))
    assert len(pulls) == 150
    assert len({p.number for p in pulls}) == 150
    created = [p.created_at for p in pulls]
    assert created == sorted(created, reverse=True)
    pages = [r for r in server.requests if r["path"].endswith("/repos/acme/payments-api/pulls")]
    assert [r["query"].get("page") for r in pages] == [None, "2"]
    assert pages[1]["query"]["per_page"] == "100" and pages[1]["query"]["state"] == "closed"
    # the Link URLs keep the root the client used, so the second page went to the same prefix
    assert pages[0]["path"] == pages[1]["path"]
    assert pulls[0].url.startswith(repo.url)
    assert repo.get_pulls(state="open").totalCount == 0


def test_single_pull_has_merged_by_and_full_shapes(gh):
    pr = repo_of(gh).get_pull(1)
    assert pr.merged is True and pr.merged_by.login == "bob-rev"
    assert pr.user.login == "carol-dev" and pr.user.type == "User" and pr.user.id == 101
    assert [lb.name for lb in pr.labels] == ["emergency"]
    assert pr.head.sha == sha(1001) and pr.head.ref == "feat/1"
    assert pr.base.ref == "main" and pr.base.sha == sha(2)  # first parent of the merge commit
    assert pr.merge_commit_sha == sha(3)
    assert pr.html_url.endswith("/acme/payments-api/pull/1")
    unmerged = repo_of(gh).get_pull(3)
    assert unmerged.merged is False and unmerged.merged_by is None


def test_reviews_in_submission_order(gh):
    reviews = list(repo_of(gh).get_pull(1).get_reviews())
    assert [(r.id, r.state) for r in reviews] == [(801, "CHANGES_REQUESTED"), (802, "APPROVED")]
    assert reviews[1].commit_id == sha(1001) and reviews[1].user.login == "bob-rev"
    assert reviews[1].submitted_at.isoformat() == "2026-11-02T12:00:00+00:00"


def test_check_runs_latest_and_all(gh):
    repo = repo_of(gh)
    head = repo.get_pull(1).head.sha
    commit = repo.get_commit(head)  # a PR head commit, known to the sandbox through the PR
    all_runs = list(commit.get_check_runs(filter="all"))
    latest = list(commit.get_check_runs())
    assert sorted(r.id for r in all_runs) == [9001, 9002, 9003]
    assert sorted((r.name, r.conclusion) for r in latest) == [("build", "success"), ("test", "success")]
    assert all_runs[0].app.slug == "github-actions" and all_runs[0].head_sha == head
    statuses = list(commit.get_statuses())
    assert [(s.id, s.state) for s in statuses] == [(7002, "success"), (7001, "pending")]
    combined = commit.get_combined_status()
    assert combined.state == "success" and combined.total_count == 1


def test_commits_walk_all_parents_newest_first(gh):
    repo = repo_of(gh)
    commits = list(repo.get_commits(sha="main"))
    assert [c.sha for c in commits] == [sha(4), sha(3), sha(2), sha(10), sha(1)]
    assert [p.sha for p in commits[1].parents] == [sha(2), sha(10)]
    assert commits[0].author.login == "carol-dev" and commits[0].commit.committer.name == "GitHub"
    since = list(repo.get_commits(sha="main", since=datetime(2026, 11, 2, 12, tzinfo=UTC)))
    assert [c.sha for c in since] == [sha(4), sha(3)]
    assert [p.number for p in commits[1].get_pulls()] == [1]
    assert list(commits[2].get_pulls()) == []  # a direct push belongs to no PR
    with pytest.raises(GithubException) as exc:
        repo.get_commit("f" * 40)
    assert exc.value.status == 422


def test_deployments_filtered_newest_first_with_statuses(gh):
    repo = repo_of(gh)
    prod = list(repo.get_deployments(environment="production"))
    assert [d.id for d in prod] == [3003, 3002]
    assert prod[1].creator.login == "github-actions[bot]" and prod[1].creator.type == "Bot"
    assert [(s.id, s.state) for s in prod[1].get_statuses()] == [(4003, "success"), (4002, "in_progress")]
    assert [d.id for d in repo.get_deployments(sha=sha(3))] == [3002, 3001]


def test_branch_protection_present_missing_and_forbidden(gh):
    repo = repo_of(gh)
    main = repo.get_branch("main")
    assert main.protected is True and main.commit.sha == sha(4)
    prot = main.get_protection()
    assert prot.enforce_admins is True and prot.required_pull_request_reviews.dismiss_stale_reviews is True
    assert prot.required_status_checks.contexts == ["test"]
    with pytest.raises(GithubException) as missing:
        repo.get_branch("dev").get_protection()
    assert missing.value.status == 404 and not isinstance(missing.value, UnknownObjectException)
    assert missing.value.data["message"] == "Branch not protected"
    assert "documentation_url" in missing.value.data
    with pytest.raises(GithubException) as forbidden:
        repo.get_branch("release").get_protection()
    assert forbidden.value.status == 403
    with pytest.raises(GithubException) as nobranch:
        repo.get_branch("nope")
    assert nobranch.value.data["message"] == "Branch not found"


def test_rules_rulesets_and_environments(gh):
    repo = repo_of(gh)
    _, rules = repo._requester.requestJsonAndCheck("GET", f"{repo.url}/rules/branches/main")  # noqa: SLF001
    assert rules == [{"type": "pull_request", "ruleset_id": 7, "parameters": {"required_approving_review_count": 1},
                      "ruleset_source_type": "Repository", "ruleset_source": "acme/payments-api"}]
    _, ruleset = repo._requester.requestJsonAndCheck("GET", f"{repo.url}/rulesets/7")  # noqa: SLF001
    assert ruleset["bypass_actors"][0]["bypass_mode"] == "always" and ruleset["enforcement"] == "active"
    env = repo.get_environment("production")
    assert env.name == "production" and env.deployment_branch_policy.protected_branches is True
    assert env.protection_rules[0].type == "required_reviewers"
    assert env.protection_rules[0].reviewers[0].reviewer.login == "bob-rev"
    with pytest.raises(GithubException) as missing:
        _ = repo.get_environment("staging").name  # lazy object: the attribute access fetches it
    assert missing.value.status == 404
    assert [e.name for e in repo.get_environments()] == ["production"]


def test_errors_bad_credentials_and_unknown_repo(server):
    bad = Github(auth=Auth.Token("wrong"), base_url=server.url, seconds_between_requests=0, retry=None)
    with pytest.raises(BadCredentialsException) as exc:
        bad.get_repo("acme/payments-api")
    assert exc.value.status == 401 and exc.value.data["message"] == "Bad credentials"
    good = Github(auth=Auth.Token(TOKEN), base_url=server.url, seconds_between_requests=0)
    with pytest.raises(UnknownObjectException) as unknown:
        good.get_repo("acme/nope")
    assert unknown.value.data["message"] == "Not Found"


def test_etag_304_and_rate_limit_headers(server):
    g = Github(auth=Auth.Token(TOKEN), base_url=server.url, seconds_between_requests=0)
    requester = g.get_repo("acme/payments-api")._requester  # noqa: SLF001
    status, headers, _ = requester.requestJson("GET", "/repos/acme/payments-api/pulls/1")
    assert status == 200
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-used", "x-ratelimit-resource"):
        assert name in headers
    used = int(headers["x-ratelimit-used"])
    status2, headers2, _ = requester.requestJson("GET", "/repos/acme/payments-api/pulls/1")
    assert headers2["etag"] == headers["etag"]  # stable
    status3, headers3, body3 = requester.requestJson("GET", "/repos/acme/payments-api/pulls/1", headers={"If-None-Match": headers["etag"]})
    assert status3 == 304 and not body3
    assert int(headers3["x-ratelimit-used"]) == int(headers2["x-ratelimit-used"]) == used + 1  # a 304 is free
    core = g.get_rate_limit().resources.core
    assert core.limit == 5000 and core.remaining == 5000 - core.used


def test_request_log_never_holds_the_token(server):
    Github(auth=Auth.Token(TOKEN), base_url=server.url, seconds_between_requests=0).get_repo("acme/payments-api").get_pull(1)
    log = server.requests
    assert log and set(log[0]) == {"method", "path", "query", "status", "service"}
    assert {r["service"] for r in log} == {"github"}
    with urllib.request.urlopen(server.url + "/_sandbox/requests") as resp:
        served = resp.read().decode()
    assert TOKEN not in json.dumps(log) and TOKEN not in served
    assert json.loads(served)[-1]["path"] == "/repos/acme/payments-api/pulls/1"


def test_load_scenario_rejects_unknown_keys(tmp_path):
    with pytest.raises(ValueError, match="unknown top-level"):
        load_scenario({"github": {}, "gitlab": {}})
    path = tmp_path / "s.json"
    path.write_text(json.dumps(scenario()))
    assert load_scenario(path)["github"]["repos"]["acme/payments-api"]["id"] == 5001


def test_cli_serves_until_sigterm(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(scenario()))
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    proc = subprocess.Popen([sys.executable, "-m", "ccwatch.sandbox", "--scenario", str(path), "--ready-file", str(ready)],
                            stdout=subprocess.PIPE, env=env, text=True)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = ready.read_text().strip()
        assert url.startswith("http://127.0.0.1:")
        g = Github(auth=Auth.Token(TOKEN), base_url=url + "/api/v3", seconds_between_requests=0)
        assert g.get_repo("acme/payments-api").default_branch == "main"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert out.strip() == url


def test_repository_etag_moves_with_a_push_as_pushed_at_does():
    # GitHub's repository payload carries pushed_at (the last push to any branch), so a conditional
    # GET /repos/{o}/{r} answers 200 after a push and 304 only while nothing was pushed.
    with SandboxServer(scenario()) as srv:
        g = Github(auth=Auth.Token(TOKEN), base_url=srv.url, seconds_between_requests=0)
        req = g.get_repo("acme/payments-api")._requester  # noqa: SLF001
        _, headers, body = req.requestJson("GET", "/repos/acme/payments-api")
        assert json.loads(body)["pushed_at"] == "2026-11-04T10:00:00Z"  # the newest commit of the scenario
        status, _, _ = req.requestJson("GET", "/repos/acme/payments-api", headers={"If-None-Match": headers["etag"]})
        assert status == 304  # nothing pushed since
        srv.scenario["github"]["repos"]["acme/payments-api"]["commits"].append(
            {"sha": sha(11), "parents": [sha(10)], "author": "carol-dev", "committer": "carol-dev",
             "date": "2026-11-05T09:30:00Z", "message": "push to a side branch"})
        status, _, body = req.requestJson("GET", "/repos/acme/payments-api", headers={"If-None-Match": headers["etag"]})
        assert status == 200
        assert json.loads(body)["pushed_at"] == "2026-11-05T09:30:00Z"
