"""Table-driven tests of CC8.1-03 (peer review) and CC8.1-04 (segregation of duties): one world,
one case per PR.

Each case builds one change (a compliant ``good_pr`` with one clause broken) and states the
expected status of one control, plus a fragment its detail must contain
(``tests.helpers.controls_world.Cases``).
"""

from __future__ import annotations

from ccwatch.settings import SodConfig

from tests.helpers.controls_world import (
    Cases,
    T,
    World,
    emergency,
    make_settings,
    reachable,
    sha,
)

case = Cases()


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


@case("CC8.1-03", "fail", "changes still requested by dan-rev")
def review_cr_withdrawn_only_after_merge(w, n):  # the latest review *before the merge* decides: an
    # approval submitted after the merge does not withdraw a change request the merge ignored
    c = w.good_pr(n)
    w.review(w.pay, n, "dan-rev", "CHANGES_REQUESTED", c["head"], T("11-10 09:30"))
    w.review(w.pay, n, "dan-rev", "APPROVED", c["head"], T("11-10 10:30"))
    return c["id"]


@case("CC8.1-03", "fail", "(1 review: dan-rev COMMENTED)")
def review_after_as_of_not_in_detail(w, n):  # (r2) a review submitted after the as-of time has not
    # happened yet: it is not in the detail line either
    c = w.good_pr(n, review=False)
    w.review(w.pay, n, "dan-rev", "COMMENTED", c["head"], T("11-10 09:00"))
    w.review(w.pay, n, "bob-rev", "APPROVED", c["head"], T("11-25 09:00"))
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


@case("CC8.1-04", "fail", "'s final approval at 2026-11-10T09:40Z was given by an unknown Jira user "
                          "(deleted or anonymous), who cannot be shown to be someone other than carol-dev")
def sod_ticket_approved_by_unknown_jira_user(w, n):  # (r2) an unknown actor fails a SoD clause
    c = w.good_pr(n)
    w.transition(c["key"], None, T("11-10 09:40"), "Approved", "indeterminate")
    return c["id"]


@case("CC8.1-04", "pass", "approved by alice@acme.example")
def sod_final_approval_as_of(w, n):  # a move into Approved after the as-of time has not happened yet
    c = w.good_pr(n)
    w.transition(c["key"], None, T("11-26 09:40"), "Approved", "indeterminate")
    return c["id"]


@case("CC8.1-04", "pass", "not deployed yet, no linked ticket")
def sod_vacuous(w, n):  # no ticket and undeployed: nothing to judge, never pending
    return w.good_pr(n, day=24, title="no key", deploy=False)["id"]


@case("CC8.1-03", "fail", "0 of 1 APPROVED")
def emergency_still_reviewed(w, n):  # emergencies skip nothing but CC8.1-06
    return emergency(w, n, review=False)["id"]


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


@case("CC8.1-04", "fail", "the production deployment's creator is unknown")
def deployer_deleted_account(w, n):  # r2: an actor the source does not name cannot be shown to differ
    c = w.good_pr(n, deploy=False)
    w.deployment(w.pay, c["merge"], "staging", "github-actions[bot]", T("11-10 11:00"), [("success", T("11-10 11:05"))])
    w.deployment(w.pay, c["merge"], "production", None, T("11-10 12:00"), [("success", T("11-10 12:05"))],
                 creator_type=None)
    return c["id"]


# --- (r2) merge queues: the merger is whoever added the PR to the queue --------------------------
QUEUE_BOT = "github-merge-queue[bot]"


def queue_merged(w, n, *queued):
    """A good PR merged 11-10 10:00 by the merge queue's bot; ``queued``: (enqueuer, 'MM-DD HH:MM') events."""
    c = w.good_pr(n)
    w.con.execute("UPDATE pull_requests SET merged_by_login = ? WHERE repo = ? AND number = ?", [QUEUE_BOT, w.pay, n])
    for who, at in queued:
        w.queue_event(w.pay, n, who, T(at))
    return c


@case("CC8.1-04", "fail", "carol-dev merged their own PR: added it to the merge queue at 2026-11-10T09:30Z "
                          "(merged by github-merge-queue[bot])")
def queue_author_enqueued_own_pr(w, n):  # the way through of issue #12 item 7
    return queue_merged(w, n, ("carol-dev", "11-10 09:30"))["id"]


@case("CC8.1-04", "pass", "merged by bob-rev through the merge queue (added at 2026-11-10T09:30Z; "
                          "merged by github-merge-queue[bot])")
def queue_reviewer_enqueued(w, n):
    return queue_merged(w, n, ("bob-rev", "11-10 09:30"))["id"]


@case("CC8.1-04", "fail", "carol-dev merged their own PR: added it to the merge queue at 2026-11-10T09:40Z")
def queue_last_enqueue_before_merge_counts(w, n):  # bob queued, it was dequeued, carol queued it again
    return queue_merged(w, n, ("bob-rev", "11-10 09:00"), ("carol-dev", "11-10 09:40"))["id"]


@case("CC8.1-04", "pass", "merged by bob-rev through the merge queue")
def queue_enqueue_after_merge_ignored(w, n):  # an event after the merge did not queue this merge
    return queue_merged(w, n, ("bob-rev", "11-10 09:00"), ("carol-dev", "11-10 10:30"))["id"]


@case("CC8.1-04", "fail", "the merge queue (github-merge-queue[bot]) merged the PR and who added it to the queue is "
                          "unknown (no AddedToMergeQueueEvent before the merge)")
def queue_no_enqueue_event(w, n):
    return queue_merged(w, n)["id"]


@case("CC8.1-04", "fail", "who added it to the queue is unknown (the last AddedToMergeQueueEvent before the merge, "
                          "at 2026-11-10T09:30Z, names no user)")
def queue_enqueuer_deleted(w, n):  # enqueuer and actor gone (ghost): unknown, never "someone else"
    c = queue_merged(w, n)
    w.queue_event(w.pay, n, None, T("11-10 09:30"), actor=None)
    return c["id"]


@case("CC8.1-04", "fail", "carol-dev merged their own PR: added it to the merge queue at 2026-11-10T09:30Z "
                          "(merged by bob-rev; the activity log shows merge_queue_merge)")
def queue_merge_in_activity_log(w, n):  # merged_by names a person, the log says the queue merged it
    c = w.good_pr(n)
    w.queue_event(w.pay, n, "carol-dev", T("11-10 09:30"))
    w.activity(w.pay, "merge_queue_merge", T("11-10 10:00"), QUEUE_BOT, sha(f"{w.pay}-before"), c["merge"])
    return c["id"]


@case("CC8.1-04", "pass", "merged by bob-rev")
def queue_event_without_queue_merge_ignored(w, n):  # queued, dequeued, then merged by hand by bob
    c = w.good_pr(n)
    w.queue_event(w.pay, n, "carol-dev", T("11-10 09:30"))
    return c["id"]


world, test_case, test_every_reachable_status_is_covered = case.tests(
    reachable(("CC8.1-03", "CC8.1-04"), ("pass", "fail")))
