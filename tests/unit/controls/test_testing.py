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


# --- (r2) required checks pinned to a GitHub App; no result is never green ------------------------


def classic_pin(w, repo, context, app_id):
    """Classic protection's required_status_checks as the normaliser stores it (``checks[]``)."""
    w.rule(repo, "classic", "required_status_checks",
           parameters={"required_status_checks": [{"context": context, "app_id": app_id}],
                       "strict_required_status_checks_policy": True})


def ruleset_pin(w, repo, context, integration_id, enforcement="active"):
    """A ruleset's required_status_checks rule (``/rules/branches/{b}`` parameters)."""
    w.rule(repo, "ruleset", "required_status_checks", ruleset_id=9, enforcement=enforcement, bypass=0,
           parameters={"required_status_checks": [{"context": context, "integration_id": integration_id}],
                       "strict_required_status_checks_policy": False})


def failed_build_then_user_status(w, n):
    """The way through of issue #12 item 5: the app's build check run failed, then a person with
    push access posted a commit status build=success on the head."""
    c = w.good_pr(n, checks=False)
    w.check_run(w.pay, c["head"], "test", "success", T("11-10 08:00"), T("11-10 08:10"))
    w.check_run(w.pay, c["head"], "build", "failure", T("11-10 08:00"), T("11-10 08:10"))
    w.commit_status(w.pay, c["head"], "build", "success", T("11-10 08:30"), creator="carol-dev")
    return c


@case("CC8.1-05", "fail", "failed: build failure by app github-actions (required from app github-actions "
                          "(id 15368, branch protection); not counted: status success by carol-dev")
def pinned_by_protection_user_status_ignored(w, n):
    c = failed_build_then_user_status(w, n)
    classic_pin(w, w.pay, "build", 15368)
    return c["id"]


@case("CC8.1-05", "fail", "required from app github-actions (id 15368, ruleset 9)")
def pinned_by_ruleset_user_status_ignored(w, n):
    c = failed_build_then_user_status(w, n)
    ruleset_pin(w, w.pay, "build", 15368)
    return c["id"]


@case("CC8.1-05", "fail", "required from app github-actions (required_checks)")
def pinned_by_config_user_status_ignored(w, n):
    c = failed_build_then_user_status(w, n)
    w.repo_config(w.pay, required_checks=("test", "build"), required_check_apps=(("build", "github-actions"),))
    return c["id"]


@case("CC8.1-05", "pass", "build success (latest of 2 runs)")
def unpinned_user_status_still_counts(w, n):  # without a pin a status of any creator counts (r1 rule)
    return failed_build_then_user_status(w, n)["id"]


@case("CC8.1-05", "pass", "build success (latest of 2 runs)")
def pin_any_source_app_id_minus_one(w, n):  # classic app_id -1 / null: "any source"
    c = failed_build_then_user_status(w, n)
    classic_pin(w, w.pay, "build", -1)
    return c["id"]


@case("CC8.1-05", "pass", "build success (latest of 2 runs)")
def pin_of_evaluate_mode_ruleset_ignored(w, n):  # a ruleset in evaluate mode enforces nothing
    c = failed_build_then_user_status(w, n)
    ruleset_pin(w, w.pay, "build", 15368, enforcement="evaluate")
    return c["id"]


@case("CC8.1-05", "pass", "build success by github-actions[bot] (required from app github-actions")
def pinned_status_from_the_apps_bot_counts(w, n):
    c = w.good_pr(n, checks=False)
    w.check_run(w.pay, c["head"], "test", "success", T("11-10 08:00"), T("11-10 08:10"))
    w.commit_status(w.pay, c["head"], "build", "success", T("11-10 08:30"), creator="github-actions[bot]")
    classic_pin(w, w.pay, "build", 15368)
    return c["id"]


@case("CC8.1-05", "fail", "required check(s) never ran before the merge: build (required from app buildkite "
                          "(required_checks); not counted: check run success by app github-actions)")
