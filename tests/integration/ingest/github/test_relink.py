"""Commits whose PR link was missing at their first fetch are asked again while in the overlap.

GitHub indexes a commit's associated PRs (``/commits/{sha}/pulls``, GraphQL
``associatedPullRequests``) asynchronously: right after a merge the answer may still be empty.
The nightly incremental fetch revalidates the commits listing with If-None-Match; when it answers
304 the first-parent commits of the overlap that had no merged PR at the last load
(``RepoPlan.unlinked``) still have their PRs asked again (in one history request: ``CcwatchBranchHistories``, org-wide),
until they leave the overlap.

The index lag is played by a ``fault_hook`` of the API double that empties the association of
chosen shas (in the GraphQL history nodes, and in the REST list of the fallback), exactly as
GitHub answers before its index caught up.  The scenario gets a rebase-merged PR (its first commit is linked to
the PR only through the association, not as ``merge_commit_sha``) and a real direct push.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from ccwatch import pipeline as p
from ccwatch.common.endpoints import Endpoint
from ccwatch.common.paths import state_path
from ccwatch.common.times import parse_as_of, parse_utc
from ccwatch.demo_env import DEMO_AUTH
from ccwatch.ingest import plan as wm
from ccwatch.ingest.github.conditional import relink
from ccwatch.ingest.state import STATE_VERSION
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import load_settings
from ccwatch.warehouse import connection, ingest_state

from tests.helpers.paths import CONFIG, DEMO_SCENARIO
from tests.helpers.ports import held_port

BASE = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
BASE["auth"] = dict(DEMO_AUTH)
D1, D2, D3, D4 = (parse_as_of(d) for d in ("2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"))
PAY, WEB = "acme/payments-api", "acme/web-frontend"
R1, R2, HEAD, PUSH = "a1" * 20, "b2" * 20, "c3" * 20, "d4" * 20
PR = 158


def scenario() -> dict:
    """The demo org plus, on payments-api's main after #157: PR #158 rebase-merged as R1, R2
    (R2 is its merge_commit_sha, R1 is linked to it only through the association), then a direct
    push PUSH (no PR at all)."""
    s = copy.deepcopy(BASE)
    repo = s["github"]["repos"][PAY]
    tip = repo["commits"][-1]["sha"]
    repo["commits"] += [
        {"sha": R1, "parents": [tip], "author": "grace-dev", "committer": "web-flow",
         "date": "2026-11-24T12:00:00Z", "message": "wallet export: model [PAY-332]"},
        {"sha": R2, "parents": [R1], "author": "grace-dev", "committer": "web-flow",
         "date": "2026-11-24T12:00:01Z", "message": "wallet export: endpoint [PAY-332]"},
        {"sha": PUSH, "parents": [R2], "author": "carol-dev", "committer": "carol-dev",
         "date": "2026-11-24T13:00:00Z", "message": "bump wallet export limit"},
    ]
    repo["pulls"].append({
        "number": PR, "title": "FEAT: wallet export [PAY-332]", "user": "grace-dev", "state": "closed",
        "labels": [], "base": "main", "head_ref": "feat/wallet-export", "head_sha": HEAD, "commit_shas": [R1, R2],
        "body": "", "created_at": "2026-11-24T10:00:00Z", "closed_at": "2026-11-24T12:00:01Z",
        "merged_at": "2026-11-24T12:00:01Z", "merged_by": "carol-dev", "merge_commit_sha": R2})
    repo["reviews"][str(PR)] = [{"id": 990001, "user": "carol-dev", "state": "APPROVED", "commit_id": HEAD,
                                 "submitted_at": "2026-11-24T11:00:00Z", "body": "LGTM"}]
    return s


SCENARIO = scenario()


def index_lag(*shas: str):
    """A fault hook: GitHub has not indexed the PRs of ``shas`` yet (empty association)."""
    def hook(service, req, resp):
        if service != "github" or not isinstance(resp.data, (dict, list)) or resp.raw is not None:
            return None
        if req.path.endswith("/graphql") and isinstance(resp.data, dict):
            data = copy.deepcopy(resp.data)
            # the per-repository query's ``repository``, or each repository of an org-wide batch (r0, r1 ...)
            repos = [v for k, v in (data.get("data") or {}).items() if k == "repository" or re.fullmatch(r"r\d+", k)]
            hists = [(((repo or {}).get("ref") or {}).get("target") or {}).get("history") or {} for repo in repos]
            hit = [n for hist in hists for n in hist.get("nodes") or [] if isinstance(n, dict) and n.get("oid") in shas]
            for n in hit:
                n["associatedPullRequests"] = {"nodes": []}
            return replace(resp, data=data) if hit else None
        m = re.search(r"/commits/([0-9a-f]{40})/pulls$", req.path)
        if m and m.group(1) in shas:
            return replace(resp, data=[], headers={k: v for k, v in resp.headers.items() if k.lower() != "etag"})
        return None
    return hook


@pytest.fixture(scope="module")
def settings():
    return load_settings(str(CONFIG))


def run_day(settings, as_of, home, hook=None, scen=SCENARIO) -> list[dict]:
    with SandboxServer(scen, hold=held_port()) as server:
        server.fault_hook = hook
        gh = Endpoint(server.url + "/api/v3", token=DEMO_AUTH["github_token"])
        jr = Endpoint(server.url, login=DEMO_AUTH["jira_user"], token=DEMO_AUTH["jira_token"])
        p.ingest_github(settings, gh, as_of, home)
        p.ingest_jira(settings, jr, as_of, home)
        p.resolve_tickets(settings, jr, as_of, home)
        github = [r for r in server.requests if r["service"] == "github"]
    p.load_warehouse(settings, as_of, home)
    p.build_facts(settings, as_of, home)
    p.evaluate_controls(settings, as_of, home)
    return github


def query(home: Path, sql: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def changes(home: Path, as_of) -> dict[str, str]:
    """change_id -> CC8.1-10 status of the run."""
    return dict(query(home, "SELECT change_id, status FROM control_results WHERE as_of = ? AND control_id = "
                            "'CC8.1-10'", [as_of.replace(tzinfo=None)]))


def pr_numbers(home: Path, sha: str) -> list[int]:
    return query(home, "SELECT coalesce(pr_numbers, []) FROM commits WHERE repo = ? AND sha = ?", [PAY, sha])[0][0]


def history_queries(reqs: list[dict], name: str) -> int:
    """History requests holding the repository ``name``: its own query, or an org-wide batch (issue #15)."""
    def holds(g: dict) -> bool:
        if g.get("operationName") == "CcwatchBranchHistory":
            return g.get("name") == name
        return g.get("operationName") == "CcwatchBranchHistories" and f"acme/{name}" in (g.get("repos") or [])
    return sum(1 for r in reqs if holds(r.get("graphql") or {}))


def commit_pulls_gets(reqs: list[dict], repo: str) -> list[str]:
    return [r["path"].rsplit("/", 2)[-2] for r in reqs if re.search(rf"/repos/{repo}/commits/[0-9a-f]+/pulls$", r["path"])]


def commits_listing(reqs: list[dict], repo: str) -> list[int]:
    return [r["status"] for r in reqs if r["path"].endswith(f"/repos/{repo}/commits")]


def unlinked(home: Path, repo: str) -> list[str]:
    state = json.loads(state_path(home).read_text(encoding="utf-8"))
    return [u["sha"] for u in state["github"][repo]["unlinked"]]


# --- through the double ----------------------------------------------------------------------


def test_a_link_missing_at_first_fetch_is_found_on_a_304_night(settings, tmp_path):
    home = tmp_path / "home"
    lag = index_lag(R1)
    run_day(settings, D1, home, lag)  # full
    assert pr_numbers(home, R1) == [] and pr_numbers(home, R2) == [PR]
    day1 = changes(home, D1)
    assert day1[f"{PAY}@{R1}"] == "fail"  # "pushed without a pull request" while GitHub lags
    assert f"{PAY}#{PR}" in day1 and f"{PAY}@{PUSH}" in day1
    run_day(settings, D2, home, lag)  # incremental; learns the constant-URL ETag of the commits listing
    assert changes(home, D2)[f"{PAY}@{R1}"] == "fail"
    assert unlinked(home, PAY) == [R1, PUSH] and unlinked(home, WEB) == []

    reqs = run_day(settings, D3, home)  # GitHub's index caught up; the branch did not move
    assert commits_listing(reqs, PAY) == [304] and commits_listing(reqs, WEB) == [304]
    assert history_queries(reqs, "payments-api") == 1  # R1 and PUSH in one query
    assert commit_pulls_gets(reqs, PAY) == []
    assert history_queries(reqs, "web-frontend") == 0 and commit_pulls_gets(reqs, WEB) == []
    assert pr_numbers(home, R1) == [PR] and pr_numbers(home, PUSH) == []
    day3 = changes(home, D3)
    assert f"{PAY}@{R1}" not in day3  # the direct-push change is gone; the PR is the change
    assert f"{PAY}#{PR}" in day3 and day3[f"{PAY}@{PUSH}"] == "fail"
    # the same as a fresh full fetch of that day
    fresh = tmp_path / "fresh"
    run_day(settings, D3, fresh)
    assert changes(home, D3) == changes(fresh, D3)


def test_an_unchanged_repo_with_every_recent_commit_linked_asks_nothing(settings, tmp_path):
    home = tmp_path / "home"
    for day in (D1, D2):
        run_day(settings, day, home, scen=BASE)
    assert unlinked(home, PAY) == [] and unlinked(home, WEB) == []
    reqs = run_day(settings, D3, home, scen=BASE)
    for repo, name in ((PAY, "payments-api"), (WEB, "web-frontend")):
        assert commits_listing(reqs, repo) == [304]
        assert history_queries(reqs, name) == 0 and commit_pulls_gets(reqs, repo) == []


def test_a_real_direct_push_is_rechecked_only_inside_the_overlap(settings, tmp_path):
    """PUSH (2026-11-24T13:00) never gets a PR.  The night of D3 (overlap from D2's watermark
    - 2 days = 11-24T00:00) asks for it again; D3's watermark is at least 11-26T15:00 (its as-of
    time, or the wall clock when it ran before that), so from D4 on it is out of the overlap."""
    home = tmp_path / "home"
    for day in (D1, D2):
        run_day(settings, day, home)
    assert unlinked(home, PAY) == [PUSH]
    reqs = run_day(settings, D3, home)
    assert commits_listing(reqs, PAY) == [304]
    assert history_queries(reqs, "payments-api") == 1 and commit_pulls_gets(reqs, PAY) == []
    state = json.loads(state_path(home).read_text(encoding="utf-8"))
    assert parse_utc(state["github"][PAY]["watermark"]) - wm.OVERLAP > parse_utc("2026-11-24T13:00:00Z")
    assert unlinked(home, PAY) == []
    reqs = run_day(settings, D4, home)
    assert commits_listing(reqs, PAY) == [304]
    assert history_queries(reqs, "payments-api") == 0 and commit_pulls_gets(reqs, PAY) == []
    assert changes(home, D4)[f"{PAY}@{PUSH}"] == "fail"  # still a direct push, from the stored rows


# --- state and plan ----------------------------------------------------------------------------


def test_the_state_lists_unlinked_first_parent_commits_of_the_next_overlap(settings, tmp_path):
    rc = next(r for r in settings.github.repositories if r.repo == PAY)
    con = connection.connect(tmp_path / "w.duckdb")
    watermark = datetime(2026, 11, 26, tzinfo=UTC)
    rows = [("old", "2026-11-23T23:59:59", None), ("edge", "2026-11-24T00:00:00", []),
            ("linked", "2026-11-24T05:00:00", [7]), ("null", "2026-11-25T05:00:00", None),
            ("empty", "2026-11-25T06:00:00", [])]
    try:
        for i, (sha, at, prs) in enumerate(rows):
            con.execute("INSERT INTO commits (repo, branch, sha, position, committed_at, pr_numbers) "
                        "VALUES (?, 'main', ?, ?, ?, ?)", [PAY, sha, i, at, prs])
        con.execute("INSERT INTO commits (repo, branch, sha, position, committed_at, pr_numbers) "
                    "VALUES (?, 'release', 'other-branch', 0, '2026-11-25T00:00:00', [])", [PAY])
        got = ingest_state._unlinked_commits(con, rc, watermark)
    finally:
        con.close()
    assert got == [{"sha": "edge", "committed_at": "2026-11-24T00:00:00Z"},
                   {"sha": "null", "committed_at": "2026-11-25T05:00:00Z"},
                   {"sha": "empty", "committed_at": "2026-11-25T06:00:00Z"}]


def _state(entry_extra: dict) -> dict:
    return {"version": STATE_VERSION, "github": {PAY: {
        "covered_from": "2026-01-01T00:00:00Z", "watermark": "2026-11-26T00:00:00Z", "tip": "t",
        "validators": {f"/api/v3/repos/{PAY}/commits?per_page=100&sha=main": 'W/"c"',
                       f"/api/v3/repos/{PAY}/branches/main": 'W/"b"'}, "ruleset_ids": [], **entry_extra}}}


def test_the_plan_carries_the_unlinked_commits_and_an_old_state_relists_the_commits(settings):
    rc = next(r for r in settings.github.repositories if r.repo == PAY)
    as_of = datetime(2026, 11, 27, tzinfo=UTC)
    fp = wm.repo_fingerprint(settings, rc)
    state = _state({"fingerprint": fp, "unlinked": [{"sha": "x", "committed_at": "2026-11-24T10:00:00Z"},
                                                    {"sha": "gone", "committed_at": "2026-11-23T10:00:00Z"}]})
    plan = wm.plan_github_repo(settings, state, as_of, rc)
    assert plan.incremental and plan.since == datetime(2026, 11, 24, tzinfo=UTC)
    assert plan.unlinked == ({"sha": "x", "committed_at": "2026-11-24T10:00:00Z"},)
    assert len(plan.validators) == 2
    assert relink(plan, []) == [{"sha": "x", "commit": {"committer": {"date": "2026-11-24T10:00:00Z"}}}]
    assert relink(plan, [{"sha": "x"}, {"sha": "t"}]) == []  # already in the listed chain
    assert relink(plan, [{"sha": "new"}, {"sha": "y"}]) == []  # force push: the chain is the window
    assert relink(replace(plan, mode="full"), []) == []
    # a state written before `unlinked` existed: the commits listing is asked without its ETag
    old = wm.plan_github_repo(settings, _state({"fingerprint": fp}), as_of, rc)
    assert old.incremental and old.unlinked == ()
    assert list(old.validators) == [f"/api/v3/repos/{PAY}/branches/main"]
