"""Table-driven tests of the repository controls CC8.1-14 (production history not rewritten) and
CC8.1-15 (production deployments ship reviewed branch code).

Each case is its own configured repository; rows are API-shaped as the normaliser stores them:
``branch_activity`` entries of ``GET /activity`` (push, force_push, branch_deletion, ...; all-zero
shas stored as NULL), ``branch_activity_reads`` (the HTTP status of the last read),
``commit_sightings`` (the chains earlier loads saw), deployments with their statuses, PRs and
reviews.  As of 2026-11-25T00:00Z, window from 2026-08-27T00:00Z.
"""

from __future__ import annotations

import pytest
from ccwatch.settings import RepoConfig

from tests.helpers.controls_world import T, World, make_settings, sha

BOT = "github-actions[bot]"


def chain(w, r, n=3):
    """main: c0 <- c1 <- ... (a PR merge each), the log showing each one's pr_merge."""
    shas = [sha(f"{r}-c{i}") for i in range(n)]
    prev = None
    for i, s in enumerate(shas):
        w.commit(r, s, T(f"11-{10 + i:02d} 10:00"), pr_numbers=[i + 1], parent=prev)
        w.activity(r, "pr_merge", T(f"11-{10 + i:02d} 10:00"), "bob-rev", prev, s)
        prev = s
    w.activity_read(r)
    return shas


def seen(w, r, shas, first="11-20 02:00", last="11-24 02:00"):
    for s in shas:
        w.sighting(r, s, T(first), T(last))


def deploy(w, r, s, at="11-15 12:00", creator=BOT, states=("success",)):
    return w.deployment(r, s, "production", creator, T(at), [(st, T(at)) for st in states])


def pr_head(w, r, n, head, approvals=(("bob-rev", "11-14 09:00"),), author="carol-dev", base="main", merged=True):
    """PR #n into ``base`` with head ``head`` (merged 11-16 unless ``merged`` is False), and its reviews."""
    w.pull(r, n, f"FEAT: {n} [PAY-{n}]", author=author, head=head, merge=sha(f"{r}-m{n}") if merged else None,
           merged_at=T("11-16 10:00") if merged else None, base=base)
    for login, at in approvals:
        w.review(r, n, login, "APPROVED", head, T(at), rtype="Bot" if login.endswith("[bot]") else "User")


# --- CC8.1-14 ------------------------------------------------------------------------------------
def h_clean(w, r):
    seen(w, r, chain(w, r))


def h_force_push(w, r):
    c = chain(w, r)
    w.activity(r, "force_push", T("11-20 08:30"), "mallory", sha("rewritten"), c[2])


def h_branch_deletion(w, r):
    c = chain(w, r)
    w.activity(r, "branch_deletion", T("11-18 07:00"), "mallory", c[2], None)
    w.activity(r, "branch_creation", T("11-18 07:05"), "mallory", None, c[2])


def h_deletion_by_deleted_user(w, r):
    c = chain(w, r)
    w.activity(r, "branch_deletion", T("11-18 07:00"), None, c[2], None)


def h_force_push_before_window(w, r):
    c = chain(w, r)
    w.activity(r, "force_push", T("08-01 08:30"), "mallory", sha("old"), c[0])


def h_disappeared(w, r):
    c = chain(w, r)
    seen(w, r, c)
    w.sighting(r, sha(f"{r}-gone"), T("11-12 02:00"), T("11-19 02:00"))  # on the chain until 11-19, not now


def h_disappeared_before_window(w, r):
    chain(w, r)
    w.sighting(r, sha(f"{r}-gone"), T("06-01 02:00"), T("08-01 02:00"))


def h_seen_at_the_as_of_time(w, r):  # a run at (or after) the as-of time still saw it: not gone as of then
    chain(w, r)
    w.sighting(r, sha(f"{r}-later"), T("11-12 02:00"), T("11-25 00:00"))


def h_unreadable(w, r):
    c = chain(w, r)
    w.con.execute("DELETE FROM branch_activity_reads WHERE repo = ?", [r])
    w.activity_read(r, 403, "HTTP 403: Resource not accessible by integration")
    seen(w, r, c)


def h_never_read(w, r):
    chain(w, r)
    w.con.execute("DELETE FROM branch_activity_reads WHERE repo = ?", [r])


def h_force_push_at_window_start(w, r):  # the window [as_of - lookback_days, as_of] includes its start
    c = chain(w, r)
    w.activity(r, "force_push", T("08-27 00:00"), "mallory", sha("old"), c[0])


def h_disappeared_last_seen_at_window_start(w, r):
    chain(w, r)
    w.sighting(r, sha(f"{r}-gone"), T("08-20 02:00"), T("08-27 00:00"))


