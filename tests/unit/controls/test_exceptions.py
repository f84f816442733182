"""Which register entries apply on a run date, and what applying one does to control_results
(CONTROLS.md "Exceptions (r2)", docs/EXCEPTIONS.md).  Every reason word has a case; validity is a
function of the warehouse and the as-of time only."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from ccwatch.controls.exceptions import REASONS, apply_exceptions, judge, person_key, person_keys
from ccwatch.controls.register import Entry, Register

from tests.helpers.controls_world import AS_OF, PAY, WEB, World, make_settings

NOW = AS_OF.replace(tzinfo=None)
DAY = timedelta(days=1)


def E(id_, target, control="CC8.1-05", by="erin@acme.example", at=NOW - 5 * DAY, expires=NOW + 60 * DAY,
      index=0, why="accepted") -> Entry:
    repo = "#" not in target and "@" not in target
    return Entry(index=index, id=id_, control_id=control, justification=why, approved_by=by, approved_at=at,
                 expires=expires, change_id=None if repo else target, repo=target if repo else None)


def register(*entries: Entry) -> Register:
    entries = tuple(replace(e, index=i) for i, e in enumerate(entries))
    content = "\n".join(e.id for e in entries).encode()
    return Register(path="/reg/exceptions.yaml", sha256=hashlib.sha256(content).hexdigest(), content=content,
                    entries=entries)


@pytest.fixture(scope="module")
def world():
    """PAY#1 fails CC8.1-05 (no checks), PAY#2 passes everything, PAY#3 fails CC8.1-05 and is
    authored by alice-lead (Alice Approver, a change approver), PAY#4 is merged and undeployed
    (CC8.1-07 pending); WEB is unprotected (CC8.1-11 and -12 fail)."""
    w = World()
    w.protected_repo(PAY)
    w.good_pr(1, checks=False)
    w.good_pr(2)
    w.good_pr(3, checks=False)
    w.con.execute("UPDATE pull_requests SET author_login = 'alice-lead' WHERE repo = ? AND number = 3", [PAY])
    w.good_pr(4, day=23, deploy=False, done=False)
    w.run()
    assert w.status(f"{PAY}#1", "CC8.1-05") == "fail" and w.status(f"{PAY}#2", "CC8.1-05") == "pass"
    assert w.status(f"{PAY}#3", "CC8.1-05") == "fail" and w.status(f"{PAY}#4", "CC8.1-07") == "pending"
    assert w.status(WEB, "CC8.1-11") == "fail"
    return w


def one(world, entry: Entry, as_of=AS_OF):
    (v,) = judge(world.con, make_settings(), as_of, [entry])
    return v


def test_reason_words_are_a_fixed_ordered_set():
    assert REASONS == ("no_such_change", "no_such_repo", "unknown_approver", "self_approved", "too_long",
                       "not_yet_approved", "expired")


def test_valid_entry_on_a_failing_row_applies(world):
    v = one(world, E("EX-1", f"{PAY}#1"))
    assert (v.status, v.reason, v.result_status, v.applied) == ("valid", None, "fail", True)
    assert v.detail.startswith(f"applies: CC8.1-05 of {PAY}#1 fails; the row carries EX-1 until ")


def test_approver_is_compared_through_identities(world):
    v = one(world, E("EX-1", f"{PAY}#1", by="  Erin-MGR "))  # Erin Manager's GitHub login
    assert (v.status, v.applied) == ("valid", True)


def test_change_id_is_matched_ignoring_case(world):
    assert one(world, E("EX-1", f"{PAY.upper()}#1")).applied


def test_valid_entry_on_a_passing_row_does_nothing(world):
    v = one(world, E("EX-1", f"{PAY}#2"))
    assert (v.status, v.reason, v.result_status, v.applied) == ("valid", None, "pass", False)
    assert v.detail == f"valid, nothing to except: CC8.1-05 of {PAY}#2 is pass on this date"


def test_valid_entry_on_a_pending_row_does_nothing(world):
    v = one(world, E("EX-1", f"{PAY}#4", control="CC8.1-07"))
    assert (v.status, v.result_status, v.applied) == ("valid", "pending", False)


def test_repository_entry_applies_to_the_repository_row(world):
    v = one(world, E("EX-R", WEB, control="CC8.1-11"))
    assert (v.status, v.result_status, v.applied) == ("valid", "fail", True)


def test_no_such_change(world):
    v = one(world, E("EX-1", f"{PAY}#999"))
    assert (v.status, v.reason, v.applied, v.result_status) == ("invalid", "no_such_change", False, None)
    assert f"{PAY}#999 is not in this run's population" in v.detail


def test_no_such_repo(world):
    v = one(world, E("EX-1", "acme/unknown", control="CC8.1-11"))
    assert (v.status, v.reason) == ("invalid", "no_such_repo")
    assert "acme/unknown is not a configured repository" in v.detail


def test_unknown_approver(world):
    v = one(world, E("EX-1", f"{PAY}#1", by="bob@acme.example"))
    assert (v.status, v.reason, v.applied) == ("invalid", "unknown_approver", False)
    assert "approved_by bob@acme.example is not a change approver" in v.detail


def test_an_emergency_approver_is_not_a_change_approver(world):
    assert one(world, E("EX-1", f"{PAY}#1", by="cto@acme.example")).reason == "unknown_approver"


def test_self_approved_through_identities(world):
    v = one(world, E("EX-1", f"{PAY}#3", by="ALICE@acme.example"))  # PAY#3's author is alice-lead
    assert (v.status, v.reason, v.applied, v.result_status) == ("invalid", "self_approved", False, "fail")
    assert "is the change's author alice-lead (Alice Approver)" in v.detail


def test_another_approver_may_accept_that_change(world):
    assert one(world, E("EX-1", f"{PAY}#3", by="erin@acme.example")).applied


def test_too_long(world):
    at = datetime(2026, 11, 1)
    v = one(world, E("EX-1", f"{PAY}#1", at=at, expires=datetime(2027, 11, 1, 0, 1)))
    assert (v.status, v.reason) == ("invalid", "too_long")
    assert "more than one year after approved_at 2026-11-01T00:00Z (latest allowed 2027-11-01T00:00Z)" in v.detail
    assert one(world, E("EX-1", f"{PAY}#1", at=at, expires=datetime(2027, 11, 1))).status == "valid"


def test_one_year_from_february_29th_ends_on_february_28th(world):
    v = one(world, E("EX-1", f"{PAY}#1", at=datetime(2024, 2, 29), expires=datetime(2025, 3, 1)))
    assert "latest allowed 2025-02-28T00:00Z" in v.detail


def test_not_yet_approved(world):
    v = one(world, E("EX-1", f"{PAY}#1", at=NOW + timedelta(seconds=1)))
    assert (v.status, v.reason) == ("invalid", "not_yet_approved")
    assert one(world, E("EX-1", f"{PAY}#1", at=NOW)).status == "valid", "approved_at <= as_of"


def test_expired(world):
    v = one(world, E("EX-1", f"{PAY}#1", expires=NOW))
    assert (v.status, v.reason) == ("invalid", "expired"), "as_of < expires: expiring at the as-of time is expired"
    assert "expired at 2026-11-25T00:00Z, at or before the as-of time 2026-11-25T00:00Z" in v.detail
    assert one(world, E("EX-1", f"{PAY}#1", expires=NOW + timedelta(seconds=1))).status == "valid"


def test_validity_follows_the_as_of_time_not_the_wall_clock(world):
    entry = E("EX-1", f"{PAY}#1", at=datetime(2026, 11, 20), expires=datetime(2026, 11, 24))
    assert one(world, entry).reason == "expired"
    assert one(world, entry, as_of=AS_OF - 2 * DAY).status == "valid"
    assert one(world, entry, as_of=AS_OF - 10 * DAY).reason == "not_yet_approved"


def test_the_first_reason_is_the_word_and_the_detail_names_every_rule_broken(world):
    v = one(world, E("EX-1", f"{PAY}#3", by="alice-lead", at=datetime(2025, 1, 1), expires=datetime(2026, 6, 1)))
    assert v.reason == "self_approved"
    assert "author" in v.detail and "more than one year" in v.detail and "expired at" in v.detail


def test_a_later_approval_of_the_same_row_wins(world):
    old = E("EX-OLD", f"{PAY}#1", at=NOW - 30 * DAY)
    new = E("EX-NEW", f"{PAY}#1", at=NOW - 2 * DAY)
    a, b = judge(world.con, make_settings(), AS_OF, [old, new])
    assert (a.status, a.applied, b.status, b.applied) == ("valid", False, "valid", True)
    assert a.detail == "valid, but EX-NEW (approved later) covers the same row"


def test_an_expired_entry_does_not_hide_its_renewal(world):
    expired = E("EX-OLD", f"{PAY}#1", at=NOW - 400 * DAY, expires=NOW - 40 * DAY)
    renewal = E("EX-NEW", f"{PAY}#1", at=NOW - 41 * DAY)
    a, b = judge(world.con, make_settings(), AS_OF, [expired, renewal])
    assert (a.reason, b.applied) == ("expired", True)


def test_person_key_matches_the_sql_pkey_of_the_facts(world):
    """The Python reading of people.identities is the facts' ``pkey`` macro (warehouse/facts.py)."""
    keys = person_keys(world.con, make_settings())
    for x in ["alice-lead", "ALICE@acme.example", " carol-dev ", "carol@acme.example", "stranger", "Bob-Rev",
              "erin-mgr"]:
        assert person_key(x, keys) == world.con.execute("SELECT pkey(?)", [x]).fetchone()[0], x


