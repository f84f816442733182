"""Table-driven tests of CC8.1-09 (emergency changes): one world, one case per PR.

Each case builds one change (a compliant ``good_pr`` with one clause broken) and states the
expected status of one control, plus a fragment its detail must contain
(``tests.helpers.controls_world.Cases``).
"""

from __future__ import annotations

from tests.helpers.controls_world import Cases, emergency, reachable

case = Cases()


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


world, test_case, test_every_reachable_status_is_covered = case.tests(
    reachable(("CC8.1-09",), ("pass", "fail", "pending")))
