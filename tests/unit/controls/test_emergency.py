"""Table-driven tests of CC8.1-09 (emergency changes): one world, one case per PR.

Each case builds one change (a compliant ``good_pr`` with one clause broken) and states the
expected status of one control, plus a fragment its detail must contain
(``tests.helpers.controls_world.Cases``).
"""

from __future__ import annotations

from dataclasses import replace

from ccwatch.settings import JiraFields

from tests.helpers.controls_world import Cases, T, World, emergency, make_settings, reachable

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


# --- (r2) the post-mortem and the category as of the as-of time; unknown approvers ------------


@case("CC8.1-09", "fail", "no post-mortem by 2026-11-17T12:05Z")
def emergency_postmortem_written_after_as_of(w, n):  # not yet written at the as-of time
    c = emergency(w, n, pm_at=None, ticket_kw={"postmortem": "root cause: config"})
    w.field_change(c["key"], "Post-Mortem", "carol@acme.example", T("11-26 09:00"), "root cause: config")
    return c["id"]


@case("CC8.1-09", "pass", "post-mortem written at 2026-10-01T09:00Z")
def emergency_postmortem_set_at_creation(w, n):  # non-blank without a changelog item: set at creation
    return emergency(w, n, pm_at=None, ticket_kw={"postmortem": "root cause: config"})["id"]


@case("CC8.1-09", "fail", "post-mortem written at 2026-11-20T09:00Z, after the deadline 2026-11-17T12:05Z")
def emergency_postmortem_renamed_field(w, n):  # the item names the field's old name; its id matches
    w.jira_fields()
    c = emergency(w, n, pm_at=None, ticket_kw={"postmortem": "root cause"})
    w.field_change(c["key"], "Postmortem notes", "carol@acme.example", T("11-20 09:00"), "root cause",
                   field_id="customfield_10013")
    return c["id"]


@case("CC8.1-09", "pass", "post-mortem written at 2026-11-12T09:00Z")
def emergency_postmortem_cleared_after_the_window(w, n):  # written in time; a later edit does not undo it
    c = emergency(w, n)
    w.field_change(c["key"], "Post-Mortem", "carol@acme.example", T("11-20 09:00"), None,
                   from_string="root cause: config")
    return c["id"]


@case("CC8.1-09", "not_applicable", "normal change, not an emergency")
def emergency_label_added_after_as_of(w, n):  # the ticket was not an emergency at the as-of time
    c = w.good_pr(n, ticket_kw={"labels": ["emergency"]})
    w.field_change(c["key"], "labels", "carol@acme.example", T("11-26 09:00"), "emergency", from_string="")
    return c["id"]


@case("CC8.1-09", "not_applicable", "normal change, not an emergency")
def emergency_issue_type_changed_after_as_of(w, n):
    c = w.good_pr(n, ticket_kw={"issue_type": "Emergency Change"})
    w.field_change(c["key"], "issuetype", "carol@acme.example", T("11-26 09:00"), "Emergency Change",
                   from_string="Story")
    return c["id"]


@case("CC8.1-09", "pass", "emergency (ticket label emergency/hotfix)")
def emergency_label_removed_after_as_of(w, n):  # still an emergency at the as-of time
    c = w.good_pr(n, approve=False, ticket_kw={"labels": ["hotfix"]})
    w.transition(c["key"], "cto@acme.example", T("11-11 09:00"), "Approved", "indeterminate")
    w.field_change(c["key"], "Post-Mortem", "carol@acme.example", T("11-12 09:00"), "root cause: config")
    w.field_change(c["key"], "labels", "carol@acme.example", T("11-26 09:00"), "hotfix",
                   from_string="emergency hotfix")
    return c["id"]


@case("CC8.1-09", "fail", "no approval by an emergency approver by 2026-11-13T10:00Z")
def emergency_approved_by_unknown_jira_user(w, n):  # a deleted or anonymous Jira user is in no list
    c = emergency(w, n, approve_at=None)
    w.transition(c["key"], None, T("11-11 09:00"), "Approved", "indeterminate")
    return c["id"]


# --- rules a mutation spot-check found no case holding --------------------------------------


@case("CC8.1-09", "pending", "awaiting emergency approval until")
def emergency_approval_after_as_of_not_counted(w, n):  # the CTO's move after the as-of time has not
    # happened yet: the retro window is still open, so the row is pending, not pass
    c = emergency(w, n, day=23, approve_at=None, pm_at="11-24 09:00", done=False)
    w.transition(c["key"], "cto@acme.example", T("11-25 09:00"), "Approved", "indeterminate")
    return c["id"]


@case("CC8.1-09", "fail", "no approval by an emergency approver by 2026-11-23T10:00Z")
def emergency_late_approval_while_postmortem_open(w, n):  # a closed window that failed is not hidden
    # by the other window still being open
    return emergency(w, n, day=20, approve_at=None, pm_at=None, done=False)["id"]


@case("CC8.1-09", "fail", "without a linked Jira ticket: no retro approval or post-mortem possible")
def emergency_without_ticket(w, n):  # an emergency (PR label) with no linked ticket: nothing can be
    # approved or documented, so it fails rather than waits while the windows are open
    return emergency(w, n, day=23, approve_at=None, pm_at=None, done=False, title="hotfix, no key")["id"]


@case("CC8.1-09", "fail", "no post-mortem by 2026-11-17T12:05Z")
def emergency_postmortem_cleared_inside_the_window(w, n):  # written, then cleared before the window
    # ended: there is no post-mortem at the end of the window
    c = emergency(w, n)
    w.field_change(c["key"], "Post-Mortem", "carol@acme.example", T("11-14 09:00"), None,
                   from_string="root cause: config")
    return c["id"]


def test_server_item_without_field_id_matches_a_field_configured_by_id():
    """Fields configured by id; a Server/Data Center changelog item names the field only: matched by
    name through Jira's field list (GET /rest/api/2/field)."""
    w = World()
    w.jira_fields()
    c = emergency(w, 1, pm_at=None, ticket_kw={"postmortem": "root cause"})
    w.field_change(c["key"], "Post-Mortem", "jdoe", T("11-20 09:00"), "root cause", field_id=None)
    s = make_settings()
    s = replace(s, jira=replace(s.jira, fields=JiraFields("customfield_10010", "customfield_10011",
                                                          "customfield_10012", "customfield_10013")))
    w.run(s)
    status, detail = w.results()[(c["id"], "CC8.1-09")]
    assert (status, detail.endswith("post-mortem written at 2026-11-20T09:00Z, after the deadline 2026-11-17T12:05Z")
            ) == ("fail", True), detail


def test_without_a_field_list_items_match_the_configured_name_or_id():
    """A warehouse with no field list (none fetched yet): an item matches when its field name or id
    is the configured reference itself."""
    w = World()
    a = emergency(w, 1, pm_at=None, ticket_kw={"postmortem": "root cause"})
    w.field_change(a["key"], "post-mortem", "jdoe", T("11-20 09:00"), "root cause", field_id=None)
    w.run()
    assert w.results()[(a["id"], "CC8.1-09")][0] == "fail"


world, test_case, test_every_reachable_status_is_covered = case.tests(
    reachable(("CC8.1-09",), ("pass", "fail", "pending", "not_applicable")))