# --- applying: control_results.exception and the per-run tables --------------------------------


def _rows(w):
    return {(c, k): (s, x) for c, k, s, x in w.con.execute(
        "SELECT change_id, control_id, status, exception FROM control_results").fetchall()}


def test_apply_marks_only_the_failing_rows_of_valid_entries_and_stores_every_entry():
    w = World()
    w.protected_repo(PAY)
    w.good_pr(1, checks=False)
    w.good_pr(2)
    w.run()
    reg = register(E("EX-1", f"{PAY}#1"), E("EX-2", f"{PAY}#2"), E("EX-3", f"{PAY}#1", control="CC8.1-03"),
                   E("EX-4", WEB, control="CC8.1-12", by="bob@acme.example"))
    summary = apply_exceptions(w.con, make_settings(), AS_OF, reg)
    assert summary == {"entries": 4, "valid": 3, "invalid": 1, "applied": 1}
    rows = _rows(w)
    assert rows[(f"{PAY}#1", "CC8.1-05")] == ("fail", "EX-1"), "a matching fail row stays fail and carries the id"
    assert {k: v for k, v in rows.items() if v[1] is not None} == {(f"{PAY}#1", "CC8.1-05"): ("fail", "EX-1")}
    assert rows[(WEB, "CC8.1-12")] == ("fail", None), "an invalid entry does not apply"
    stored = w.con.execute("SELECT entry, id, change_id, repo, control_id, approved_by, status, reason, "
                           "result_status, applied FROM exceptions ORDER BY entry").fetchall()
    assert stored == [
        (0, "EX-1", f"{PAY}#1", None, "CC8.1-05", "erin@acme.example", "valid", None, "fail", True),
        (1, "EX-2", f"{PAY}#2", None, "CC8.1-05", "erin@acme.example", "valid", None, "pass", False),
        (2, "EX-3", f"{PAY}#1", None, "CC8.1-03", "erin@acme.example", "valid", None, "pass", False),
        (3, "EX-4", None, WEB, "CC8.1-12", "bob@acme.example", "invalid", "unknown_approver", "fail", False),
    ]
    assert w.con.execute("SELECT path, sha256, content, entries FROM exception_registers").fetchall() == [
        (reg.path, reg.sha256, reg.content, 4)]


