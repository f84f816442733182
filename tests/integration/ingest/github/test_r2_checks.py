"""Issue #12 items 5, 7 and 8 through the API double with the real clients (PyGithub REST and the
GraphQL connector): fetch -> load -> facts -> evaluation, on the demo org with three evasions planted.

* item 5: on ``payments-api`` (classic protection pins ``test`` and ``build`` to App 15368, GitHub
  Actions) PR #122's ``build`` check run failed, then its author posted a commit status
  ``build=success``: r1 passed CC8.1-05 on the status; r2 counts only the app's run.
* item 7: PR #123 was merged by the merge queue (``merged_by`` ``github-merge-queue[bot]``) after its
  author added it to the queue: r2's merger is the enqueuer, so CC8.1-04 fails; #119, queued by
  its reviewer, passes and says so.
* item 8: ``web-frontend`` is protected by a ruleset that provides every setting with no bypass
  actor, but the token has no admin rights on the repository, so ``GET /rulesets/{id}`` leaves
  ``bypass_actors`` out (as GitHub does): CC8.1-11 fails closed, saying the bypass list is unknown.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.controls.evaluate import evaluate
from ccwatch.controls.facts import build_facts
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import load_settings
from ccwatch.warehouse.connection import connect
from ccwatch.warehouse.store import load_records

from tests.helpers.github_fetch import fetch_github
from tests.helpers.paths import CONFIG, DEMO_SCENARIO

PAY, WEB = "acme/payments-api", "acme/web-frontend"
AS_OF = datetime(2026, 11, 25, tzinfo=UTC)
QUEUE_BOT = "github-merge-queue[bot]"
RULES = {"required_approving_review_count": 1, "dismiss_stale_reviews_on_push": True,
         "require_code_owner_review": False, "require_last_push_approval": False,
         "required_review_thread_resolution": False}
CHECKS = {"strict_required_status_checks_policy": True,
          "required_status_checks": [{"context": "build", "integration_id": 15368}]}


def t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def z(d: datetime) -> str:
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def pull(repo: dict, number: int) -> dict:
    return next(p for p in repo["pulls"] if p["number"] == number)


def scenario() -> dict:
    sc = copy.deepcopy(json.loads(DEMO_SCENARIO.read_text(encoding="utf-8")))
    pay, web = sc["github"]["repos"][PAY], sc["github"]["repos"][WEB]
    # item 5: the build run failed; the author then posted build=success as a commit status
    p122 = pull(pay, 122)
    runs = pay["check_runs"][p122["head_sha"]]
    build = next(c for c in runs if c["name"] == "build")
    build["conclusion"] = "failure"
    pay.setdefault("statuses", {})[p122["head_sha"]] = [{
        "id": 34_560_099_001, "context": "build", "state": "success", "creator": p122["user"],
        "created_at": z(min(t(build["completed_at"]) + timedelta(minutes=5), t(p122["merged_at"]) - timedelta(minutes=1)))}]
    # item 7: merged by the merge queue, queued by the author (#123) / by the reviewer (#119)
    for number, enqueuer in ((123, None), (119, "bob-rev")):
        p = pull(pay, number)
        p["queued_by"] = enqueuer or p["user"]
        p["queued_at"] = z(t(p["merged_at"]) - timedelta(hours=1))
        p["merged_by"] = QUEUE_BOT
    # item 8: a complete ruleset with no bypass actors, which a token without admin cannot see whole
    web["rules"]["main"] = [{"type": t, "ruleset_id": 8, **({"parameters": prm} if prm else {})}
                            for t, prm in (("pull_request", RULES), ("required_status_checks", CHECKS),
                                           ("non_fast_forward", None), ("deletion", None))]
    web.setdefault("rulesets", {})["8"] = {
        "id": 8, "name": "main rules", "target": "branch", "enforcement": "active", "bypass_actors": [],
        "conditions": {"ref_name": {"include": ["~DEFAULT_BRANCH"], "exclude": []}},
        "rules": [{"type": "pull_request", "parameters": RULES}, {"type": "required_status_checks", "parameters": CHECKS},
                  {"type": "non_fast_forward"}, {"type": "deletion"}]}
    web["permissions"] = {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True}
    return sc


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    s = load_settings(CONFIG)
    s = replace(s, github=replace(s.github, repositories=tuple(
        r for r in s.github.repositories if r.repo in (PAY, WEB))))
    with SandboxServer(scenario()) as sb:
        records = list(fetch_github(s, Endpoint(sb.url, token="ghp_demo"), AS_OF))
    con = connect(str(tmp_path_factory.mktemp("r2c") / "w.duckdb"))
    load_records(con, records, s)
    build_facts(con, s, AS_OF)
    evaluate(con, s, AS_OF)
    yield con, records
    con.close()


def result(con, change_id: str, control: str) -> tuple[str, str]:
    return con.execute("SELECT status, detail FROM control_results WHERE change_id = ? AND control_id = ?",
                       [change_id, control]).fetchone()


def test_item5_a_users_status_does_not_stand_in_for_the_pinned_apps_failed_run(world):
    con, _ = world
    stored = con.execute("SELECT kind, conclusion, app_id, app_slug, creator_login FROM checks c JOIN pull_requests p "
                         "ON p.repo = c.repo AND p.head_sha = c.sha WHERE p.number = 122 AND c.name = 'build' "
                         "ORDER BY kind").fetchall()
    assert stored == [("check_run", "failure", 15368, "github-actions", None), ("status", "success", None, None,
                                                                                 "carol-dev")]
    status, detail = result(con, f"{PAY}#122", "CC8.1-05")
    assert status == "fail", detail
    assert ("failed: build failure by app github-actions (required from app github-actions (id 15368, branch "
            "protection); not counted: status success by carol-dev)") in detail


def test_item5_the_other_changes_of_the_pinned_repository_still_pass(world):
    con, _ = world
    assert result(con, f"{PAY}#121", "CC8.1-05")[0] == "pass"


def test_item7_the_author_who_queued_their_own_pr_merged_it(world):
    con, records = world
    node = next(r.payload for r in records if r.kind == "gql_pull" and r.natural_key == f"{PAY}#123")
    assert node["mergedBy"]["login"] == "github-merge-queue"  # GraphQL names a Bot without [bot]
    (event,) = node["timelineItems"]["nodes"]
    assert event["enqueuer"]["login"] == "carol-dev"
    status, detail = result(con, f"{PAY}#123", "CC8.1-04")
    assert status == "fail", detail
    assert "carol-dev merged their own PR: added it to the merge queue at 2026-10-19T09:00Z (merged by " \
           "github-merge-queue[bot]; the activity log shows merge_queue_merge)" in detail


def test_item7_a_pr_queued_by_its_reviewer_is_merged_by_the_reviewer(world):
    con, _ = world
    status, detail = result(con, f"{PAY}#119", "CC8.1-04")
    assert "merged by bob-rev through the merge queue (added at 2026-10-13T09:00Z" in detail, detail


def test_item8_a_read_only_token_sees_no_bypass_list_and_the_control_fails_closed(world):
    con, records = world
    (ruleset,) = [r.payload for r in records if r.kind == "ruleset" and r.natural_key == f"{WEB}/rulesets/8"]
    assert "bypass_actors" not in ruleset  # the double answers as GitHub does
    assert {b for (b,) in con.execute("SELECT DISTINCT bypass_actors FROM branch_rules WHERE repo = ? "
                                      "AND source = 'ruleset'", [WEB]).fetchall()} == {None}
    status, detail = result(con, WEB, "CC8.1-11")
    assert status == "fail", detail
    assert "cannot be verified: bypass list unknown for ruleset 8" in detail, detail
