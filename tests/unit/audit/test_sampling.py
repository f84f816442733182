"""The auditor sample: population of a period, latest results, reproducible draw, errors,
and the stored population (migration 3, written with control_results)."""

from __future__ import annotations

import hashlib
import random
from datetime import date, datetime, timedelta

import duckdb
import pytest
from ccwatch.audit.sampling import SamplingError, draw_sample, load_period
from ccwatch.warehouse import connection, schema
from ccwatch.warehouse.population import store_population

from tests.helpers import sampling_world as sd


@pytest.fixture
def con():
    c = sd.synthetic()
    yield c
    c.close()


def ids(sample):
    return [c["change_id"] for c in sample.changes]


def test_same_seed_same_sample_different_seed_different_sample(con):
    a = draw_sample(con, "2026-10-01", "2026-10-31", 10, 7)
    b = draw_sample(con, "2026-10-01", "2026-10-31", 10, 7)
    c = draw_sample(con, "2026-10-01", "2026-10-31", 10, 8)
    assert ids(a) == ids(b) and len(ids(a)) == 10 == len(set(ids(a)))
    assert ids(a) != ids(c)
    assert a.describe() == b.describe() and a.describe()["seed"] == 7
    # the documented method, recomputed with the standard library only
    population = sorted(ch["change_id"] for ch in a.period.changes)
    assert ids(a) == random.Random(7).sample(population, 10)


def test_period_boundaries_are_inclusive_whole_utc_days(con):
    period = load_period(con, "2026-10-01", "2026-10-31")
    got = {c["change_id"] for c in period.changes}
    assert {"acme/api#901", "acme/api#902"} <= got  # 10-01 00:00:00 and 10-31 23:59:59
    assert not {"acme/api#900", "acme/api#903"} & got  # 09-30 23:59:59 and 11-01 00:00:00
    merged = [c["merged_at"] for c in period.changes]
    assert min(merged) >= datetime(2026, 10, 1) and max(merged) < datetime(2026, 11, 1)
    assert len(got) == 31 + 2  # one a day at noon, plus the two edges inside
    one_day = load_period(con, "2026-10-31", "2026-10-31")
    assert {c["change_id"] for c in one_day.changes} == {"acme/api#130", "acme/api#902"}


def test_each_change_gets_its_latest_results_and_repositories_are_not_sampled(con):
    period = load_period(con, "2026-10-01", "2026-10-31")
    assert {c["as_of"] for c in period.changes} == {sd.RUN2}
    assert period.as_of_dates == ["2026-11-20T02:00:00Z"]
    first = next(c for c in period.changes if c["change_id"] == "acme/web#119")  # merged 10-20, pending on RUN1
    assert first["results"]["CC8.1-06"][0] == "pass"
    stored = dict(con.execute("SELECT control_id, status FROM control_results WHERE change_id = 'acme/web#119' "
                              "AND as_of = ?", [sd.RUN2]).fetchall())
    assert {k: v[0] for k, v in first["results"].items()} == stored
    assert not any(c["change_id"] in sd.REPOS for c in period.changes)
    whole = draw_sample(con, "2026-01-01", "2026-12-31", 1000, 1)
    assert not set(sd.REPOS) & set(ids(whole)) and whole.population_size == 44


def test_through_pins_the_runs_considered_and_flags_an_incomplete_period(con):
    pinned = load_period(con, "2026-10-01", "2026-10-31", through="2026-10-21")
    assert {c["as_of"] for c in pinned.changes} == {sd.RUN1}
    assert pinned.through == date(2026, 10, 21) and not pinned.complete
    assert "2026-10-21T02:00:00Z" in pinned.warning and "not evaluated yet" in pinned.warning
    pending = next(c for c in pinned.changes if c["change_id"] == "acme/web#119")
    assert pending["results"]["CC8.1-06"][0] == "pending"
    latest = load_period(con, "2026-10-01", "2026-10-31")
    assert latest.complete and latest.warning == "" and latest.through == date(2026, 11, 20)
    # a later night changes nothing for a draw pinned to the recorded results_through
    before = draw_sample(con, "2026-10-01", "2026-10-31", 5, 3, through=latest.through)
    sd.add_run(con, datetime(2026, 11, 25, 2), sd.changes())
    again = draw_sample(con, "2026-10-01", "2026-10-31", 5, 3, through=latest.through)
    assert again.describe() == before.describe()
    assert draw_sample(con, "2026-10-01", "2026-10-31", 5, 3).period.population_hash != before.period.population_hash


