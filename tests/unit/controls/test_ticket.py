"""Table-driven tests of CC8.1-01 (linked ticket) and CC8.1-02 (ticket fields): one world, one case
per PR.

Each case builds one change (a compliant ``good_pr`` with one clause broken) and states the
expected status of one control, plus a fragment its detail must contain
(``tests.helpers.controls_world.Cases``).
"""

from __future__ import annotations

from tests.helpers.controls_world import Cases, T, emergency, merged_undeployed, reachable

case = Cases()


@case("CC8.1-01", "pass", "title names PAY-1")
def ticket_ok(w, n):
    return w.good_pr(n)["id"]


@case("CC8.1-01", "fail", "no ticket key of PAY, WEB, OPS")
def ticket_no_key(w, n):
    return w.good_pr(n, title="fix the thing")["id"]


@case("CC8.1-01", "fail", "in the PR title '" + "z" * 199 + "…'")
def ticket_no_key_huge_title(w, n):  # a detail line quotes at most 200 characters of a title
    return w.good_pr(n, title="z" * 100_000)["id"]


@case("CC8.1-01", "fail", "FOO-9, outside the in-scope projects")
def ticket_other_project(w, n):
    return w.good_pr(n, title="fix [FOO-9]")["id"]


@case("CC8.1-01", "pass", "title names PAY-")
def ticket_sha256_title(w, n):  # 'SHA-256' is not an in-scope project: the PAY key links
    return w.good_pr(n, title=f"SHA-256 pinning [PAY-{n}]")["id"]


@case("CC8.1-01", "fail", "does not exist in Jira")
def ticket_missing_in_jira(w, n):
    return w.good_pr(n, ticket_kw=False)["id"]


@case("CC8.1-02", "pass", "documents Business Justification")
def fields_ok(w, n):
    return w.good_pr(n)["id"]


@case("CC8.1-02", "fail", "blank Risk Assessment")
def fields_blank_risk(w, n):
    return w.good_pr(n, ticket_kw={"fields": {"risk_assessment": "   "}})["id"]


@case("CC8.1-02", "fail", "blank Rollback Plan")
def fields_blank_required(w, n):
    return w.good_pr(n, ticket_kw={"rollback": None})["id"]


@case("CC8.1-02", "fail", "no linked Jira ticket")
def fields_no_ticket(w, n):
    return w.good_pr(n, title="no key")["id"]


# --- (r2) every ticket fact as of the as-of time; fields non-blank at the production deployment ----


@case("CC8.1-01", "pass", "found in Jira (status Approved)")
def ticket_status_as_of(w, n):  # moved to Done only after the as-of time: the detail says Approved
    c = w.good_pr(n, done=False)
    w.transition(c["key"], "carol@acme.example", T("11-26 09:00"), "Done", "done", frm="Approved")
    return c["id"]


@case("CC8.1-01", "fail", "does not exist in Jira")
def ticket_created_after_as_of(w, n):  # a ticket created after the as-of time does not exist yet
    return w.good_pr(n, ticket_kw={"created": T("11-25 00:01")})["id"]


@case("CC8.1-02", "fail", "has blank Risk Assessment at the production deployment at 2026-11-10T12:05Z; "
                          "filled in only later: Risk Assessment at 2026-11-11T09:00Z (documentation written "
                          "after the fact does not document the change)")
def fields_filled_after_deployment(w, n):
    c = w.good_pr(n)
    w.field_change(c["key"], "Risk Assessment", "carol@acme.example", T("11-11 09:00"), "Low")
    return c["id"]


@case("CC8.1-02", "fail", "has blank Testing Plan as of 2026-11-25T00:00Z (not deployed yet): fill them in the "
                          "ticket before the deployment")
def fields_filled_after_as_of(w, n):  # written after the as-of time: blank until then
    c = merged_undeployed(w, n, day=23)
    w.field_change(c["key"], "Testing Plan", "carol@acme.example", T("11-25 08:00"), "Unit tests")
    return c["id"]


@case("CC8.1-02", "pass", "documents Business Justification, Risk Assessment, Testing Plan, Rollback Plan at the "
                          "production deployment at 2026-11-10T12:05Z")
def fields_reworded_after_deployment(w, n):  # set at creation, edited later: it was there at the deployment
    c = w.good_pr(n)
    w.field_change(c["key"], "Risk Assessment", "carol@acme.example", T("11-12 09:00"), "Low",
                   from_string="Low: behind a flag")
    return c["id"]


