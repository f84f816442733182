"""Conditional requests of the nightly incremental fetch (ETag / If-None-Match, 304s are free).

Through the API double (which answers a matching If-None-Match with 304 without charging the
rate limit) and the real clients, stage functions called in the DAG's order.  One double on a
fixed port serves every day, so payload URLs (and so ETags) do not change between runs.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from ccwatch import pipeline as p
from ccwatch.common.endpoints import Endpoint
from ccwatch.common.errors import StageError
from ccwatch.common.paths import state_path
from ccwatch.common.times import parse_as_of
from ccwatch.demo_env import DEMO_AUTH
from ccwatch.ingest.records import RawRecord
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import load_settings
from ccwatch.warehouse import connection
from ccwatch.warehouse.kept_protection import KeptProtectionMismatch
from ccwatch.warehouse.raw_store import NotModifiedWithoutCopy
from ccwatch.warehouse.store import load_records

from tests.helpers.paths import CONFIG, DEMO_SCENARIO
from tests.helpers.ports import held_port

SCENARIO = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
SCENARIO["auth"] = dict(DEMO_AUTH)
D1, D2, D3, D4 = (parse_as_of(d) for d in ("2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"))
PAY, WEB = "acme/payments-api", "acme/web-frontend"
CHANGED_PR = 150
# requests that refresh what may move by itself (statuses of young / unfinished deployments)
REFRESH = re.compile(r"/deployments/\d+/statuses$")


@pytest.fixture(scope="module")
def settings():
    return load_settings(str(CONFIG))


def run_day(settings, scenario, as_of, home, *, full=False, evaluate=True) -> list[dict]:
    """Fetch + load (+ evaluate) one day; the double's GitHub requests."""
    with SandboxServer(scenario, hold=held_port()) as server:
        gh = Endpoint(server.url + "/api/v3", token=DEMO_AUTH["github_token"])
        jr = Endpoint(server.url, login=DEMO_AUTH["jira_user"], token=DEMO_AUTH["jira_token"])
        p.ingest_github(settings, gh, as_of, home, full=full)
        p.ingest_jira(settings, jr, as_of, home, full=full)
        p.resolve_tickets(settings, jr, as_of, home)
        github = [r for r in server.requests if r["service"] == "github"]
    p.load_warehouse(settings, as_of, home)
    if evaluate:
        p.build_facts(settings, as_of, home)
        p.evaluate_controls(settings, as_of, home)
    return github


def repo_of(req: dict) -> str:
    m = re.search(r"/repos/([^/]+/[^/]+)", req["path"])
    return m.group(1) if m else "graphql"


def charged(reqs: list[dict]) -> Counter:
    return Counter(repo_of(r) for r in reqs if r["status"] != 304)


def results(home: Path, as_of, control: str | None = None) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        sql = ("SELECT change_id, control_id, status, detail FROM control_results WHERE as_of = ?"
               + (" AND control_id = ?" if control else "") + " ORDER BY ALL")
        return con.execute(sql, [as_of.replace(tzinfo=None), *([control] if control else [])]).fetchall()
    finally:
        con.close()


def raw(home: Path, kind: str, key: str) -> tuple | None:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT status_code, payload, fetched_at FROM raw_payloads WHERE source = 'github' "
                           "AND kind = ? AND natural_key = ?", [kind, key]).fetchone()
    finally:
        con.close()


@pytest.fixture(scope="module")
def steady(settings, tmp_path_factory):
    """D1 full, D2 incremental (the first one learns the constant-URL ETags): the steady state."""
    home = tmp_path_factory.mktemp("steady")
    first = run_day(settings, SCENARIO, D1, home)
    second = run_day(settings, SCENARIO, D2, home)
    return {"home": home, "first": first, "second": second}


