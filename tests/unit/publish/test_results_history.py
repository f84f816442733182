"""Readers of control_results across run dates (publish/results_history.py), on three consecutive
run dates (outputs_world.build_three) with a walk-back reference."""

from __future__ import annotations

from datetime import date

import pytest
from ccwatch.publish import results_history
from ccwatch.warehouse.population import store_population

from tests.helpers import outputs_world as D

D23, D24, D25 = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)
PUSH_ID = f"acme/web-frontend@{D.PUSH}"


@pytest.fixture
def three():
    con = D.build_three()
    yield con
    con.close()


def test_previous_date_skips_dates_without_a_run(three):
    assert results_history.previous_date(three, D.AS_OF) == D24
    assert results_history.previous_date(three, D.FIRST) is None
    three.execute("DELETE FROM control_results WHERE CAST(as_of AS DATE) = ?", [D24])  # 11-24: no run
    assert results_history.previous_date(three, D.AS_OF) == D23


def test_open_failures_start_at_the_current_streak_and_match_a_walk_back(three):
    rows = results_history.open_failures(three, D.AS_OF, 100)
    got = {(r["change_id"], r["control_id"]): (r["first_failed"], r["runs"]) for r in rows}
    assert got == D.streaks_by_walking(three, D25)
    assert got[(PUSH_ID, "CC8.1-10")] == (D23, 3)
    assert got[("acme/payments-api#12", "CC8.1-03")] == (D25, 1)  # failed 11-23, passed 11-24: a new streak
    assert got[("acme/payments-api#13", "CC8.1-01")] == (D25, 1)
    assert got[("acme/web-frontend", "CC8.1-12")] == (D24, 2)
    # on 11-24 the streaks end on 11-24
    prev = {(r["change_id"], r["control_id"]): r["first_failed"] for r in results_history.open_failures(three, D.PREV, 100)}
    assert prev[(D.LEFT, "CC8.1-02")] == D23 and prev[("acme/payments-api#12", "CC8.1-05")] == D24


def test_a_date_without_a_run_does_not_interrupt_a_streak_but_a_pass_does(three):
    three.execute("DELETE FROM control_results WHERE CAST(as_of AS DATE) = ?", [D24])
    got = {(r["change_id"], r["control_id"]): (r["first_failed"], r["runs"]) for r in results_history.open_failures(three, D.AS_OF, 100)}
    assert got[(PUSH_ID, "CC8.1-10")] == (D23, 2)  # 23 and 25 are consecutive run dates
    assert got[("acme/payments-api#12", "CC8.1-03")] == (D23, 2)  # the pass of 11-24 is gone with its run
    assert got == D.streaks_by_walking(three, D25)


def test_a_run_date_without_the_pair_ends_its_streak(three):
    three.execute("DELETE FROM control_results WHERE CAST(as_of AS DATE) = ? AND change_id = ?", [D24, PUSH_ID])
    got = {(r["change_id"], r["control_id"]): r["first_failed"] for r in results_history.open_failures(three, D.AS_OF, 100)}
    assert got[(PUSH_ID, "CC8.1-10")] == D25


def test_open_failures_are_cut_per_control_longest_open_first(three):
    three.execute("INSERT INTO control_results (as_of, change_id, repo, control_id, status, detail) SELECT as_of, 'acme/payments-api#99', repo, control_id, 'fail', 'x' "
                  "FROM control_results WHERE change_id = ? AND control_id = 'CC8.1-10' AND CAST(as_of AS DATE) = ?",
                  [PUSH_ID, D25])
    rows = results_history.open_failures(three, D.AS_OF, 1, ("CC8.1-10",))
    assert [(r["change_id"], r["first_failed"]) for r in rows] == [(PUSH_ID, D23)]  # open longer than #99


def test_day_over_day_newly_failing_resolved_and_left(three):
    dod = results_history.day_over_day(three, D.AS_OF, 100)
    assert dod["previous"] == D24
    rows = {k: [(r["change_id"], r["control_id"]) for r in v] for k, v in dod["rows"].items()}
    assert rows["newly_failing"] == [("acme/payments-api#13", "CC8.1-01"), ("acme/payments-api#12", "CC8.1-03")]
    assert rows["resolved"] == [("acme/payments-api#12", "CC8.1-05")]
    assert rows["left"] == [(D.LEFT, "CC8.1-02")]
    by_key = {(r["change_id"], r["control_id"]): r for v in dod["rows"].values() for r in v}
    assert by_key[("acme/payments-api#13", "CC8.1-01")]["previous_status"] is None
    assert by_key[("acme/payments-api#12", "CC8.1-03")]["previous_status"] == "pass"
    assert by_key[("acme/payments-api#12", "CC8.1-05")]["status"] == "pass"
    assert by_key[("acme/payments-api#12", "CC8.1-05")]["previous_detail"] == "head abc1234: test failure"
    assert dod["counts"] == {"CC8.1-01": {"newly_failing": 1}, "CC8.1-03": {"newly_failing": 1},
                             "CC8.1-05": {"resolved": 1}, "CC8.1-02": {"left": 1}}
    # newly failing today <=> the current streak starts today
    starts = {k for k, (first, _n) in D.streaks_by_walking(three, D25).items() if first == D25}
    assert set(rows["newly_failing"]) == starts


