"""Table-driven tests of the change controls CC8.1-01..10 and 13: one world, one case per PR.

Each case builds one change (a compliant ``good_pr`` with one clause broken) and states the
expected status of one control, plus a fragment its detail must contain.  All cases share a
single warehouse and a single evaluation (as of 2026-11-25T00:00Z, grace 72h, PIR 14d,
emergency retro 3d, post-mortem 7d).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from ccwatch.settings import SodConfig
from test_controls_fixtures import PAY, T, World, make_settings, sha

CASES: list[tuple[str, str, str, str, object]] = []  # (case id, control, status, detail fragment, builder)


def case(control: str, status: str, fragment: str = ""):
    def deco(fn):
        CASES.append((fn.__name__, control, status, fragment, fn))
        return fn
    return deco


def merged_undeployed(w, n, day, hour="10:00", **kw):
    """A PR merged 11-<day> <hour>, reviewed and tested, not deployed, ticket approved but not done."""
    c = w.good_pr(n, day=day, deploy=False, done=False, **kw)
    if hour != "10:00":
        w.con.execute("UPDATE pull_requests SET merged_at = ? WHERE repo = ? AND number = ?",
                      [T(f"11-{day:02d} {hour}"), w.pay, n])
    return c


# --- CC8.1-01 / 02 ticket -------------------------------------------------------------------
@case("CC8.1-01", "pass", "title names PAY-1")
def ticket_ok(w, n):
    return w.good_pr(n)["id"]


@case("CC8.1-01", "fail", "no ticket key of PAY, WEB, OPS")
def ticket_no_key(w, n):
    return w.good_pr(n, title="fix the thing")["id"]


@case("CC8.1-01", "fail", "FOO-9, outside the in-scope projects")
def ticket_other_project(w, n):
    return w.good_pr(n, title="fix [FOO-9]")["id"]


@case("CC8.1-01", "pass", "title names PAY-")
def ticket_sha256_title(w, n):  # 'SHA-256' is not an in-scope project: the PAY key links
    return w.good_pr(n, title=f"SHA-256 pinning [PAY-{n}]")["id"]


@case("CC8.1-01", "fail", "does not exist in Jira")
def ticket_missing_in_jira(w, n):
    return w.good_pr(n, ticket_kw=False)["id"]


@case("CC8.1-02", "pass", "documents Business Justification")
def fields_ok(w, n):
    return w.good_pr(n)["id"]


@case("CC8.1-02", "fail", "blank Risk Assessment")
def fields_blank_risk(w, n):
    return w.good_pr(n, ticket_kw={"fields": {"risk_assessment": "   "}})["id"]


@case("CC8.1-02", "fail", "blank Rollback Plan")
def fields_blank_required(w, n):
    return w.good_pr(n, ticket_kw={"rollback": None})["id"]


@case("CC8.1-02", "fail", "no linked Jira ticket")
def fields_no_ticket(w, n):
    return w.good_pr(n, title="no key")["id"]


# --- CC8.1-03 review --------------------------------------------------------------------------
@case("CC8.1-03", "pass", "approved by bob-rev at 2026-11-10T09:00Z on head")
def review_ok(w, n):
    return w.good_pr(n)["id"]


@case("CC8.1-03", "fail", "(not the final head)")
def review_stale(w, n):
    c = w.good_pr(n, review=False)
    w.review(w.pay, n, "bob-rev", "APPROVED", sha("old head"), T("11-10 07:00"))
    return c["id"]


@case("CC8.1-03", "fail", "changes still requested by dan-rev")
def review_changes_requested_after_approval(w, n):
    c = w.good_pr(n)
    w.review(w.pay, n, "dan-rev", "CHANGES_REQUESTED", c["head"], T("11-10 09:30"))
    return c["id"]


@case("CC8.1-03", "fail", "changes still requested by bob-rev")
def review_same_reviewer_then_cr(w, n):
    c = w.good_pr(n)
    w.review(w.pay, n, "bob-rev", "CHANGES_REQUESTED", c["head"], T("11-10 09:30"))
    return c["id"]


@case("CC8.1-03", "fail", "changes still requested by dan-rev")
def review_cr_then_comment(w, n):  # a COMMENTED review does not withdraw a change request
    c = w.good_pr(n)
    w.review(w.pay, n, "dan-rev", "CHANGES_REQUESTED", c["head"], T("11-10 09:10"))
    w.review(w.pay, n, "dan-rev", "COMMENTED", c["head"], T("11-10 09:20"))
    return c["id"]


@case("CC8.1-03", "pass", "approved by")
def review_cr_then_approved(w, n):
    c = w.good_pr(n)
    w.review(w.pay, n, "dan-rev", "CHANGES_REQUESTED", c["head"], T("11-10 08:00"))
    w.review(w.pay, n, "dan-rev", "APPROVED", c["head"], T("11-10 09:20"))
    return c["id"]


@case("CC8.1-03", "fail", "github-actions[bot] APPROVED (bot)")
def review_bot_only(w, n):
    c = w.good_pr(n, review=False)
    w.review(w.pay, n, "github-actions[bot]", "APPROVED", c["head"], T("11-10 09:00"), rtype="Bot")
    return c["id"]


@case("CC8.1-03", "fail", "bob-rev APPROVED after the merge")
def review_after_merge(w, n):
    c = w.good_pr(n, review=False)
    w.review(w.pay, n, "bob-rev", "APPROVED", c["head"], T("11-10 10:01"))
    return c["id"]


@case("CC8.1-03", "fail", "Carol-Dev APPROVED (author)")
def review_self_through_identity(w, n):  # logins compare case-insensitively through people
    c = w.good_pr(n, review=False)
    w.review(w.pay, n, "Carol-Dev", "APPROVED", c["head"], T("11-10 09:00"))
    return c["id"]


@case("CC8.1-03", "fail", "bob-rev DISMISSED")
def review_dismissed(w, n):
    c = w.good_pr(n, review=False)
    w.review(w.pay, n, "bob-rev", "DISMISSED", c["head"], T("11-10 09:00"))
    return c["id"]


@case("CC8.1-03", "fail", "(1 review: carol-dev COMMENTED (author))")
def review_only_author_comment(w, n):
    c = w.good_pr(n, review=False)
    w.review(w.pay, n, "carol-dev", "COMMENTED", c["head"], T("11-10 09:00"))
    return c["id"]


# --- CC8.1-04 segregation of duties -----------------------------------------------------------
@case("CC8.1-04", "pass", "deployed by github-actions[bot] (automation)")
def sod_ok(w, n):
    return w.good_pr(n)["id"]


@case("CC8.1-04", "fail", "carol-dev merged their own PR")
def sod_self_merge(w, n):
    c = w.good_pr(n)
    w.con.execute("UPDATE pull_requests SET merged_by_login = 'carol-dev' WHERE number = ?", [n])
    return c["id"]


@case("CC8.1-04", "fail", "created production deployment")
def sod_self_deploy(w, n):
    c = w.good_pr(n, deploy=False)
    w.deployment(w.pay, c["merge"], "production", "carol-dev", T("11-10 12:00"), [("success", T("11-10 12:01"))])
    return c["id"]


@case("CC8.1-04", "fail", "gave PAY-")
def sod_self_ticket_approval(w, n):  # carol@acme.example is carol-dev through people.identities
    c = w.good_pr(n)
    w.transition(c["key"], "carol@acme.example", T("11-10 09:40"), "Approved", "indeterminate")
    return c["id"]


@case("CC8.1-04", "pass", "not deployed yet, no linked ticket")
def sod_vacuous(w, n):  # no ticket and undeployed: nothing to judge, never pending
    return w.good_pr(n, day=24, title="no key", deploy=False)["id"]


# --- CC8.1-05 testing -------------------------------------------------------------------------
@case("CC8.1-05", "pass", "build success, test success")
def checks_ok(w, n):
    return w.good_pr(n)["id"]


@case("CC8.1-05", "fail", "no check run or commit status")
def checks_none(w, n):
    return w.good_pr(n, checks=False)["id"]


@case("CC8.1-05", "fail", "failed: test failure")
def checks_failed(w, n):
    c = w.good_pr(n, checks=False)
    w.check_run(w.pay, c["head"], "build", "success", T("11-10 08:00"), T("11-10 08:10"))
    w.check_run(w.pay, c["head"], "test", "failure", T("11-10 08:00"), T("11-10 08:10"))
    return c["id"]


@case("CC8.1-05", "pass", "test success (latest of 2 runs)")
def checks_rerun_green(w, n):
    c = w.good_pr(n, checks=False)
    w.check_run(w.pay, c["head"], "build", "success", T("11-10 08:00"), T("11-10 08:10"))
    w.check_run(w.pay, c["head"], "test", "failure", T("11-10 08:00"), T("11-10 08:10"))
    w.check_run(w.pay, c["head"], "test", "success", T("11-10 08:30"), T("11-10 08:40"))
    return c["id"]


@case("CC8.1-05", "fail", "test success completed 2026-11-10T10:30Z after the merge")
def checks_complete_after_merge(w, n):
    c = w.good_pr(n, checks=False)
    w.check_run(w.pay, c["head"], "build", "success", T("11-10 08:00"), T("11-10 08:10"))
    w.check_run(w.pay, c["head"], "test", "success", T("11-10 09:55"), T("11-10 10:30"))
    return c["id"]


@case("CC8.1-05", "fail", "required check(s) never ran before the merge: build")
def checks_required_missing(w, n):
    c = w.good_pr(n, checks=False)
    w.check_run(w.pay, c["head"], "test", "success", T("11-10 08:00"), T("11-10 08:10"))
    w.commit_status(w.pay, c["head"], "ci/jenkins", "success", T("11-10 08:10"))
    return c["id"]


@case("CC8.1-05", "fail", "no check run or commit status")
def checks_only_after_merge(w, n):  # a run that began after the merge is no evidence of testing
    c = w.good_pr(n, checks=False)
    for name in ("test", "build"):
        w.check_run(w.pay, c["head"], name, "success", T("11-10 10:05"), T("11-10 10:10"))
    return c["id"]


@case("CC8.1-05", "pass", "ci/jenkins success (latest of 2 runs), lint skipped")
def checks_all_present_web(w, n):  # WEB lists no required_checks: every check present counts
    c = w.good_pr(n, repo=w.web, ticket=f"WEB-{n}", checks=False)
    w.commit_status(w.web, c["head"], "ci/jenkins", "pending", T("11-10 08:00"))
    w.commit_status(w.web, c["head"], "ci/jenkins", "success", T("11-10 08:20"))
    w.check_run(w.web, c["head"], "lint", "skipped", T("11-10 08:00"), T("11-10 08:01"))
    return c["id"]


@case("CC8.1-05", "fail", "ci/jenkins pending not finished at the merge")
def checks_status_pending_web(w, n):
    c = w.good_pr(n, repo=w.web, ticket=f"WEB-{n}", checks=False)
    w.commit_status(w.web, c["head"], "ci/jenkins", "pending", T("11-10 08:00"))
    return c["id"]


@case("CC8.1-05", "fail", "failed: e2e error")
def checks_status_error_web(w, n):
    c = w.good_pr(n, repo=w.web, ticket=f"WEB-{n}", checks=False)
    w.commit_status(w.web, c["head"], "ci/jenkins", "success", T("11-10 08:00"))
    w.commit_status(w.web, c["head"], "e2e", "error", T("11-10 08:00"))
    return c["id"]


# --- CC8.1-06 final approval ------------------------------------------------------------------
@case("CC8.1-06", "pass", "approved by alice@acme.example at 2026-11-10T08:30Z, before production deployment")
def approval_ok(w, n):
    return w.good_pr(n)["id"]


@case("CC8.1-06", "fail", "not before production deployment")
def approval_after_deploy(w, n):
    c = w.good_pr(n, approve=False)
    w.transition(c["key"], "alice@acme.example", T("11-10 13:00"), "Approved", "indeterminate")
    return c["id"]


@case("CC8.1-06", "fail", "(not in people.change_approvers)")
def approval_by_non_approver(w, n):
    c = w.good_pr(n, approve=False)
    w.transition(c["key"], "dave@acme.example", T("11-10 08:00"), "Approved", "indeterminate")
    return c["id"]


@case("CC8.1-06", "fail", "(the PR author)")
def approval_by_author_identity(w, n):  # author alice-lead is alice@acme.example
    c = w.good_pr(n)
    w.con.execute("UPDATE pull_requests SET author_login = 'alice-lead' WHERE number = ?", [n])
    return c["id"]


@case("CC8.1-06", "pending", "not approved yet")
def approval_pending_in_grace(w, n):
    return merged_undeployed(w, n, day=23, approve=False)["id"]


@case("CC8.1-06", "fail", "no approval by a change approver")
def approval_missing_after_grace(w, n):
    return merged_undeployed(w, n, day=15, approve=False)["id"]


@case("CC8.1-06", "pass", "not deployed yet")
def approval_exists_undeployed(w, n):
    return merged_undeployed(w, n, day=23)["id"]


@case("CC8.1-06", "not_applicable", "standard change")
def approval_standard(w, n):
    return w.good_pr(n, approve=False, ticket_kw={"labels": ["standard-change"]})["id"]


@case("CC8.1-06", "not_applicable", "emergency change")
def approval_emergency(w, n):
    return w.good_pr(n, approve=False, labels=["emergency"])["id"]


# --- CC8.1-07 deployment ----------------------------------------------------------------------
@case("CC8.1-07", "pass", "production deployment")
def deploy_ok(w, n):
    return w.good_pr(n)["id"]


@case("CC8.1-07", "pending", "due by 2026-11-25T00:00Z")
def deploy_grace_just_inside(w, n):  # merged exactly 72h before as_of
    return merged_undeployed(w, n, day=22, hour="00:00")["id"]


@case("CC8.1-07", "fail", "no successful production deployment within 72h")
def deploy_grace_just_outside(w, n):
    return merged_undeployed(w, n, day=21, hour="23:59")["id"]


@case("CC8.1-07", "fail", "mallory is not in people.authorized_deployers")
def deploy_unauthorised(w, n):
    c = w.good_pr(n, deploy=False)
    w.deployment(w.pay, c["merge"], "production", "mallory", T("11-10 12:00"), [("success", T("11-10 12:01"))])
    return c["id"]


@case("CC8.1-07", "fail", "no successful production deployment")
def deploy_failed_status(w, n):
    c = w.good_pr(n, deploy=False)
    w.deployment(w.pay, c["merge"], "production", "ops-dave", T("11-10 12:00"),
                 [("success", T("11-10 12:01")), ("failure", T("11-10 12:02"))])
    return c["id"]


@case("CC8.1-07", "pending", "not deployed to production yet")
def deploy_after_as_of(w, n):  # a deployment after the as-of time has not happened yet
    c = merged_undeployed(w, n, day=24)
    w.deployment(w.pay, c["merge"], "production", "ops-dave", T("11-25 01:00"), [("success", T("11-25 01:01"))])
    return c["id"]


@case("CC8.1-07", "pass", "by ops-dave")
def deploy_batched_later_commit(w, n):  # shipped by a deployment of a later first-parent commit
    c = w.good_pr(n, day=11, deploy=False, done=False)
    later = sha(f"later{n}")
    w.commit(w.pay, later, T("11-11 11:00"), pr_numbers=[9000 + n])
    w.deployment(w.pay, later, "production", "ops-dave", T("11-11 12:00"), [("success", T("11-11 12:01"))])
    w.transition(c["key"], "carol@acme.example", T("11-12 09:00"), "Done", "done")
    return c["id"]


# --- CC8.1-08 post-implementation review ------------------------------------------------------
@case("CC8.1-08", "pass", "moved to Done at 2026-11-11T15:00Z")
def pir_ok(w, n):
    return w.good_pr(n)["id"]


@case("CC8.1-08", "fail", "closed (Done) at 2026-11-10T09:45Z, before deployment")
def pir_closed_before_deploy(w, n):
    c = w.good_pr(n, done=False)
    w.transition(c["key"], "carol@acme.example", T("11-10 09:45"), "Done", "done")
    return c["id"]


@case("CC8.1-08", "pass", "moved to Done at 2026-11-24T12:05Z")
def pir_just_inside(w, n):
    c = w.good_pr(n, done=False)
    w.transition(c["key"], "carol@acme.example", T("11-24 12:05"), "Done", "done")
    return c["id"]


@case("CC8.1-08", "fail", "after the deadline 2026-11-24T12:05Z")
def pir_just_outside(w, n):
    c = w.good_pr(n, done=False)
    w.transition(c["key"], "carol@acme.example", T("11-24 12:06"), "Done", "done")
    return c["id"]


@case("CC8.1-08", "pending", "not Done yet; review due by")
def pir_window_open(w, n):
    return w.good_pr(n, day=20, done=False)["id"]


@case("CC8.1-08", "pending", "awaits the production deployment")
def pir_undeployed(w, n):
    return merged_undeployed(w, n, day=23)["id"]


@case("CC8.1-08", "fail", "not Done within 14 days")
def pir_never_closed(w, n):
    return w.good_pr(n, day=2, done=False)["id"]


# --- CC8.1-09 emergency -----------------------------------------------------------------------
def emergency(w, n, day=10, approve_at="11-11 09:00", pm_at="11-12 09:00", **kw):
    c = w.good_pr(n, day=day, approve=False, labels=["emergency"], **kw)
    if approve_at:
        w.transition(c["key"], "cto@acme.example", T(approve_at), "Approved", "indeterminate")
    if pm_at:
        w.field_change(c["key"], "Post-Mortem", "carol@acme.example", T(pm_at), "root cause: config")
    return c


@case("CC8.1-09", "pass", "approved by cto@acme.example at 2026-11-11T09:00Z; post-mortem written")
def emergency_ok(w, n):
    return emergency(w, n)["id"]


@case("CC8.1-09", "fail", "no approval by an emergency approver by 2026-11-13T10:00Z")
def emergency_issue_type_no_approval(w, n):
    return emergency(w, n, approve_at=None, ticket_kw={"issue_type": "Emergency Change"})["id"]


@case("CC8.1-09", "fail", "after the deadline 2026-11-13T10:00Z")
def emergency_late_approval(w, n):
    return emergency(w, n, approve_at="11-13 10:01")["id"]


@case("CC8.1-09", "pending", "awaiting emergency approval until")
def emergency_retro_open(w, n):
    return emergency(w, n, day=23, approve_at=None, pm_at=None, done=False)["id"]


@case("CC8.1-09", "fail", "no post-mortem by 2026-11-17T12:05Z")
def emergency_no_postmortem(w, n):
    return emergency(w, n, pm_at=None)["id"]


@case("CC8.1-09", "pending", "post-mortem due by 2026-11-27T12:05Z")
def emergency_postmortem_open(w, n):
    return emergency(w, n, day=20, approve_at="11-20 11:00", pm_at=None, done=False)["id"]


@case("CC8.1-03", "fail", "0 of 1 APPROVED")
def emergency_still_reviewed(w, n):  # emergencies skip nothing but CC8.1-06
    return emergency(w, n, review=False)["id"]


# --- CC8.1-10 / 13 ----------------------------------------------------------------------------
@case("CC8.1-10", "pass", "merged into main by bob-rev")
def path_pr(w, n):
    return w.good_pr(n)["id"]


@case("CC8.1-13", "pass", "staging deployment")
def staging_ok(w, n):
    return w.good_pr(n)["id"]


@case("CC8.1-13", "fail", "no successful staging deployment")
def staging_none(w, n):
    return w.good_pr(n, staging=False)["id"]


@case("CC8.1-13", "fail", "is not before production deployment")
def staging_after_production(w, n):
    c = w.good_pr(n, staging=False)
    w.deployment(w.pay, c["merge"], "staging", "ops-dave", T("11-10 13:00"), [("success", T("11-10 13:01"))])
    return c["id"]


@case("CC8.1-13", "pass", "staging deployment")
def staging_superseded_inactive(w, n):  # GitHub marks superseded staging deployments inactive
    c = w.good_pr(n, staging=False)
    w.deployment(w.pay, c["merge"], "staging", "ops-dave", T("11-10 11:00"),
                 [("success", T("11-10 11:01")), ("inactive", T("11-10 11:30"))])
    return c["id"]


@case("CC8.1-13", "pending", "not deployed to production yet")
def staging_pending(w, n):
    return merged_undeployed(w, n, day=23)["id"]


@case("CC8.1-13", "not_applicable", "lists no staging_environments")
def staging_not_configured(w, n):
    return w.good_pr(n, repo=w.web, ticket=f"WEB-{n}")["id"]


@pytest.fixture(scope="module")
def world():
    """Every case in its own pair of repositories (one like PAY, one like WEB), one evaluation."""
    from ccwatch.settings import RepoConfig

    w = World()
    ids, repos = {}, []
    for i, (name, *_rest, build) in enumerate(CASES):
        w.pay, w.web = f"acme/pay-{i}", f"acme/web-{i}"
        repos += [RepoConfig(w.pay, "main", ("production",), ("staging",), ("test", "build")),
                  RepoConfig(w.web, "main", ("production",))]
        ids[name] = build(w, 100 + i)
    w.run(make_settings(extra_repos=repos))
    return w, ids, w.results()


@pytest.mark.parametrize("name,control,status,fragment", [c[:4] for c in CASES], ids=[c[0] for c in CASES])
def test_case(world, name, control, status, fragment):
    _, ids, results = world
    got_status, detail = results[(ids[name], control)]
    assert (got_status, fragment in detail) == (status, True), detail


def test_every_reachable_status_is_covered():
    seen = {(c[1], c[2]) for c in CASES}
    expected = {(c, s) for c in ("CC8.1-01", "CC8.1-02", "CC8.1-03", "CC8.1-04", "CC8.1-05", "CC8.1-10")
                for s in ("pass", "fail")}
    expected |= {(c, s) for c in ("CC8.1-06", "CC8.1-07", "CC8.1-08", "CC8.1-09", "CC8.1-13")
                 for s in ("pass", "fail", "pending")}
    expected |= {("CC8.1-06", "not_applicable"), ("CC8.1-13", "not_applicable")}
    expected.discard(("CC8.1-10", "fail"))  # direct pushes: test_direct_push_rows
    assert expected <= seen, expected - seen


def test_direct_push_rows():
    w = World()
    pushed = sha("direct push")
    w.commit(w.pay, pushed, T("11-12 10:00"), author="carol-dev", committer="carol-dev", message="hotfix\n\nbody")
    w.run()
    rows = {k[1]: v for k, v in w.results().items() if k[0] == f"{PAY}@{pushed}"}
    assert rows.pop("CC8.1-10") == ("fail", f"commit {pushed[:7]} pushed to main by carol-dev at 2026-11-12T10:00Z "
                                            "without a pull request: 'hotfix'")
    assert sorted(rows) == ["CC8.1-0" + str(i) for i in range(1, 10)] + ["CC8.1-13"]
    for status, detail in rows.values():
        assert status == "not_applicable" and f"direct push {pushed[:7]} by carol-dev" in detail


def test_self_merge_allowed_and_stale_approval_allowed():
    from ccwatch.settings import ReviewConfig

    w = World()
    c = w.good_pr(1, review=False)
    w.review(w.pay, 1, "bob-rev", "APPROVED", sha("old head"), T("11-10 07:00"))
    w.con.execute("UPDATE pull_requests SET merged_by_login = 'carol-dev'")
    strict = make_settings()
    w.run(strict)
    assert (w.status(c["id"], "CC8.1-03"), w.status(c["id"], "CC8.1-04")) == ("fail", "fail")
    lax = make_settings(review=ReviewConfig(allow_stale_approval=True), sod=SodConfig(allow_self_merge=True))
    w.run(lax)
    assert (w.status(c["id"], "CC8.1-03"), w.status(c["id"], "CC8.1-04")) == ("pass", "pass")


def test_min_approvals_counts_people_not_reviews():
    from ccwatch.settings import ReviewConfig

    w = World()
    c = w.good_pr(1)
    w.review(w.pay, 1, "bob-rev", "APPROVED", c["head"], T("11-10 09:05"))  # same person twice
    s = make_settings(review=ReviewConfig(min_approvals=2))
    w.run(s)
    assert w.status(c["id"], "CC8.1-03") == "fail"
    w.review(w.pay, 1, "erin-mgr", "APPROVED", c["head"], T("11-10 09:06"))
    w.run(s)
    assert w.status(c["id"], "CC8.1-03") == "pass"


def test_deploy_grace_window_moves_with_as_of():
    w = World()
    c = merged_undeployed(w, 1, day=20)
    w.run(as_of=T("11-23 09:59").replace(tzinfo=__import__("datetime").UTC))
    assert w.status(c["id"], "CC8.1-07") == "pending"
    w.run(as_of=(T("11-23 10:00") + timedelta(minutes=1)).replace(tzinfo=__import__("datetime").UTC))
    assert w.status(c["id"], "CC8.1-07") == "fail"