def test_population_hash_is_the_documented_sha256_and_follows_the_population(con):
    p = load_period(con, "2026-10-01", "2026-10-31")
    lines = "".join(f"{c['change_id']}\t{c['as_of']:%Y-%m-%dT%H:%M:%SZ}\n"
                    for c in sorted(p.changes, key=lambda c: c["change_id"]))
    assert p.population_hash == hashlib.sha256(lines.encode()).hexdigest()
    assert draw_sample(con, "2026-10-01", "2026-10-31", 3, 1).period.population_hash == p.population_hash
    rows = sd.changes() + [sd.change("acme/web#999", datetime(2026, 10, 15, 8))]
    sd.add_run(con, sd.RUN2, rows)  # a rerun of the date that found one more change
    grown = load_period(con, "2026-10-01", "2026-10-31")
    assert len(grown.changes) == len(p.changes) + 1 and grown.population_hash != p.population_hash


def test_size_at_least_the_population_takes_everything_and_says_so(con):
    s = draw_sample(con, "2026-10-01", "2026-10-05", 25, 7)
    assert s.all_taken and ids(s) == sorted(ids(s)) and len(ids(s)) == s.population_size == 6
    assert "every change of the period is taken" in s.note
    assert s.describe()["all_taken"] is True and s.describe()["size_requested"] == 25


@pytest.mark.parametrize("args, words", [
    (("2026-10-31", "2026-10-01", 5, 1), ["from 2026-10-31 is after to 2026-10-01"]),
    (("2026-10-1", "2026-10-31", 5, 1), ["'2026-10-1'", "YYYY-MM-DD"]),
    (("2026-02-30", "2026-10-31", 5, 1), ["'2026-02-30'", "not a valid date"]),
    (("yesterday", "2026-10-31", 5, 1), ["'yesterday'"]),
    (("2026-10-01", "2026-10-31", 0, 1), ["size", "at least 1"]),
    (("2026-10-01", "2026-10-31", -3, 1), ["size", "at least 1"]),
    (("2026-10-01", "2026-10-31", 5, "7"), ["seed", "whole number"]),
])
def test_bad_requests_raise_clear_errors(con, args, words):
    with pytest.raises(SamplingError) as exc:
        draw_sample(con, *args)
    assert all(w in str(exc.value) for w in words), str(exc.value)


def test_empty_period_names_the_period_and_the_dates_with_data(con):
    with pytest.raises(SamplingError) as exc:
        draw_sample(con, "2025-01-01", "2025-03-31", 5, 1)
    msg = str(exc.value)
    assert "2025-01-01 to 2025-03-31" in msg
    assert "merged from 2026-09-30 to 2026-11-09" in msg and "2 date(s) from 2026-10-21 to 2026-11-20" in msg
    empty = connection.connect(":memory:")
    with pytest.raises(SamplingError, match="population is empty"):
        draw_sample(empty, "2026-10-01", "2026-10-31", 5, 1)


