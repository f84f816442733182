"""Readers of publish/results.py that the Compliance page added: dates, as-of time, latest run, and
changes as the run of a date evaluated them."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from ccwatch.publish import results
from ccwatch.warehouse import schema
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
    empty = schema.connect(":memory:")
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
