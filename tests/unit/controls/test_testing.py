"""Table-driven tests of CC8.1-05 (testing before the merge): one world, one case per PR.

Each case builds one change (a compliant ``good_pr`` with one clause broken) and states the
expected status of one control, plus a fragment its detail must contain
(``tests.helpers.controls_world.Cases``).
"""

from __future__ import annotations

from tests.helpers.controls_world import Cases, T, reachable

case = Cases()


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


world, test_case, test_every_reachable_status_is_covered = case.tests(
    reachable(("CC8.1-05",), ("pass", "fail")))
