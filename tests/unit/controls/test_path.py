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
    # (r2) no activity log and no sighting: the committer date, and the detail says so
    assert rows.pop("CC8.1-10") == ("fail", f"commit {pushed[:7]} pushed to main by carol-dev at 2026-11-12T10:00Z "
                                            "(committer date: no activity log on the first run) "
                                            "without a pull request: 'hotfix'")
    assert sorted(rows) == ["CC8.1-0" + str(i) for i in range(1, 10)] + ["CC8.1-13"]
    for status, detail in rows.values():
        assert status == "not_applicable" and f"direct push {pushed[:7]} by carol-dev" in detail


def test_direct_push_detail_names_the_pusher_and_time_of_the_activity_log():
    """(r2) A commit dated before the window and pushed inside it: the log's time and actor."""
    w = World()
    base, pushed = sha("base"), sha("backdated")
    w.commit(w.pay, base, T("08-01 10:00"))
    w.commit(w.pay, pushed, T("03-01 10:00"), author="carol-dev", committer="carol-dev", message="sneak", parent=base)
    w.activity_read(w.pay)
    w.activity(w.pay, "push", T("08-01 10:00"), "alice-lead", None, base)
    w.activity(w.pay, "push", T("11-14 22:10"), "mallory", base, pushed)
    w.run()
    assert w.results()[(f"{PAY}@{pushed}", "CC8.1-10")] == (
        "fail", f"commit {pushed[:7]} pushed to main by mallory at 2026-11-14T22:10Z (activity log) without a pull "
                "request: 'sneak'")


world, test_case, test_every_reachable_status_is_covered = case.tests(
    reachable(("CC8.1-10",), ("pass",)))  # fail: direct pushes, test_direct_push_rows
