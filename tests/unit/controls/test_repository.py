"""Table-driven tests of the repository controls CC8.1-11 (branch protection) and CC8.1-12 (environments).

Each case is its own configured repository; ``branch_rules`` rows follow the schema's rulesets
vocabulary (classic protection normalised to the same rule types, plus ``enforce_admins``).
"""

from __future__ import annotations

import pytest
from ccwatch.settings import RepoConfig

from tests.helpers.controls_world import World, make_settings

PR_RULE = {"required_approving_review_count": 1, "dismiss_stale_reviews_on_push": True}


def rulesets(w, repo, bypass=0, enforcement="active", pr=PR_RULE, skip=()):
    for rt in ("non_fast_forward", "deletion", "required_status_checks"):
        if rt not in skip:
            w.rule(repo, "ruleset", rt, ruleset_id=7, enforcement=enforcement, bypass=bypass)
    if "pull_request" not in skip:
        w.rule(repo, "ruleset", "pull_request", ruleset_id=7, enforcement=enforcement, bypass=bypass, parameters=pr)


def classic(w, repo, admins=True):
    for rt in ("non_fast_forward", "deletion", "required_status_checks"):
        w.rule(repo, "classic", rt)
    w.rule(repo, "classic", "pull_request", parameters={"required_approving_review_count": 1,
                                                        "dismiss_stale_reviews": True})
    if admins:
        w.rule(repo, "classic", "enforce_admins", parameters={"enabled": True})


CASES = [
    # (case, control, status, detail fragment, builder(w, repo))
    ("rulesets_full", "CC8.1-11", "pass", "all protection settings in force",
     lambda w, r: (rulesets(w, r), w.rule(r, "classic", "not_protected", detail="Branch not protected"))),
    ("classic_full", "CC8.1-11", "pass", "all protection settings in force", lambda w, r: classic(w, r)),
    ("classic_no_enforce_admins", "CC8.1-11", "fail", "missing: applies to administrators",
     lambda w, r: classic(w, r, admins=False)),
    ("ruleset_bypass_actors", "CC8.1-11", "fail", "applies to administrators (bypassable: requires pull request",
     lambda w, r: rulesets(w, r, bypass=2)),
    ("ruleset_bypass_unknown", "CC8.1-11", "fail", "unknown (unreadable) bypass actors",
     lambda w, r: rulesets(w, r, bypass=None)),
    # (r2) an absent bypass list is unknown, and the detail says so rather than "bypassable"
    ("ruleset_bypass_unknown_says_why", "CC8.1-11", "fail",
     "applies to administrators (cannot be verified: bypass list unknown for ruleset 7: GitHub returns "
     "bypass_actors only to a token with write access to the ruleset)",
     lambda w, r: rulesets(w, r, bypass=None)),
    ("ruleset_evaluate_ignored", "CC8.1-11", "fail", "missing: requires a pull request",
     lambda w, r: rulesets(w, r, enforcement="evaluate")),
    ("ruleset_disabled_ignored", "CC8.1-11", "fail", "forbids deletion",
     lambda w, r: rulesets(w, r, enforcement="disabled")),
    ("no_stale_dismissal", "CC8.1-11", "fail", "missing: dismisses stale approvals on push",
     lambda w, r: rulesets(w, r, pr={"required_approving_review_count": 1, "dismiss_stale_reviews_on_push": False})),
    ("zero_approvals", "CC8.1-11", "fail", "missing: requires at least one approving review",
     lambda w, r: rulesets(w, r, pr={"required_approving_review_count": 0, "dismiss_stale_reviews_on_push": True})),
    ("force_push_allowed", "CC8.1-11", "fail", "missing: forbids force pushes",
     lambda w, r: rulesets(w, r, skip=("non_fast_forward",))),
    ("unreadable_classic_only", "CC8.1-11", "fail", "could not verify that it requires a pull request",
     lambda w, r: w.rule(r, "classic", "unreadable", detail="HTTP 403: Resource not accessible by integration")),
    ("unreadable_classic_rulesets_enough", "CC8.1-11", "pass", "all protection settings",
     lambda w, r: (rulesets(w, r), w.rule(r, "classic", "unreadable", detail="HTTP 403"))),
    ("no_evidence", "CC8.1-11", "fail", "no branch protection evidence", lambda w, r: None),
    ("env_reviewers", "CC8.1-12", "pass", "production: 2 required reviewers",
     lambda w, r: w.environment(r, "production", reviewers=2)),
    ("env_protected_branches", "CC8.1-12", "pass", "protected branches only",
     lambda w, r: w.environment(r, "production", protected_branches=True)),
    ("env_missing", "CC8.1-12", "fail", "missing environment(s): production",
     lambda w, r: w.environment(r, "production", exists=False)),
    ("env_not_fetched", "CC8.1-12", "fail", "production: not fetched", lambda w, r: None),
    ("env_any_branch", "CC8.1-12", "fail", "no required reviewers nor protected-branches policy: production",
     lambda w, r: w.environment(r, "production", custom=True)),
    # rules a mutation spot-check found no case holding:
    # an environment with no protection rules and deployment_branch_policy null (any branch may deploy),
    # as the normaliser stores it: every policy column NULL, which must not read as restricted
    ("env_no_policy_null_columns", "CC8.1-12", "fail", "no required reviewers nor protected-branches policy: production",
     lambda w, r: w.environment(r, "production", reviewers=None, protected_branches=None, custom=None)),
    # a pull_request rule that does not say it dismisses stale approvals: not assumed
    ("stale_dismissal_not_stated", "CC8.1-11", "fail", "missing: dismisses stale approvals on push",
     lambda w, r: rulesets(w, r, pr={"required_approving_review_count": 1})),
]


@pytest.fixture(scope="module")
def world():
    w = World()
    repos = []
    for i, (_name, _c, _s, _f, build) in enumerate(CASES):
        repo = f"acme/repo-{i}"
        repos.append(RepoConfig(repo, "main", ("production",)))
        build(w, repo)
    w.run(make_settings(extra_repos=repos))
    return w.results()


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c[0] for c in CASES])
def test_case(world, i):
    _name, control, status, fragment, _ = CASES[i]
    got, detail = world[(f"acme/repo-{i}", control)]
    assert (got, fragment in detail) == (status, True), detail


def test_one_row_per_repo_and_repo_control():
    w = World()
    w.run()
    rows = w.con.execute("SELECT change_id, repo, count(*) FROM control_results WHERE control_id IN "
                         "('CC8.1-11', 'CC8.1-12') GROUP BY ALL ORDER BY 1").fetchall()
    assert rows == [("acme/payments-api", "acme/payments-api", 2), ("acme/web-frontend", "acme/web-frontend", 2)]