def test_day_over_day_on_the_first_run_date_and_limits(three):
    assert results_history.day_over_day(three, D.FIRST, 100) == {"previous": None, "counts": {},
                                                         "rows": {"newly_failing": [], "resolved": [], "left": []}}
    cut = results_history.day_over_day(three, D.AS_OF, 1, ("CC8.1-01",))
    assert cut["counts"] == {"CC8.1-01": {"newly_failing": 1}}
    assert [r["change_id"] for r in cut["rows"]["newly_failing"]] == ["acme/payments-api#13"]


def test_counts_by_repository_and_author(three):
    repos = results_history.counts_by(three, D.AS_OF, "repo")
    assert set(repos) == {"acme/payments-api", "acme/web-frontend"}
    assert repos["acme/payments-api"]["changes"] == 2 and repos["acme/web-frontend"]["changes"] == 1
    assert repos["acme/payments-api"]["counts"]["CC8.1-03"] == {"fail": 1, "pass": 1}
    assert repos["acme/payments-api"]["counts"]["CC8.1-11"] == {"fail": 1}
    authors = results_history.counts_by(three, D.AS_OF, "author", ("CC8.1-01", "CC8.1-10"))
    assert authors["mallory<b>"]["counts"] == {"CC8.1-01": {"fail": 1}, "CC8.1-10": {"pass": 1}}
    assert authors["ops-dave"]["counts"]["CC8.1-10"] == {"fail": 1}
    assert set(authors) == {"carol-dev", "mallory<b>", "ops-dave"}
    with pytest.raises(ValueError, match="unknown view key"):
        results_history.counts_by(three, D.AS_OF, "title")


def test_counts_by_author_uses_the_runs_population(three):
    store_population(three, D.AS_OF)
    three.execute("UPDATE population SET author = 'carol-renamed' WHERE change_id = 'acme/payments-api#12'")
    authors = results_history.counts_by(three, D.AS_OF, "author")
    assert "carol-renamed" in authors and "carol-dev" not in authors


def test_exception_column_hook(three):
    """Readers also open warehouses no writer has migrated to 9 yet (read-only: the page, the CLI)."""
    three.execute(f"ALTER TABLE control_results DROP COLUMN {results_history.EXCEPTION_COLUMN}")
    assert not results_history.exceptions_recorded(three)
    assert results_history.excepted_counts(three, D.AS_OF) == {}
    assert results_history.open_failures(three, D.AS_OF, 100, excepted=True) == []
    three.execute(f"ALTER TABLE control_results ADD COLUMN {results_history.EXCEPTION_COLUMN} VARCHAR")
    three.execute("UPDATE control_results SET exception = 'EX-7' WHERE change_id = ? AND control_id = 'CC8.1-10' "
                  "AND CAST(as_of AS DATE) = ?", [PUSH_ID, D25])
    assert results_history.exceptions_recorded(three)
    assert results_history.excepted_counts(three, D.AS_OF) == {"CC8.1-10": 1}
    exc = results_history.open_failures(three, D.AS_OF, 100, excepted=True)
    assert [(r["change_id"], r["exception"], r["first_failed"]) for r in exc] == [(PUSH_ID, "EX-7", D23)]
    rest = {(r["change_id"], r["control_id"]) for r in results_history.open_failures(three, D.AS_OF, 100)}
    assert (PUSH_ID, "CC8.1-10") not in rest and ("acme/payments-api#12", "CC8.1-03") in rest
    both = results_history.open_failures(three, D.AS_OF, 100, excepted=None)
    assert len(both) == len(rest) + 1


def test_evidence_unit_ids_are_changes_and_repositories(three):
    assert results_history.evidence_unit_ids(three) == sorted(
        [c["change_id"] for c in D.change_rows()] + ["acme/payments-api", "acme/web-frontend"])