def continue_from(steady, tmp_path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(steady["home"], home)
    return home


def test_the_state_carries_the_etags_and_a_full_fetch_sends_none(steady):
    assert not any(r["status"] == 304 for r in steady["first"])  # nothing stored yet: no If-None-Match
    state = json.loads(state_path(steady["home"]).read_text(encoding="utf-8"))
    for repo in (PAY, WEB):
        v = state["github"][repo]["validators"]
        # (stop 31) the tip and the "protected" flag come with the GraphQL node: REST's branch is not asked
        assert f"/api/v3/repos/{repo}/branches/main" not in v
        assert f"/api/v3/repos/{repo}/commits?per_page=100&sha=main" in v  # the constant URL, no `since`
        # (issue #15) an incremental night takes its PRs from the org-wide search: the pulls list is
        # neither asked nor revalidated, so its ETag is not kept
        assert (f"/api/v3/repos/{repo}/pulls?base=main&direction=desc&per_page=100&sort=updated&state=closed"
                not in v)
        assert all(e.startswith('W/"') for e in v.values())
    # web-frontend's branch is unprotected: a 404 has no ETag, nothing to revalidate
    assert f"/api/v3/repos/{WEB}/branches/main/protection" not in state["github"][WEB]["validators"]
    rest_branch = re.compile(r"/repos/[^/]+/[^/]+/branches/main$")
    assert not [r for r in steady["first"] + steady["second"] if rest_branch.search(r["path"])]


def test_an_unchanged_day_costs_at_most_three_counted_requests_per_repository(settings, steady, tmp_path):
    home = continue_from(steady, tmp_path)
    reqs = run_day(settings, SCENARIO, D3, home)
    by_repo = {repo: [r for r in reqs if repo_of(r) == repo] for repo in (PAY, WEB)}
    for repo, rs in by_repo.items():
        not_modified = {r["path"].split(repo, 1)[1] for r in rs if r["status"] == 304}
        assert {"/rules/branches/main", "/commits", "/deployments", "/environments/production"} <= not_modified, repo
        # (stop 31) no REST branch: the tip and, for the unprotected branch, its "protected" flag come
        # with the org-wide GraphQL node
        assert not [r for r in rs if r["path"].endswith(f"{repo}/branches/main")], repo
        # (issue #15, stop 29) the settings: org-wide by GraphQL, never REST GET /repos/{o}/{r}
        assert not [r for r in rs if r["path"].endswith(f"/repos/{repo}")], repo
        assert not any(r["path"].endswith("/pulls") for r in rs), "(issue #15) PRs: the org-wide search"
        assert not any(r["path"].endswith("/commits") and "since" in r["query"] for r in rs)
        counted = [r for r in rs if r["status"] != 304 and not REFRESH.search(r["path"])]
        # (stop 29) nothing: an unprotected branch's protection (a 404, no ETag) is not asked again
        # while the branch says "protected": false and the stored answer is that 404
        assert [r["path"] for r in counted] == [], repo
    assert not any(r["path"].endswith(f"{WEB}/branches/main/protection") for r in reqs)
    assert raw(home, "branch_protection", f"{WEB}:main")[0] == 404  # the stored 404 stands
    assert any(r["status"] == 304 and r["path"].endswith(f"{PAY}/branches/main/protection") for r in reqs)
    # open deployments' statuses in one GraphQL query per repository
    # (r2) + the population reconciliation's search counts (the window slides daily, so yesterday's
    # count cannot be revalidated): (issue #15) one org-wide request for both repositories, and one
    # org-wide search for the night's PRs
    ops = [(r.get("graphql") or {}).get("operationName") for r in reqs]
    assert ops.count("CcwatchMergedCounts") == 1 and ops.count("CcwatchMergedPullsSearch") == 1, ops
    assert ops.count("CcwatchRepositories") == 1, ops
    assert "CcwatchMergedCount" not in ops and "CcwatchMergedPulls" not in ops and "CcwatchRepository" not in ops, ops
    total = sum(charged(reqs).values())
    assert total <= 2 * 2 + 2, charged(reqs)
    # protection answered 304: CC8.1-11 evaluates from the stored payload exactly as before,
    # and the whole evaluation equals a full fetch of the same day
    assert results(home, D3, "CC8.1-11") and results(home, D3, "CC8.1-11") == results(steady["home"], D2, "CC8.1-11")
    assert any(s == "pass" for _, _, s, _ in results(home, D3, "CC8.1-11"))
    fresh = tmp_path / "fresh"
    run_day(settings, SCENARIO, D3, fresh)
    assert results(home, D3) == results(fresh, D3)


def test_one_changed_pr_comes_from_the_org_wide_search_at_no_extra_cost(settings, steady, tmp_path):
    home = continue_from(steady, tmp_path)
    s = copy.deepcopy(SCENARIO)
    repo = s["github"]["repos"][PAY]
    pr = next(x for x in repo["pulls"] if x["number"] == CHANGED_PR)
    pr["updated_at"] = "2026-11-26T12:00:00Z"
    reviews = repo["reviews"][str(CHANGED_PR)]
    reviews[0]["state"] = "DISMISSED"
    reqs = run_day(settings, s, D3, home)
    assert not [r for r in reqs if r["path"].endswith("/pulls")], "(issue #15) no pulls list: the org-wide search"
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    states = {x for (x,) in con.execute("SELECT state FROM reviews WHERE repo = ? AND pr_number = ?",
                                        [PAY, CHANGED_PR]).fetchall()}
    con.close()
    assert "DISMISSED" in states
    unchanged = run_day(settings, SCENARIO, D3, continue_from(steady, tmp_path / "u"), evaluate=False)
    extra = sum(charged(reqs).values()) - sum(charged(unchanged).values())
    # (issue #15) the changed PR came in the search page an unchanged night asks as well
    assert extra == 0, (charged(reqs), charged(unchanged))
    assert sum(charged(reqs).values()) <= 2 * 2 + 2


def test_a_protection_change_is_fetched_and_evaluated(settings, steady, tmp_path):
    home = continue_from(steady, tmp_path)
    before = raw(home, "branch_protection", f"{PAY}:main")
    s = copy.deepcopy(SCENARIO)
    s["github"]["repos"][PAY]["protection"]["main"]["enforce_admins"] = {"enabled": False}
    reqs = run_day(settings, s, D3, home)
    prot = [r for r in reqs if r["path"].endswith(f"{PAY}/branches/main/protection")]
    assert [r["status"] for r in prot] == [200]
    after = raw(home, "branch_protection", f"{PAY}:main")
    assert after[0] == 200 and json.loads(after[1])["enforce_admins"]["enabled"] is False
    assert json.loads(before[1])["enforce_admins"]["enabled"] is True
    cc11 = [(s_, d) for c, _, s_, d in results(home, D3, "CC8.1-11") if c.startswith(PAY)]
    assert cc11 and all(s_ == "fail" for s_, _ in cc11)
    assert any("admin" in d.lower() for _, d in cc11)


@pytest.mark.parametrize("anchored", [True, False])
def test_an_ingest_state_that_says_a_protected_branch_is_unprotected_fails_the_load(settings, steady, tmp_path,
                                                                                    anchored):
    """(stop 30) The protection skip reads the ingest state file.  A state edited to say payments-api's
    branch is unprotected, then its classic protection removed: the fetch skips the protection (the
    branch now says false), but the load holds a protected 200 for it.  Kept, CC8.1-11 would go on
    passing on a branch without protection.  The load refuses it: the state is not the one its last
    load anchored (warehouse/state_anchor.py), and in a warehouse without anchors (from before them)
    the stored protection is not the 404 of an unprotected branch (warehouse/kept_protection.py),
    naming the repository.  It commits nothing, resets the state, and the rerun (a full fetch) sees
    the removal."""
    home = continue_from(steady, tmp_path)
    if not anchored:
        con = duckdb.connect(str(home / "warehouse.duckdb"))
        con.execute("DELETE FROM ingest_states")
        con.close()
    path = state_path(home)
    state = json.loads(path.read_text(encoding="utf-8"))
    assert state["github"][PAY]["unprotected"] is False
    state["github"][PAY]["unprotected"] = True  # the forgery
    path.write_text(json.dumps(state), encoding="utf-8")
    s = copy.deepcopy(SCENARIO)
    s["github"]["repos"][PAY]["branches"]["main"]["protected"] = False
    del s["github"]["repos"][PAY]["protection"]["main"]
    before = raw(home, "branch_protection", f"{PAY}:main")
    with pytest.raises(StageError if anchored else KeptProtectionMismatch) as exc:
        run_day(settings, s, D3, home)
    message = str(exc.value)
    assert "ingest state" in message and "rerun the date for a full fetch" in message, message
    if anchored:
        assert "not the one the last load (of 2026-11-26T00:00:00Z) wrote" in message, message
    else:
        assert f"{PAY} (branch main: stored classic protection HTTP 200" in message, message
        assert WEB not in message  # web-frontend's skip is sound: its stored answer is the 404
    assert not state_path(home).exists()  # dropped: the next fetch is full
    assert raw(home, "branch_protection", f"{PAY}:main") == before  # nothing committed
    assert not results(home, D3)
    reqs = run_day(settings, s, D3, home)
    assert [r["status"] for r in reqs if r["path"].endswith(f"{PAY}/branches/main/protection")] == [404]
    cc11 = [st for c, _, st, _ in results(home, D3, "CC8.1-11") if c.startswith(PAY)]
    assert cc11 and all(st == "fail" for st in cc11)
    fresh = tmp_path / "fresh"
    run_day(settings, s, D3, fresh)
    assert results(home, D3) == results(fresh, D3)


def test_an_earlier_ingest_state_put_back_is_refused(settings, steady, tmp_path):
    """(stop 30) A replay: web-frontend's state of D2 said its branch is unprotected; on D3 it was
    protected and the load stored the 200.  Put D2's state back, remove the protection again: the fetch
    would skip the protection and keep the 200.  D2's state was anchored once, but only the last load's
    anchor counts, so the load refuses it before anything else looks."""
    home = continue_from(steady, tmp_path)
    replay = state_path(home).read_bytes()
    assert json.loads(replay)["github"][WEB]["unprotected"] is True
    s = copy.deepcopy(SCENARIO)
    web = s["github"]["repos"][WEB]
    web["branches"]["main"]["protected"] = True
    web["protection"]["main"] = copy.deepcopy(s["github"]["repos"][PAY]["protection"]["main"])
    run_day(settings, s, D3, home)
    assert raw(home, "branch_protection", f"{WEB}:main")[0] == 200
    state_path(home).write_bytes(replay)
    with pytest.raises(StageError, match=r"put back.*rerun the date for a full fetch") as exc:
        run_day(settings, SCENARIO, D4, home)
    assert "not the one the last load (of 2026-11-27T00:00:00Z) wrote" in str(exc.value)
    assert not state_path(home).exists() and raw(home, "branch_protection", f"{WEB}:main")[0] == 200
    reqs = run_day(settings, SCENARIO, D4, home)
    assert [r["status"] for r in reqs if r["path"].endswith(f"{WEB}/branches/main/protection")] == [404]


def test_a_304_without_a_stored_copy_fails_closed_and_the_next_run_is_full(settings, steady, tmp_path):
    home = continue_from(steady, tmp_path)
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    con.execute("DELETE FROM raw_payloads WHERE kind = 'branch_protection' AND natural_key = ?", [f"{PAY}:main"])
    con.close()
    with pytest.raises(NotModifiedWithoutCopy) as exc:
        run_day(settings, SCENARIO, D3, home)
    assert f"github branch_protection {PAY}:main" in str(exc.value) and "fetched again in full" in str(exc.value)
    assert not state_path(home).exists()  # dropped: the next fetch is full
    reqs = run_day(settings, SCENARIO, D3, home)
    assert not any(r["status"] == 304 for r in reqs)  # a full fetch sends no If-None-Match
    assert raw(home, "branch_protection", f"{PAY}:main")[0] == 200
    assert results(home, D3, "CC8.1-11") == results(steady["home"], D2, "CC8.1-11")


# --- the load of 304 records (warehouse/store.py) ----------------------------------------


def _rec(kind, key, payload, status=200, fetched="2026-11-25T01:00:00Z", etag='W/"a"'):
    return RawRecord(source="github", kind=kind, natural_key=key, url=f"https://api.github.com/repos/{key}",
                     fetched_at=fetched, payload=payload, etag=etag, status_code=status)


ENV = {"id": 1, "name": "production", "protection_rules": [
    {"id": 2, "node_id": "X", "type": "required_reviewers", "prevent_self_review": False,
     "reviewers": [{"type": "User", "reviewer": {"login": "alice", "id": 1}}]}],
    "deployment_branch_policy": {"protected_branches": True, "custom_branch_policies": False}}


def test_store_keeps_the_stored_copy_and_rows_of_a_304(settings, tmp_path):
    con = connection.connect(tmp_path / "w.duckdb")
    try:
        load_records(con, [_rec("environment", f"{PAY}:production", ENV)], settings)
        rows = con.execute("SELECT * FROM environments ORDER BY ALL").fetchall()
        assert rows
        load_records(con, [_rec("environment", f"{PAY}:production", None, 304, "2026-11-26T01:00:00Z")], settings)
        assert con.execute("SELECT * FROM environments ORDER BY ALL").fetchall() == rows
        status, payload, fetched = con.execute(
            "SELECT status_code, payload, fetched_at FROM raw_payloads WHERE kind = 'environment'").fetchone()
        assert status == 200 and json.loads(payload) == ENV
        assert str(fetched).startswith("2026-11-26 01:00")  # revalidated then
    finally:
        con.close()


def test_store_refuses_a_304_with_nothing_stored_and_commits_nothing(settings, tmp_path):
    con = connection.connect(tmp_path / "w.duckdb")
    try:
        batch = [_rec("environment", f"{WEB}:production", ENV),
                 _rec("branch_protection", f"{PAY}:main", None, 304)]
        with pytest.raises(NotModifiedWithoutCopy, match=rf"github branch_protection {PAY}:main"):
            load_records(con, batch, settings)
        assert con.execute("SELECT count(*) FROM raw_payloads").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM environments").fetchone()[0] == 0
        # a stored 404 (no protection) is no copy of a 200 either
        load_records(con, [_rec("branch_protection", f"{PAY}:main", {"message": "Branch not protected"}, 404)],
                     settings)
        with pytest.raises(NotModifiedWithoutCopy):
            load_records(con, [_rec("branch_protection", f"{PAY}:main", None, 304)], settings)
    finally:
        con.close()


RULESET_RULES = [{"type": "pull_request", "ruleset_id": 41, "parameters": {
    "required_approving_review_count": 1, "dismiss_stale_reviews_on_push": True, "require_code_owner_review": False,
    "require_last_push_approval": False, "required_review_thread_resolution": False}}]


@pytest.mark.parametrize("by", ["classic", "ruleset"])
def test_a_branch_that_becomes_protected_has_its_protection_asked_again(settings, steady, tmp_path, by):
    """(stop 29) The classic protection of a branch that said ``"protected": false`` is not asked
    again, only while the branch still says so: once it is protected (GitHub says ``true`` for classic
    protection and for rulesets alike), the protection is asked and the control sees it.  (stop 31)
    The flag comes with the org-wide GraphQL node (``branchProtectionRule``, ``rules``): no REST branch."""
    home = continue_from(steady, tmp_path)
    s = copy.deepcopy(SCENARIO)
    web = s["github"]["repos"][WEB]
    web["branches"]["main"]["protected"] = True
    if by == "classic":
        web["protection"]["main"] = copy.deepcopy(s["github"]["repos"][PAY]["protection"]["main"])
    else:
        web["rules"]["main"] = copy.deepcopy(RULESET_RULES)
        web["rulesets"]["41"] = {"id": 41, "name": "main", "target": "branch", "enforcement": "active",
                                 "bypass_actors": [], "rules": [{"type": "pull_request"}],
                                 "conditions": {"ref_name": {"include": ["~DEFAULT_BRANCH"], "exclude": []}}}
    reqs = run_day(settings, s, D3, home)
    asked = [r["status"] for r in reqs if r["path"].endswith(f"{WEB}/branches/main/protection")]
    assert asked == ([200] if by == "classic" else [404])
    assert not [r for r in reqs if r["path"].endswith(f"{WEB}/branches/main")]
    assert raw(home, "branch_protection", f"{WEB}:main")[0] == asked[0]
    fresh = tmp_path / "fresh"
    run_day(settings, s, D3, fresh)
    assert results(home, D3, "CC8.1-11") == results(fresh, D3, "CC8.1-11")
    assert results(home, D3) == results(fresh, D3)
    assert results(home, D3, "CC8.1-11") != results(steady["home"], D2, "CC8.1-11")  # the change is seen


def test_a_protection_flag_graphql_will_not_give_falls_back_to_rest(settings, steady, tmp_path, caplog):
    """(stop 31) GitHub answers ``FORBIDDEN`` for ``branchProtectionRule`` to a token without the
    Administration permission: the batch is asked again without the flags (one request), and the
    unprotected branch's flag comes from REST's branch, as before; nothing fails, nothing is kept unasked
    that the branch does not vouch for."""
    home = continue_from(steady, tmp_path)
    s = copy.deepcopy(SCENARIO)
    s["github"]["repos"][WEB]["branches"]["main"]["rule_hidden"] = True
    caplog.set_level(logging.WARNING)
    reqs = run_day(settings, s, D3, home)
    ops = [(r.get("graphql") or {}).get("operationName") for r in reqs]
    assert ops.count("CcwatchRepositories") == 2, ops
    assert "FORBIDDEN" in caplog.text and WEB in caplog.text and "REST" in caplog.text
    assert [r["status"] for r in reqs if r["path"].endswith(f"{WEB}/branches/main")] == [200]
    assert not any(r["path"].endswith(f"{WEB}/branches/main/protection") for r in reqs)  # the branch says false
    fresh = tmp_path / "fresh"
    run_day(settings, s, D3, fresh)
    assert results(home, D3, "CC8.1-11") == results(fresh, D3, "CC8.1-11")