def pinned_to_another_app(w, n):  # the run is green but from the wrong app
    c = w.good_pr(n)
    w.repo_config(w.pay, required_checks=("test", "build"), required_check_apps=(("build", "buildkite"),))
    return c["id"]


@case("CC8.1-05", "fail", "build (required from app (slug unknown) (id 4242, branch protection); "
                          "not counted: status success by some-ci[bot])")
def pinned_app_never_seen_slug_unknown(w, n):  # no run of App 4242 anywhere: its bot cannot be named
    c = w.good_pr(n, checks=False)
    w.check_run(w.pay, c["head"], "test", "success", T("11-10 08:00"), T("11-10 08:10"))
    w.commit_status(w.pay, c["head"], "build", "success", T("11-10 08:30"), creator="some-ci[bot]")
    classic_pin(w, w.pay, "build", 4242)
    return c["id"]


@case("CC8.1-05", "fail", "ci/jenkins has no state (no result is never green)")
def status_with_null_state_web(w, n):
    c = w.good_pr(n, repo=w.web, ticket=f"WEB-{n}", checks=False)
    w.commit_status(w.web, c["head"], "ci/jenkins", "success", T("11-10 08:00"))
    w.commit_status(w.web, c["head"], "ci/jenkins", None, T("11-10 08:05"))
    return c["id"]


@case("CC8.1-05", "fail", "build queued not finished at the merge")
def check_run_still_queued_web(w, n):  # queued: no started_at nor completed_at, still a check on the head
    c = w.good_pr(n, repo=w.web, ticket=f"WEB-{n}", checks=False)
    w.check_run(w.web, c["head"], "lint", "success", T("11-10 08:00"), T("11-10 08:01"))
    w.check_run(w.web, c["head"], "build", None, None, None, status="queued")
    return c["id"]


@case("CC8.1-05", "fail", "build completed without a conclusion (no result is never green)")
def check_run_completed_without_conclusion(w, n):
    c = w.good_pr(n, checks=False)
    w.check_run(w.pay, c["head"], "test", "success", T("11-10 08:00"), T("11-10 08:10"))
    w.check_run(w.pay, c["head"], "build", None, T("11-10 08:00"), T("11-10 08:10"))
    return c["id"]



# --- rules a mutation spot-check found no case holding --------------------------------------


@case("CC8.1-05", "fail", "failed: test cancelled")
def checks_cancelled(w, n):  # only success, neutral and skipped are green
    c = w.good_pr(n, checks=False)
    w.check_run(w.pay, c["head"], "build", "success", T("11-10 08:00"), T("11-10 08:10"))
    w.check_run(w.pay, c["head"], "test", "cancelled", T("11-10 08:00"), T("11-10 08:10"))
    return c["id"]


@case("CC8.1-05", "fail", "no check run or commit status")
def checks_none_web(w, n):  # WEB lists no required_checks: with nothing on the head there is nothing
    # green, and "every check present" being vacuously green does not pass
    return w.good_pr(n, repo=w.web, ticket=f"WEB-{n}", checks=False)["id"]


@case("CC8.1-05", "fail", "required check(s) never ran before the merge: security-scan (required from app "
                          "github-actions (id 15368, branch protection))")
def pinned_name_not_listed_and_never_ran_web(w, n):  # WEB lists no required_checks; branch protection
    # requires security-scan from an app: it is judged although it never ran (a pinned name is required)
    c = w.good_pr(n, repo=w.web, ticket=f"WEB-{n}", checks=False)
    w.check_run(w.web, c["head"], "lint", "success", T("11-10 08:00"), T("11-10 08:01"))
    classic_pin(w, w.web, "security-scan", 15368)
    return c["id"]

world, test_case, test_every_reachable_status_is_covered = case.tests(
    reachable(("CC8.1-05",), ("pass", "fail")))