def test_rerun_of_a_date_replaces_and_a_later_date_keeps_its_own():
    w = World()
    w.good_pr(1, checks=False)
    w.run()
    s = make_settings()
    apply_exceptions(w.con, s, AS_OF, register(E("EX-1", f"{PAY}#1")))
    w.run(as_of=AS_OF + timedelta(hours=3))  # the same date, evaluated again: the rows are new
    assert _rows(w)[(f"{PAY}#1", "CC8.1-05")] == ("fail", None)
    apply_exceptions(w.con, s, AS_OF + timedelta(hours=3), register(E("EX-1", f"{PAY}#1"), E("EX-2", f"{PAY}#1")))
    assert w.con.execute("SELECT count(*), count(DISTINCT as_of) FROM exceptions").fetchone() == (2, 1)
    assert w.con.execute("SELECT count(*) FROM exception_registers").fetchone()[0] == 1
    assert _rows(w)[(f"{PAY}#1", "CC8.1-05")] == ("fail", "EX-2")
    # a rerun without a register keeps no trace of the earlier register for that date
    apply_exceptions(w.con, s, AS_OF + timedelta(hours=3), None)
    assert w.con.execute("SELECT count(*) FROM exceptions").fetchone()[0] == 0
    assert w.con.execute("SELECT count(*) FROM exception_registers").fetchone()[0] == 0
    assert _rows(w)[(f"{PAY}#1", "CC8.1-05")] == ("fail", None)


def test_an_empty_register_is_recorded_as_evaluated():
    w = World()
    w.good_pr(1, checks=False)
    w.run()
    assert apply_exceptions(w.con, make_settings(), AS_OF, register()) == {"entries": 0, "valid": 0, "invalid": 0,
                                                                           "applied": 0}
    assert w.con.execute("SELECT entries FROM exception_registers").fetchall() == [(0,)]
