"""Table-driven tests of CC8.1-10 (change path: merged through a pull request): one world, one case
per PR.

Each case builds one change (a compliant ``good_pr`` with one clause broken) and states the
expected status of one control, plus a fragment its detail must contain
(``tests.helpers.controls_world.Cases``).
"""

from __future__ import annotations

from tests.helpers.controls_world import PAY, Cases, T, World, reachable, sha

case = Cases()


@case("CC8.1-10", "pass", "merged into main by bob-rev")
def path_pr(w, n):
    return w.good_pr(n)["id"]


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


world, test_case, test_every_reachable_status_is_covered = case.tests(
    reachable(("CC8.1-10",), ("pass",)))  # fail: direct pushes, test_direct_push_rows
