"""Readers of publish/results.py that the Compliance page added: dates, as-of time, latest run, and
changes as the run of a date evaluated them."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from ccwatch.publish import results
from ccwatch.warehouse import connection, schema
from ccwatch.warehouse.population import store_population

from tests.helpers import outputs_world as D


@pytest.fixture
def con():
    con = D.build()
    yield con
    con.close()


def test_evidence_dates_newest_first_and_their_as_of(con):
    assert results.evidence_dates(con) == [date(2026, 11, 25), date(2026, 11, 24)]
    assert results.date_as_of(con, date(2026, 11, 24)) == datetime(2026, 11, 24)
    assert results.date_as_of(con, date(2026, 11, 23)) is None
    empty = connection.connect(":memory:")
    try:
        assert results.evidence_dates(empty) == [] and results.latest_run(empty) is None
    finally:
        empty.close()


def test_latest_run_is_the_newest_row_of_runs(con):
    con.execute("INSERT INTO runs VALUES ('2026-11-24', 'archived', NULL, NULL, 'a'), "
                "('2026-11-26', 'failed', NULL, NULL, 'ingest_github: 401')")
    assert results.latest_run(con) == {"as_of": datetime(2026, 11, 26), "stage": "failed",
                                       "detail": "ingest_github: 401"}


def test_run_changes_come_from_the_dates_population_else_change_facts(con):
    store_population(con, D.AS_OF)
    con.execute("UPDATE population SET title = 'as evaluated' WHERE change_id = 'acme/payments-api#12'")
    ids = ["acme/payments-api#12", f"acme/web-frontend@{D.PUSH}", "acme/nope#1"]
    got = results.run_changes_by_id(con, D.AS_OF, ids)
    assert set(got) == set(ids[:2])
    assert got["acme/payments-api#12"]["title"] == "as evaluated"
    assert set(got["acme/payments-api#12"]) == set(results.CHANGE_COLUMNS)
    # 2026-11-24 has no stored population: today's change_facts stand in
    older = results.run_changes_by_id(con, D.PREV, ids)
    assert older["acme/payments-api#12"]["title"] == "FEAT: add login [PAY-7]"
    assert results.run_changes_by_id(con, D.AS_OF, []) == {}


# --- the exceptions register (r2) ----------------------------------------------------------------


def test_results_carry_the_exception_column(con):
    rows = results.results(con, D.AS_OF)
    assert set(rows[0]) == set(results.RESULT_COLUMNS) and results.RESULT_COLUMNS[-1] == "exception"
    assert {r["exception"] for r in rows} == {None}
    D.set_exceptions(con)
    marked = [(r["change_id"], r["control_id"], r["exception"]) for r in results.results(con, D.AS_OF)
              if r["exception"]]
    assert marked == [("acme/payments-api#12", "CC8.1-03", "EX-1")]
    top = results.top_results(con, D.AS_OF, "fail", 10, ("CC8.1-03",))
    assert [(r["change_id"], r["exception"]) for r in top] == [("acme/payments-api#12", "EX-1")]
    assert all(r["exception"] is None for r in results.results(con, D.PREV)), "another date is untouched"


def test_exception_readers(con):
    assert results.exception_entries(con, D.AS_OF) == [] and results.exception_register(con, D.AS_OF) is None
    reg = D.set_exceptions(con)
    entries = results.exception_entries(con, D.AS_OF)
    assert [(e["entry"], e["id"], e["status"], e["reason"], e["applied"]) for e in entries] == [
        (0, "EX-1", "valid", None, True), (1, "EX-2", "invalid", "expired", False),
        (2, "EX-3", "invalid", "unknown_approver", False)]
    assert set(entries[0]) == set(results.EXCEPTION_COLUMNS)
    stored = results.exception_register(con, D.AS_OF)
    assert (stored["path"], stored["sha256"], bytes(stored["content"]), stored["entries"]) == (
        reg.path, reg.sha256, reg.content, 3)
    assert results.exception_entries(con, D.PREV) == []


def test_results_of_a_warehouse_read_before_migration_9(tmp_path):
    """A read-only reader (the Compliance page, the CLI) of a warehouse no writer has migrated yet."""
    import duckdb

    path = tmp_path / "v4.duckdb"
    old = duckdb.connect(str(path))
    for v in (1, 2, 3, 4):
        old.execute(schema.MIGRATIONS[v])
    old.execute("INSERT INTO control_results VALUES ('2026-11-25', 'acme/api#1', 'acme/api', 'CC8.1-04', 'fail', 'x')")
    old.close()
    ro = duckdb.connect(str(path), read_only=True)
    try:
        assert results.results(ro, D.AS_OF)[0]["exception"] is None
        assert results.top_results(ro, D.AS_OF, "fail", 5)[0]["exception"] is None
        assert results.exception_entries(ro, D.AS_OF) == [] and results.exception_register(ro, D.AS_OF) is None
    finally:
        ro.close()