def test_a_warehouse_without_the_population_table_gets_a_clear_error(tmp_path):
    path = tmp_path / "v2.duckdb"
    old = duckdb.connect(str(path))
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for v in (1, 2):
        old.execute(schema.MIGRATIONS[v])
        old.execute("INSERT INTO schema_version VALUES (?)", [v])
    old.execute("INSERT INTO control_results VALUES ('2026-11-25', 'acme/api#1', 'acme/api', 'CC8.1-01', 'pass', 'x')")
    old.close()
    ro = duckdb.connect(str(path), read_only=True)  # sampling reads only, it never migrates
    with pytest.raises(SamplingError, match="no stored population"):
        draw_sample(ro, "2026-10-01", "2026-11-30", 5, 1)
    ro.close()
    # the ordinary connect upgrades a v2 warehouse in place and keeps its rows
    up = connection.connect(path)
    assert up.execute("SELECT max(version) FROM schema_version").fetchone()[0] == schema.SCHEMA_VERSION == max(schema.MIGRATIONS)
    assert up.execute("SELECT count(*) FROM control_results").fetchone()[0] == 1
    assert up.execute("SELECT count(*) FROM population").fetchone()[0] == 0
    assert up.execute("SELECT count(*) FROM change_deployments").fetchone()[0] == 0
    up.close()


def test_evaluate_stores_the_population_in_the_results_transaction():
    from ccwatch.controls.evaluate import evaluate
    from ccwatch.controls.facts import build_facts

    from tests.helpers.controls_world import AS_OF, World, make_settings, mixed_changes

    w, s = World(), make_settings()
    mixed_changes(w)
    build_facts(w.con, s, AS_OF)
    evaluate(w.con, s, AS_OF, before_commit=lambda c: store_population(c, AS_OF))
    facts = w.con.execute("SELECT change_id, merged_at, author FROM change_facts ORDER BY 1").fetchall()
    stored = w.con.execute("SELECT change_id, merged_at, author FROM population WHERE as_of = ? ORDER BY 1",
                           [AS_OF.replace(tzinfo=None)]).fetchall()
    assert stored == facts and len(stored) == 5
    # a rerun of the date replaces its rows
    later = AS_OF + timedelta(hours=2)
    build_facts(w.con, s, later)
    evaluate(w.con, s, later, before_commit=lambda c: store_population(c, later))
    assert w.con.execute("SELECT count(*), count(DISTINCT as_of) FROM population").fetchone() == (5, 1)
    # both or neither: a failure while storing the population rolls the results back too
    before = w.con.execute("SELECT * FROM control_results ORDER BY ALL").fetchall()

    def boom(c):
        store_population(c, AS_OF)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        evaluate(w.con, s, AS_OF, before_commit=boom)
    assert w.con.execute("SELECT * FROM control_results ORDER BY ALL").fetchall() == before
    assert w.con.execute("SELECT count(*), max(as_of) FROM population").fetchone() == (5, later.replace(tzinfo=None))


def test_pipeline_evaluate_controls_stores_the_population(tmp_path):
    from ccwatch import pipeline
    from ccwatch.common.paths import warehouse_path
    from ccwatch.warehouse.runs import mark_run

    from tests.helpers.controls_world import AS_OF, World, make_settings, mixed_changes

    w = World()
    mixed_changes(w)
    w.con.execute(f"ATTACH '{tmp_path / 'warehouse.duckdb'}' AS f")
    w.con.execute("COPY FROM DATABASE memory TO f")
    w.con.close()
    home, s = tmp_path, make_settings()
    con = connection.connect(warehouse_path(home))
    mark_run(con, AS_OF, "loaded")
    con.close()
    pipeline.build_facts(s, AS_OF, home)
    pipeline.evaluate_controls(s, AS_OF, home)
    con = duckdb.connect(str(warehouse_path(home)), read_only=True)
    n = con.execute("SELECT count(*) FROM population WHERE as_of = ?", [AS_OF.replace(tzinfo=None)]).fetchone()[0]
    assert n == con.execute("SELECT count(*) FROM change_facts").fetchone()[0] == 5
    sample = draw_sample(con, "2026-11-01", "2026-11-30", 3, 1)
    con.close()
    assert sample.population_size == 5  # all merged in November, the direct push of 11-12 included
