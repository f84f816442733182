"""Table-driven tests of CC8.1-06 (final approval), CC8.1-07 (deployment), CC8.1-08
(post-implementation review) and CC8.1-13 (staging before production): one world, one case per PR.

Each case builds one change (a compliant ``good_pr`` with one clause broken) and states the
expected status of one control, plus a fragment its detail must contain
(``tests.helpers.controls_world.Cases``).
"""

from __future__ import annotations

from datetime import timedelta

from tests.helpers.controls_world import (
    Cases,
    T,
    World,
    merged_undeployed,
    reachable,
    sha,
)

case = Cases()


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


@case("CC8.1-06", "fail", "Approved by an unknown Jira user at 2026-11-10T08:00Z (deleted or anonymous: in no list)")
def approval_by_unknown_jira_user(w, n):  # (r2) a deleted or anonymous Jira user is in no list
    c = w.good_pr(n, approve=False)
    w.transition(c["key"], None, T("11-10 08:00"), "Approved", "indeterminate")
    return c["id"]


@case("CC8.1-06", "not_applicable", "standard change: no final approval required")
def approval_standard_label_removed_after_as_of(w, n):  # the category is decided on the as-of labels
    c = w.good_pr(n, approve=False, ticket_kw={"labels": []})
    w.field_change(c["key"], "labels", "carol@acme.example", T("11-26 09:00"), "", from_string="standard-change")
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
                 [("in_progress", T("11-10 12:01")), ("failure", T("11-10 12:02"))])
    return c["id"]


@case("CC8.1-07", "pending", "not deployed to production yet")
def deploy_after_as_of(w, n):  # a deployment after the as-of time has not happened yet
    c = merged_undeployed(w, n, day=24)
    w.deployment(w.pay, c["merge"], "production", "ops-dave", T("11-25 01:00"), [("success", T("11-25 01:01"))])
    return c["id"]


@case("CC8.1-06", "fail", "not before production deployment")
def approval_after_a_deployment_later_marked_inactive(w, n):  # r2: a deployment counts from its first success
    c = w.good_pr(n, deploy=False, approve=False, done=False)
    w.deployment(w.pay, c["merge"], "production", "github-actions[bot]", T("11-10 12:00"),
                 [("success", T("11-10 12:05")), ("inactive", T("11-10 13:00"))])
    w.transition(c["key"], "alice@acme.example", T("11-10 12:30"), "Approved", "indeterminate")
    w.transition(c["key"], "carol@acme.example", T("11-11 15:00"), "Done", "done", frm="Approved")
    return c["id"]


@case("CC8.1-07", "pass", "production deployment")
def deploy_rolled_back_later_still_shipped(w, n):  # r2: a later failure does not un-ship what shipped
    c = w.good_pr(n, deploy=False)
    w.deployment(w.pay, c["merge"], "staging", "github-actions[bot]", T("11-10 11:00"),
                 [("success", T("11-10 11:05"))])
    w.deployment(w.pay, c["merge"], "production", "ops-dave", T("11-10 12:00"),
                 [("success", T("11-10 12:01")), ("failure", T("11-10 12:30"))])
    return c["id"]


@case("CC8.1-13", "pass", "staging deployment")
def staging_rolled_back_later_still_validated(w, n):  # r2, staging too
    c = w.good_pr(n, deploy=False)
    w.deployment(w.pay, c["merge"], "staging", "github-actions[bot]", T("11-10 11:00"),
                 [("success", T("11-10 11:05")), ("failure", T("11-10 11:30"))])
    w.deployment(w.pay, c["merge"], "production", "github-actions[bot]", T("11-10 12:00"),
                 [("success", T("11-10 12:05"))])
    return c["id"]


@case("CC8.1-07", "pass", "by ops-dave")
def deploy_batched_later_commit(w, n):  # shipped by a deployment of a later first-parent commit
    c = w.good_pr(n, day=11, deploy=False, done=False)
    later = sha(f"later{n}")
    w.commit(w.pay, later, T("11-11 11:00"), pr_numbers=[9000 + n])
    w.deployment(w.pay, later, "production", "ops-dave", T("11-11 12:00"), [("success", T("11-11 12:01"))])
    w.transition(c["key"], "carol@acme.example", T("11-12 09:00"), "Done", "done")
    return c["id"]


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


