"""Table-driven tests of CC8.1-01 (linked ticket) and CC8.1-02 (ticket fields): one world, one case
per PR.

Each case builds one change (a compliant ``good_pr`` with one clause broken) and states the
expected status of one control, plus a fragment its detail must contain
(``tests.helpers.controls_world.Cases``).
"""

from __future__ import annotations

from tests.helpers.controls_world import Cases, reachable

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


world, test_case, test_every_reachable_status_is_covered = case.tests(
    reachable(("CC8.1-01", "CC8.1-02"), ("pass", "fail")))