# --- CC8.1-15 ------------------------------------------------------------------------------------
def d_branch_commit(w, r):
    c = chain(w, r)
    deploy(w, r, c[1])
    deploy(w, r, c[2], at="11-16 12:00")


def d_no_deployment(w, r):
    chain(w, r)


def d_approved_head_before_merge(w, r):
    chain(w, r)
    head = sha(f"{r}-head")
    pr_head(w, r, 40, head)
    deploy(w, r, head, at="11-15 12:00")  # deploy-before-merge: the PR merged on 11-16


def d_feature_branch(w, r):
    chain(w, r)
    deploy(w, r, sha(f"{r}-feature"), at="11-15 12:00", creator="carol-dev")


def d_unreviewed_head(w, r):
    chain(w, r)
    head = sha(f"{r}-head")
    pr_head(w, r, 41, head, approvals=())
    deploy(w, r, head)


def d_approval_after_deploy(w, r):
    chain(w, r)
    head = sha(f"{r}-head")
    pr_head(w, r, 42, head, approvals=(("bob-rev", "11-15 12:30"),))
    deploy(w, r, head, at="11-15 12:00")


def d_approval_on_older_head(w, r):
    chain(w, r)
    head = sha(f"{r}-head")
    pr_head(w, r, 43, head, approvals=())
    w.review(r, 43, "bob-rev", "APPROVED", sha(f"{r}-older"), T("11-14 09:00"))
    deploy(w, r, head)


def d_bot_approval(w, r):
    chain(w, r)
    head = sha(f"{r}-head")
    pr_head(w, r, 44, head, approvals=(("dependabot[bot]", "11-14 09:00"),))
    deploy(w, r, head)


def d_head_of_pr_into_other_branch(w, r):
    chain(w, r)
    head = sha(f"{r}-head")
    pr_head(w, r, 45, head, base="release")
    deploy(w, r, head)


def d_tag_off_the_branch(w, r):  # a tag's commit that never was on main (e.g. a hotfix tag)
    chain(w, r)
    w.deployment(r, sha(f"{r}-v1.2.3-hotfix"), "production", "ops-dave", T("11-17 09:00"),
                 [("success", T("11-17 09:05"))])


def d_failed_deployment_is_not_counted(w, r):
    chain(w, r)
    deploy(w, r, sha(f"{r}-feature"), states=("failure",))


def d_success_before_window(w, r):
    chain(w, r)
    deploy(w, r, sha(f"{r}-feature"), at="08-01 12:00")


def d_staging_is_not_judged(w, r):
    chain(w, r)
    w.deployment(r, sha(f"{r}-feature"), "staging", "carol-dev", T("11-15 12:00"), [("success", T("11-15 12:05"))])


def d_self_approved_head(w, r):  # the author's own approval (logins compare case-insensitively) is no review
    chain(w, r)
    head = sha(f"{r}-head")
    pr_head(w, r, 46, head, approvals=(("Carol-Dev", "11-14 09:00"),))
    deploy(w, r, head)


def d_success_at_window_start(w, r):  # the window includes its start
    chain(w, r)
    deploy(w, r, sha(f"{r}-feature"), at="08-27 00:00")