@case("CC8.1-08", "pending", "not Done yet; review due by")
def pir_done_after_as_of(w, n):  # Done only after the as-of time
    c = w.good_pr(n, day=20, done=False)
    w.transition(c["key"], "carol@acme.example", T("11-26 09:00"), "Done", "done", frm="Approved")
    return c["id"]


@case("CC8.1-08", "pending", "awaits the production deployment")
def pir_undeployed(w, n):
    return merged_undeployed(w, n, day=23)["id"]


@case("CC8.1-08", "fail", "not Done within 14 days")
def pir_never_closed(w, n):
    return w.good_pr(n, day=2, done=False)["id"]


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


# --- rules a mutation spot-check found no case holding --------------------------------------


@case("CC8.1-06", "fail", "not before production deployment")
def approval_at_the_deployment_instant(w, n):  # "before the deployment" is strict: the same instant is not
    c = w.good_pr(n, approve=False)
    w.transition(c["key"], "alice@acme.example", T("11-10 12:05"), "Approved", "indeterminate")
    return c["id"]


@case("CC8.1-06", "fail", "no approval by a change approver")
def approval_after_as_of_not_counted(w, n):  # undeployed past the grace; an approval after the as-of time
    # has not happened yet, so it cannot satisfy the control
    c = merged_undeployed(w, n, day=15, approve=False)
    w.transition(c["key"], "alice@acme.example", T("11-26 09:00"), "Approved", "indeterminate")
    return c["id"]


@case("CC8.1-07", "fail", "not in people.authorized_deployers")
def deploy_by_unknown_account(w, n):  # (r2) a creator GitHub does not name (deleted, ghost) is in no list
    c = w.good_pr(n, deploy=False)
    w.deployment(w.pay, c["merge"], "production", None, T("11-10 12:00"), [("success", T("11-10 12:01"))])
    return c["id"]


@case("CC8.1-08", "fail", "before deployment")
def pir_closed_before_deploy_window_open(w, n):  # closed before the deployment fails at once, even while
    # the PIR window after the deployment is still open (not pending)
    c = w.good_pr(n, day=20, done=False)
    w.transition(c["key"], "carol@acme.example", T("11-20 09:45"), "Done", "done")
    return c["id"]


@case("CC8.1-08", "fail", "before deployment")
def pir_done_at_the_deployment_instant(w, n):  # "after the deployment" is strict, as "before" is for
    # CC8.1-06: a ticket moved to Done at the deployment's own instant was not closed after it
    c = w.good_pr(n, day=20, done=False)
    w.transition(c["key"], "carol@acme.example", T("11-20 12:05"), "Done", "done")
    return c["id"]


@case("CC8.1-13", "fail", "is not before production deployment")
def staging_same_instant_as_production(w, n):  # "before its production deployment" is strict
    c = w.good_pr(n, staging=False)
    w.deployment(w.pay, c["merge"], "staging", "ops-dave", T("11-10 12:00"), [("success", T("11-10 12:05"))])
    return c["id"]


@case("CC8.1-06", "fail", "not before production deployment")
def approval_between_two_success_statuses(w, n):  # (r2) a deployment happened at its FIRST success: a
    # second success status of the same deployment does not move it later
    c = w.good_pr(n, deploy=False, approve=False)
    w.deployment(w.pay, c["merge"], "staging", "github-actions[bot]", T("11-10 11:00"), [("success", T("11-10 11:05"))])
    w.deployment(w.pay, c["merge"], "production", "github-actions[bot]", T("11-10 12:00"),
                 [("success", T("11-10 12:05")), ("inactive", T("11-10 12:30")), ("success", T("11-10 14:00"))])
    w.transition(c["key"], "alice@acme.example", T("11-10 13:00"), "Approved", "indeterminate")
    return c["id"]


def test_deploy_grace_window_moves_with_as_of():
    w = World()
    c = merged_undeployed(w, 1, day=20)
    w.run(as_of=T("11-23 09:59").replace(tzinfo=__import__("datetime").UTC))
    assert w.status(c["id"], "CC8.1-07") == "pending"
    w.run(as_of=(T("11-23 10:00") + timedelta(minutes=1)).replace(tzinfo=__import__("datetime").UTC))
    assert w.status(c["id"], "CC8.1-07") == "fail"


world, test_case, test_every_reachable_status_is_covered = case.tests(
    reachable(("CC8.1-06", "CC8.1-07", "CC8.1-08", "CC8.1-13"), ("pass", "fail", "pending")) | {("CC8.1-06", "not_applicable"), ("CC8.1-13", "not_applicable")})