@case("CC8.1-02", "fail", "has blank Business Justification, Risk Assessment, Testing Plan, Rollback Plan at the "
                          "production deployment at 2026-11-10T12:05Z; filled in only later: Business Justification "
                          "at 2026-11-10T13:00Z")
def fields_ticket_created_after_deployment(w, n):  # the ticket itself was written after the deployment
    return w.good_pr(n, ticket_kw={"created": T("11-10 13:00")})["id"]


@case("CC8.1-02", "fail", "blank Rollback Plan at the production deployment at 2026-11-10T12:05Z; filled in only "
                          "later: Rollback Plan at 2026-11-12T09:00Z")
def fields_required_field_filled_late(w, n):
    c = w.good_pr(n)
    w.field_change(c["key"], "Rollback Plan", "carol@acme.example", T("11-12 09:00"), "Revert the deploy")
    return c["id"]


@case("CC8.1-02", "fail", "filled in only later: Risk Assessment at 2026-11-11T09:00Z")
def fields_server_item_without_field_id(w, n):  # Server/Data Center: items carry the field's name only
    w.jira_fields()
    c = w.good_pr(n)
    w.field_change(c["key"], "Risk Assessment", "carol", T("11-11 09:00"), "Low", field_id=None)
    return c["id"]


@case("CC8.1-02", "fail", "filled in only later: Risk Assessment at 2026-11-11T09:00Z")
def fields_renamed_field(w, n):  # the item carries the field's old name; its id still matches
    w.jira_fields()
    c = w.good_pr(n)
    w.field_change(c["key"], "Risk", "carol@acme.example", T("11-11 09:00"), "Low", field_id="customfield_10011")
    return c["id"]


@case("CC8.1-02", "pass", "documents Business Justification")
def fields_same_name_other_field_id(w, n):  # a Cloud item of another field that has the same name
    w.jira_fields()
    c = w.good_pr(n)
    w.field_change(c["key"], "Risk Assessment", "carol@acme.example", T("11-11 09:00"), "x",
                   field_id="customfield_19999")
    return c["id"]


@case("CC8.1-02", "pass", "at the end of the 7-day emergency window at 2026-11-17T12:05Z")
def fields_emergency_completed_in_window(w, n):  # emergencies may document within postmortem_days
    c = emergency(w, n)
    w.field_change(c["key"], "Risk Assessment", "carol@acme.example", T("11-12 09:00"), "High")
    return c["id"]


@case("CC8.1-02", "fail", "has blank Risk Assessment at the end of the 7-day emergency window at "
                          "2026-11-17T12:05Z; filled in only later: Risk Assessment at 2026-11-18T09:00Z")
def fields_emergency_completed_late(w, n):
    c = emergency(w, n)
    w.field_change(c["key"], "Risk Assessment", "carol@acme.example", T("11-18 09:00"), "High")
    return c["id"]


@case("CC8.1-02", "pending", "has blank Risk Assessment as of 2026-11-25T00:00Z: an emergency change may complete "
                             "them until 2026-11-27T12:05Z")
def fields_emergency_window_open(w, n):
    return emergency(w, n, day=20, approve_at="11-20 11:00", pm_at=None, done=False,
                     ticket_kw={"fields": {"risk_assessment": None}})["id"]


@case("CC8.1-02", "fail", "has blank Risk Assessment at the end of the 7-day emergency window at "
                          "2026-11-24T12:05Z")
def fields_emergency_window_just_closed(w, n):  # deployed 11-17 12:05: the window closed 11-24 12:05,
    # before the as-of time (11-25 00:00), so the blank field fails rather than stays pending
    return emergency(w, n, day=17, approve_at="11-17 11:00", pm_at=None, done=False,
                     ticket_kw={"fields": {"risk_assessment": None}})["id"]


@case("CC8.1-02", "fail", "no linked Jira ticket")
def fields_emergency_without_ticket(w, n):  # the emergency window is open, but there is no ticket
    # whose fields could be completed in it: the missing ticket fails 02 (CONTROLS.md, CC8.1-04)
    return emergency(w, n, day=20, approve_at=None, pm_at=None, done=False, title="hotfix, no key")["id"]


@case("CC8.1-02", "pending", "an emergency change may complete them within 7 days of the deployment")
def fields_emergency_undeployed(w, n):
    return emergency(w, n, day=23, approve_at=None, pm_at=None, deploy=False, done=False,
                     ticket_kw={"fields": {"testing_plan": ""}})["id"]


world, test_case, test_every_reachable_status_is_covered = case.tests(
    reachable(("CC8.1-01", "CC8.1-02"), ("pass", "fail")) | {("CC8.1-02", "pending")})