CASES = [
    # (case, control, status, detail fragment, builder(w, repo))
    ("clean_history", "CC8.1-14", "pass", "main: no force push, branch deletion or disappeared commit since "
                                          "2026-08-27T00:00Z (3 activity log entries in the window)", h_clean),
    ("force_push", "CC8.1-14", "fail", "1 rewrite of main since 2026-08-27T00:00Z: force push by mallory at "
                                       "2026-11-20T08:30Z (", h_force_push),
    ("branch_deletion", "CC8.1-14", "fail", "branch deletion by mallory at 2026-11-18T07:00Z (", h_branch_deletion),
    ("deletion_by_unknown", "CC8.1-14", "fail", "branch deletion by an unknown actor at", h_deletion_by_deleted_user),
    ("force_push_before_window", "CC8.1-14", "pass", "no force push", h_force_push_before_window),
    ("disappeared_commit", "CC8.1-14", "fail", "1 commit an earlier run saw on main disappeared from it: ",
     h_disappeared),
    ("disappeared_before_window", "CC8.1-14", "pass", "no force push", h_disappeared_before_window),
    ("seen_at_as_of_not_disappeared", "CC8.1-14", "pass", "no force push", h_seen_at_the_as_of_time),
    ("unreadable_log", "CC8.1-14", "fail", "the activity log of main could not be read (HTTP 403: Resource not "
                                           "accessible by integration): force pushes and deletions cannot be ruled out",
     h_unreadable),
    ("log_never_read", "CC8.1-14", "fail", "could not be read (it was not fetched)", h_never_read),
    ("deploys_branch_commits", "CC8.1-15", "pass", "2 production deployments since 2026-08-27T00:00Z, each of main's "
                                                   "first-parent history", d_branch_commit),
    ("no_deployment", "CC8.1-15", "pass", "no production deployment reached success since", d_no_deployment),
    ("approved_head_deploy_before_merge", "CC8.1-15", "pass", "1 the approved head of a pull request before its merge",
     d_approved_head_before_merge),
    ("feature_branch", "CC8.1-15", "fail", "1 of 1 production deployment since 2026-08-27T00:00Z shipped code that is "
                                           "neither on main's first-parent history nor an approved pull request head: "
                                           "deployment ", d_feature_branch),
    ("unreviewed_head", "CC8.1-15", "fail", "(head of PR #", d_unreviewed_head),
    ("approval_after_deployment", "CC8.1-15", "fail", "without an APPROVED review on it before the deployment",
     d_approval_after_deploy),
    ("approval_of_older_head", "CC8.1-15", "fail", "without an APPROVED review on it", d_approval_on_older_head),
    ("bot_approval", "CC8.1-15", "fail", "without an APPROVED review on it", d_bot_approval),
    ("head_of_pr_into_release", "CC8.1-15", "fail", "nor the head of a pull request into main merged in the window",
     d_head_of_pr_into_other_branch),
    ("tag_off_the_branch", "CC8.1-15", "fail", "by ops-dave at 2026-11-17T09:05Z to production (not on main's "
                                               "first-parent history", d_tag_off_the_branch),
    ("failed_deployment_not_counted", "CC8.1-15", "pass", "no production deployment", d_failed_deployment_is_not_counted),
    ("success_before_window", "CC8.1-15", "pass", "no production deployment", d_success_before_window),
    ("staging_not_judged", "CC8.1-15", "pass", "no production deployment", d_staging_is_not_judged),
    # rules a mutation spot-check found no case holding
    ("force_push_at_window_start", "CC8.1-14", "fail", "force push by mallory at 2026-08-27T00:00Z",
     h_force_push_at_window_start),
    ("disappeared_last_seen_at_window_start", "CC8.1-14", "fail", "1 commit an earlier run saw on main disappeared",
     h_disappeared_last_seen_at_window_start),
    ("self_approved_head", "CC8.1-15", "fail", "without an APPROVED review on it", d_self_approved_head),
    ("success_at_window_start", "CC8.1-15", "fail", "at 2026-08-27T00:00Z", d_success_at_window_start),
]


@pytest.fixture(scope="module")
def world():
    w = World()
    repos = []
    for i, (*_rest, build) in enumerate(CASES):
        repo = f"acme/hist-{i}"
        repos.append(RepoConfig(repo, "main", ("production",)))
        build(w, repo)
    w.run(make_settings(extra_repos=repos))
    return w, w.results()


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c[0] for c in CASES])
def test_case(world, i):
    _name, control, status, fragment, _ = CASES[i]
    got, detail = world[1][(f"acme/hist-{i}", control)]
    assert (got, fragment in detail) == (status, True), detail


def test_every_status_of_both_controls_is_covered():
    assert {(c[1], c[2]) for c in CASES} == {(k, s) for k in ("CC8.1-14", "CC8.1-15") for s in ("pass", "fail")}


def test_failing_deployment_detail_names_id_sha_creator_and_time(world):
    w, results = world
    i = [c[0] for c in CASES].index("feature_branch")
    repo = f"acme/hist-{i}"
    (dep_id,) = w.con.execute("SELECT deployment_id FROM deployments WHERE repo = ?", [repo]).fetchone()
    detail = results[(repo, "CC8.1-15")][1]
    assert (f"deployment {dep_id} of {sha(repo + '-feature')[:7]} by carol-dev at 2026-11-15T12:00Z to production"
            in detail), detail


def test_force_push_detail_names_before_and_after(world):
    _, results = world
    i = [c[0] for c in CASES].index("force_push")
    detail = results[(f"acme/hist-{i}", "CC8.1-14")][1]
    assert f"({sha('rewritten')[:7]} -> {sha(f'acme/hist-{i}-c2')[:7]})" in detail, detail


def test_every_repository_gets_one_row_of_each():
    w = World()
    w.run()
    rows = w.con.execute("SELECT change_id, control_id, status FROM control_results WHERE control_id IN "
                         "('CC8.1-14', 'CC8.1-15') ORDER BY 1, 2").fetchall()
    # nothing fetched: the log was never read (fail), no production deployment (pass)
    assert rows == [("acme/payments-api", "CC8.1-14", "fail"), ("acme/payments-api", "CC8.1-15", "pass"),
                    ("acme/web-frontend", "CC8.1-14", "fail"), ("acme/web-frontend", "CC8.1-15", "pass")]
